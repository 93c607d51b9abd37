"""SignalDrivenBackpressure: a work coordinator that holds new work back while a backpressure signal is live."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, PatternSet, SignalSink
from ephemeral.core.lowlevel import AtomBase, check_async_callable, check_int, to_seconds

__all__ = ("DEFERRAL_EXPIRED", "SignalDrivenBackpressure")

T = TypeVar("T")

#: Emitted (key: the backpressure signal still live) when deferred work goes ahead because ``max_defer`` ran out.
DEFERRAL_EXPIRED = "deferral.expired"


class SignalDrivenBackpressure(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """Runs ``body`` for each item, holding new work back while a backpressure signal is live on ``sink``.

    While a signal matching ``backpressure_pattern`` is live on the sink (emitted on it, or by an
    operation of any coordinator sharing it), no new item starts; running bodies carry on. Work resumes
    as soon as the signal is retracted (``sink.retract(...)``) or ages out of the sink, or while a
    signal matching ``resume_pattern`` is live. Nothing is dropped meanwhile: accepted items wait in
    order, and once ``max_pending`` wait, ``enqueue`` waits too (``try_enqueue`` returns False), so the
    backpressure reaches the producers instead of growing memory.

    The hold is bounded: when a backpressure signal has held work back for ``max_defer`` (looked at
    every ``check_interval``), work goes ahead until no backpressure signal is live any more (a
    lingering signal delays work once, not once per item), and the coordinator emits ``deferral.expired``
    on the sink, keyed by the name of the oldest backpressure signal still live, once per episode.

    Use it as an async context manager; leaving the block drains it. Every accepted item ends
    completed, failed (its body raised) or cancelled (the block raised):
    ``total_completed + total_failed + total_cancelled == total_enqueued`` once closed.

    Args:
        body: ``async def body(item)``.
        sink: The shared sink whose signals hold work back (and where ``deferral.expired`` goes).
        max_concurrency: The most bodies running at once.
        backpressure_pattern: Glob(s) of the signals that hold work back.
        resume_pattern: Glob(s) of signals that override a backpressure signal while live (None: none).
        max_defer: The longest one backpressure episode holds work back (seconds or timedelta).
        check_interval: How often held-back work looks at the sink again.
        max_pending: How many accepted items may wait before ``enqueue`` waits.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A limit is below 1, ``max_defer`` or ``check_interval`` is not positive, or
            ``check_interval`` exceeds ``max_defer``.

    Example:
        >>> async with SignalDrivenBackpressure.create(process, sink, max_concurrency=4) as coordinator:
        ...     await coordinator.enqueue(item)
        ...     sink.emit("backpressure.downstream")  # new work waits
        ...     sink.retract("backpressure.downstream")  # and resumes
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[object]],
        sink: SignalSink,
        *,
        max_concurrency: int = 4,
        backpressure_pattern: str | tuple[str, ...] = "backpressure.*",
        resume_pattern: str | tuple[str, ...] | None = None,
        max_defer: float | timedelta = 10.0,
        check_interval: float | timedelta = 0.05,
        max_pending: int = 200,
    ) -> None:
        check_async_callable(body, "body")
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        check_int(max_concurrency, "max_concurrency")
        check_int(max_pending, "max_pending")
        defer_seconds = to_seconds(max_defer, "max_defer")
        interval = to_seconds(check_interval, "check_interval")
        if interval > defer_seconds:
            raise ValueError(f"check_interval ({interval:g}s) must not exceed max_defer ({defer_seconds:g}s)")
        self._defer_on = PatternSet(backpressure_pattern)
        if not self._defer_on:
            raise ValueError(f"backpressure_pattern must name at least one pattern, got {backpressure_pattern!r}")
        self._resume_on = PatternSet(resume_pattern)
        self._sink = sink
        self.max_defer = timedelta(seconds=defer_seconds)
        options = EphemeralOptions(
            max_concurrency=max_concurrency,
            max_tracked_operations=max_pending,
            signals=sink,
            defer_on_signals=self._defer_on.patterns,
            resume_on_signals=self._resume_on.patterns or None,
            defer_check_interval=interval,
            max_defer_attempts=max(1, math.ceil(defer_seconds / interval - 1e-9)),
        )
        super().__init__(EphemeralWorkCoordinator(body, options))

    @classmethod
    def create(
        cls, body: Callable[[T], Awaitable[object]], sink: SignalSink, max_concurrency: int = 4, **options: Any
    ) -> SignalDrivenBackpressure[T]:
        """``SignalDrivenBackpressure(body, sink, max_concurrency=..., **options)``, as the original spells it."""
        return cls(body, sink, max_concurrency=max_concurrency, **options)

    @property
    def is_backpressured(self) -> bool:
        """Whether a backpressure signal is live (and no resume signal overrides it)."""
        return self._sink.detect(self._defer_on) and not (self._resume_on and self._sink.detect(self._resume_on))

    async def enqueue(self, item: T) -> int:
        """Accept ``item``, waiting while ``max_pending`` items wait; return its operation id.

        Raises:
            CoordinatorClosedError: The coordinator was drained or cancelled; the item was not accepted.
        """
        return await self.coordinator.enqueue(item)

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` if it can wait right now; False when ``max_pending`` items wait or intake has stopped."""
        return self.coordinator.try_enqueue(item)
