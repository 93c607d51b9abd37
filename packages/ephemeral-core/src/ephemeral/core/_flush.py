"""FlushBuffer: items gathered into batches, cut when full or when the first item has waited long enough."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Generic, TypeVar

from ._checks import check_int
from ._clock import loop_clock, to_seconds
from ._wakeup import Wakeup

__all__ = ("FlushBuffer",)

T = TypeVar("T")


class FlushBuffer(Generic[T]):
    """The open batch of a batching loop: flush when full, or ``interval`` after its first item.

    Producers ``add`` items from the loop's thread; ``add`` returns the batch when this item filled it
    (the caller hands it on at once) and otherwise keeps it open. One flushing task waits for the open
    batch to fall due::

        while True:
            if await buffer.wait():          # the open batch is due
                await deliver(buffer.take())
            elif closing and buffer:         # woken: look at your own state
                await deliver(buffer.take())

    ``wait`` sleeps until the open batch's deadline, or until ``wake()`` (and the first ``add`` into an
    empty buffer, which starts the timer) interrupts it. Deadlines are readings of ``clock`` (by default
    the running loop's clock, resolved at first use), so virtual time drives the interval in tests.

    Args:
        max_items: The most items in one batch.
        interval: How long the first item of a batch may wait, as seconds or a timedelta.
        clock: A monotonic clock in seconds (default: the running loop's).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``max_items`` < 1 or ``interval`` <= 0.
    """

    __slots__ = ("_clock", "_deadline", "_interval", "_items", "_max_items", "_wakeup")

    def __init__(
        self, max_items: int, interval: float | timedelta, *, clock: Callable[[], float] | None = None
    ) -> None:
        self._max_items = check_int(max_items, "max_items")
        self._interval = to_seconds(interval, "interval")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable or None, got {clock!r}")
        self._clock = clock
        self._items: list[T] = []
        self._deadline = 0.0
        self._wakeup = Wakeup(self._now)  # deadlines on the buffer's own clock

    @property
    def max_items(self) -> int:
        """The most items in one batch."""
        return self._max_items

    @property
    def interval(self) -> float:
        """How long the first item of a batch may wait, in seconds."""
        return self._interval

    @property
    def deadline(self) -> float | None:
        """When the open batch falls due (a reading of the clock); None while the buffer is empty."""
        return self._deadline if self._items else None

    def add(self, item: T) -> list[T] | None:
        """Add ``item`` to the open batch; return the batch (now cut) when this item filled it."""
        items = self._items
        items.append(item)
        if len(items) >= self._max_items:
            self._items = []
            return items
        if len(items) == 1:
            self._deadline = self._now() + self._interval
            self._wakeup.wake()  # start the flushing task's timer
        return None

    def take(self) -> list[T]:
        """Cut the open batch and return it (possibly empty)."""
        items, self._items = self._items, []
        return items

    def due(self) -> bool:
        """Whether the open batch holds items and its deadline has passed."""
        return bool(self._items) and self._now() >= self._deadline

    def _now(self) -> float:
        """The clock's reading; without a given clock, the running loop's, resolved at first use."""
        clock = self._clock
        if clock is None:
            clock = self._clock = loop_clock()
        return clock()

    def wake(self) -> None:
        """Interrupt the flushing task's ``wait`` (to flush early or stop): it returns False."""
        self._wakeup.wake()

    async def wait(self) -> bool:
        """Sleep until the open batch falls due, or until woken.

        Returns:
            True when the open batch is due (take it); False when woken (look at your own state).
        """
        items = self._items
        if not items:
            await self._wakeup.wait()
            return False
        if not await self._wakeup.wait(self._deadline) and self._items is items:
            return True  # still the same batch: it is due
        return self.due()

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __repr__(self) -> str:
        return f"<FlushBuffer {len(self._items)}/{self._max_items} interval={self._interval:g}>"
