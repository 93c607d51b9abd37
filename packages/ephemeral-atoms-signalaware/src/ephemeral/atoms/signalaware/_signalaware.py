"""SignalAwareAtom: refuse or defer work while ambient signals say so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Generic, TypeVar

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, PatternSet, SignalSink
from ephemeral.core.lowlevel import AtomBase, to_seconds

__all__ = ("SignalAwareAtom",)

T = TypeVar("T")


def _patterns(name: str, value: Iterable[str] | str | None) -> PatternSet:
    try:
        return PatternSet(value)
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None


class SignalAwareAtom(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """A worker pool that refuses work while a cancel signal is live and holds it while a defer signal is.

    The signals are read from the atom's sink (``signals``, or a private one): those emitted on it
    directly (``sink.emit``, ``atom.emit``) and those held by the operations of every coordinator
    sharing it, this atom's own included. Patterns are globs (``backpressure.*``); an element may be a
    comma-separated list.

    - Cancel: while a ``cancel_on`` signal is live, ``enqueue`` refuses the item and returns -1, and
      accepted items reaching the front are skipped (counted in ``coordinator.total_skipped``).
    - Defer: while a ``defer_on`` signal is live, accepted items wait, checking again every
      ``defer_interval``; once ``defer_interval x max_defer_attempts`` has passed in one episode, work goes
      ahead anyway. ``atom.retract(signal)`` ends the episode and work resumes.

    Use it as an async context manager; leaving the block drains it.

    Args:
        body: ``async def body(item)``, run once per item.
        cancel_on: Patterns of signals that refuse and skip work.
        defer_on: Patterns of signals that hold work back.
        defer_interval: How often held work looks again, as seconds or a timedelta.
        max_defer_attempts: How many looks a deferral lasts before work goes ahead (0: never defer).
        signals: A shared ``SignalSink``; without one the atom has a private sink.
        max_concurrency: The most bodies running at once (default: the number of CPUs).

    Raises:
        TypeError: ``body`` is not callable, or an argument has the wrong type.
        ValueError: ``defer_interval`` is not positive, ``max_defer_attempts`` is negative or
            ``max_concurrency`` is below 1.

    Example:
        >>> async with SignalAwareAtom(process, cancel_on={"shutdown"}, defer_on={"backpressure.*"}) as atom:
        ...     await atom.enqueue(item)
        ...     atom.emit("backpressure.downstream")  # new items defer
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[object]],
        *,
        cancel_on: Iterable[str] | str | None = None,
        defer_on: Iterable[str] | str | None = None,
        defer_interval: float | timedelta = 0.1,
        max_defer_attempts: int = 50,
        signals: SignalSink | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self._cancel_on = _patterns("cancel_on", cancel_on)
        options = EphemeralOptions(
            cancel_on_signals=self._cancel_on.patterns,
            defer_on_signals=_patterns("defer_on", defer_on).patterns,
            defer_check_interval=to_seconds(defer_interval, "defer_interval"),
            max_defer_attempts=max_defer_attempts,
            signals=signals,
        )
        if max_concurrency is not None:
            options = replace(options, max_concurrency=max_concurrency)
        super().__init__(EphemeralWorkCoordinator(body, options))

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` and return its operation id, or return -1 when a ``cancel_on`` signal is live.

        A refused item is not accepted: nothing runs and nothing is counted. An accepted item waits
        while the intake is full.

        Raises:
            CoordinatorClosedError: The atom was drained or completed; the item was not accepted.
        """
        if self._cancel_on and self.coordinator.signals.detect(self._cancel_on):
            return -1
        return await self.coordinator.enqueue(item)

    def emit(self, signal: str, key: str | None = None) -> None:
        """Emit ``signal`` on the atom's sink, where its own cancel and defer checks, and every sharer, see it."""
        self.coordinator.signals.emit(signal, key)

    def retract(self, signal: str, key: str | None = None) -> int:
        """Remove ``signal`` (with ``key``, when given) from the atom's sink; return how many were removed."""
        return self.coordinator.signals.retract(signal, key)
