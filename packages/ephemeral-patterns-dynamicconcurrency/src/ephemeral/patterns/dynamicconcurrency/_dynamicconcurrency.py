"""DynamicConcurrencyDemo: a work coordinator whose limit follows load signals on a shared sink."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from anyio.abc import TaskGroup

from ephemeral.core import (
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalEvent,
    SignalSink,
    Subscription,
)
from ephemeral.core.lowlevel import AtomBase, LoopBinding, check_int, compile_pattern

__all__ = ("DynamicConcurrencyDemo",)

T = TypeVar("T")


def _pattern(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not value.strip():
        raise ValueError(f"{name} must not be blank, got {value!r}")
    return value


class DynamicConcurrencyDemo(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """Runs ``body`` for each item with a concurrency limit that load signals move between two bounds.

    The limit starts at ``min_concurrency``. Every signal emitted on ``sink`` (directly, or by an
    operation of any coordinator sharing it) whose name matches ``scale_up_pattern`` doubles it, up to
    ``max_concurrency``; every one matching ``scale_down_pattern`` halves it, down to
    ``min_concurrency`` (a name matching both scales up). That is one change per signal: a signal that
    stays in the sink's window changes nothing more, and nothing polls. Raising the limit starts waiting
    items at once; lowering it never interrupts running bodies: no new item starts until fewer than the
    new limit run. Signals are only heard inside ``async with``, from any thread.

    Use it as an async context manager; leaving the block drains it. Every accepted item ends
    completed, failed or cancelled (the block raised):
    ``total_completed + total_failed + total_cancelled == total_enqueued`` once closed.

    Args:
        body: ``async def body(item)``.
        sink: The shared sink whose signals move the limit.
        min_concurrency: The starting and lowest limit (>= 1).
        max_concurrency: The highest limit (>= ``min_concurrency``).
        scale_up_pattern: Glob of the signals that double the limit.
        scale_down_pattern: Glob of the signals that halve it.
        max_pending: How many accepted items may wait before ``enqueue`` waits.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``min_concurrency`` is below 1, ``max_concurrency`` below ``min_concurrency``, a
            pattern is blank or ``max_pending`` is below 1.

    Example:
        >>> async with DynamicConcurrencyDemo(process, sink, min_concurrency=2, max_concurrency=32) as demo:
        ...     await demo.enqueue(item)
        ...     sink.emit("load.high")  # 2 -> 4
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[object]],
        sink: SignalSink,
        *,
        min_concurrency: int = 1,
        max_concurrency: int = 32,
        scale_up_pattern: str = "load.high",
        scale_down_pattern: str = "load.low",
        max_pending: int = 200,
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        check_int(min_concurrency, "min_concurrency")
        check_int(max_concurrency, "max_concurrency")
        if max_concurrency < min_concurrency:
            raise ValueError(f"max_concurrency ({max_concurrency}) must be >= min_concurrency ({min_concurrency})")
        self.min_concurrency = min_concurrency
        self.max_concurrency = max_concurrency
        self._up = compile_pattern(_pattern("scale_up_pattern", scale_up_pattern))
        self._down = compile_pattern(_pattern("scale_down_pattern", scale_down_pattern))
        self._sink = sink
        self._subscription: Subscription | None = None
        options = EphemeralOptions(
            max_concurrency=min_concurrency,
            enable_dynamic_concurrency=True,
            max_tracked_operations=check_int(max_pending, "max_pending"),
            signals=sink,
        )
        super().__init__(EphemeralWorkCoordinator(body, options))

    async def _on_enter(self, tg: TaskGroup) -> None:
        await super()._on_enter(tg)
        loop = LoopBinding()
        self._subscription = self._sink.subscribe(lambda event: self._on_signal(loop, event))

    def _on_close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        super()._on_close()

    def _on_signal(self, loop: LoopBinding, event: SignalEvent[Any]) -> None:
        name = event.signal
        if self._up.matches(name):
            loop.call(lambda: self._scale(min(self.max_concurrency, self.current_max_concurrency * 2)))
        elif self._down.matches(name):
            loop.call(lambda: self._scale(max(self.min_concurrency, self.current_max_concurrency // 2)))

    def _scale(self, limit: int) -> None:
        if limit != self.coordinator.current_max_concurrency:
            self.coordinator.set_max_concurrency(limit)

    @property
    def current_max_concurrency(self) -> int:
        """The limit now."""
        return self.coordinator.current_max_concurrency

    async def enqueue(self, item: T) -> int:
        """Accept ``item``, waiting while ``max_pending`` items wait; return its operation id.

        Raises:
            CoordinatorClosedError: The demo was drained or cancelled; the item was not accepted.
        """
        return await self.coordinator.enqueue(item)
