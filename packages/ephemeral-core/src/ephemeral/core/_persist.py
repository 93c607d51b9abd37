"""An atom that hands items to an async ``persist`` function, off the caller's path, losing none it took."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._atom import AtomBase, AtomStats
from ._checks import check_async_callable
from ._coordinator import CoordinatorClosedError, EphemeralWorkCoordinator
from ._operation import EphemeralOperationSnapshot
from ._options import EphemeralOptions

__all__ = ("PersistAtom",)

T = TypeVar("T")


class PersistAtom(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """Persists items through ``persist``, one at a time by default, off the caller's path.

    A thin atom over an ``EphemeralWorkCoordinator`` whose body is ``persist``: an item whose
    ``persist`` raises is recorded as a failed operation (``get_failed()``, ``total_failed``) and the
    next items are persisted as usual. ``try_enqueue`` serves sync callers such as
    ``operation_finalized`` handlers: when the coordinator has no room, the item waits in a bounded
    backlog (``max_backlog``) that a single task feeds into it in order; only beyond that is an item
    refused, and counted in ``dropped_count``. Leaving ``async with`` (or ``drain()``) stops intake and
    waits until every accepted item has been handled; an exception in the block cancels instead.

    Args:
        persist: ``async def persist(item)``.
        options: Coordinator options, used as given; the default is ``max_concurrency=1``,
            ``max_tracked_operations=64``, ``max_operation_lifetime=30`` seconds.
        max_backlog: How many items ``try_enqueue`` may hold while the coordinator is full.

    Raises:
        TypeError: ``persist`` is not callable, or ``options`` is not ``EphemeralOptions``.
        TypeError: ``max_backlog`` is not an int.
        ValueError: ``max_backlog`` is negative.
    """

    #: The noun used in messages ("note", "echo", ...).
    item_name = "item"

    def __init__(
        self,
        persist: Callable[[T], Awaitable[object]],
        options: EphemeralOptions | None = None,
        *,
        max_backlog: int = 1024,
    ) -> None:
        check_async_callable(persist, "persist")
        if options is not None and not isinstance(options, EphemeralOptions):
            raise TypeError(f"options must be EphemeralOptions or None, got {options!r}")
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int):
            raise TypeError(f"max_backlog must be an int, got {max_backlog!r}")
        if max_backlog < 0:
            raise ValueError(f"max_backlog must be >= 0, got {max_backlog!r}")
        if options is None:
            options = EphemeralOptions(max_concurrency=1, max_tracked_operations=64, max_operation_lifetime=30.0)
        super().__init__(EphemeralWorkCoordinator(persist, options))
        self._max_backlog = max_backlog
        self._backlog: deque[T] = deque()
        self._feeder_wake: anyio.Event | None = None
        self._backlog_empty: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._closing = False
        self.dropped_count = 0

    # -- lifecycle --------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._tg = tg
        tg.start_soon(self._feed)

    async def _on_clean_exit(self) -> None:
        await self._flush_backlog()

    def _on_close(self) -> None:
        self._closing = True
        self.dropped_count += len(self._backlog)  # only after an error: nothing is left otherwise
        self._backlog.clear()

    async def drain(self) -> None:
        """Stop accepting items and wait until every accepted one has been persisted (or has failed)."""
        self._closing = True
        await self._flush_backlog()
        await self.coordinator.drain()

    def complete(self) -> None:
        """Stop accepting items; accepted ones (the backlog included) are still persisted. Idempotent."""
        self._closing = True
        if not self._backlog:
            self.coordinator.complete()  # else the feeder completes it once the backlog is in

    # -- intake -----------------------------------------------------------------------------------

    async def enqueue(self, item: T) -> int:
        """Accept ``item``, waiting while the coordinator is full; return its operation id.

        Items from ``try_enqueue`` keep their order among themselves; an item given here does not wait
        behind their backlog.

        Raises:
            CoordinatorClosedError: The atom no longer accepts items.
        """
        if self._closing:
            raise CoordinatorClosedError(f"{self._shown_name} has been completed; no new items are accepted")
        return await self.coordinator.enqueue(item)

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` without waiting (for sync callers); False when refused (counted in ``dropped_count``).

        An item that finds the coordinator full waits in the backlog, in order; it is refused only when
        the backlog is full too, or once the atom has stopped accepting items.
        """
        if not self._closing and not self._backlog and self.coordinator.try_enqueue(item):
            return True
        if self._closing or self._tg is None or len(self._backlog) >= self._max_backlog:
            self.dropped_count += 1
            return False
        self._backlog.append(item)
        wake = self._feeder_wake
        if wake is not None:
            self._feeder_wake = None
            wake.set()
        return True

    async def _feed(self) -> None:
        """Move backlog items into the coordinator, in order, as room appears."""
        while True:
            try:
                while self._backlog:
                    await self.coordinator.enqueue(self._backlog[0])
                    self._backlog.popleft()
            except CoordinatorClosedError:  # the coordinator was completed or cancelled directly
                self.dropped_count += len(self._backlog)
                self._backlog.clear()
            if self._closing:
                self.coordinator.complete()
            empty = self._backlog_empty
            if empty is not None:
                self._backlog_empty = None
                empty.set()
            self._feeder_wake = wake = anyio.Event()
            await wake.wait()

    async def _flush_backlog(self) -> None:
        while self._backlog:
            if self._backlog_empty is None:
                self._backlog_empty = anyio.Event()
            await self._backlog_empty.wait()

    # -- state ------------------------------------------------------------------------------------

    def stats(self) -> AtomStats:
        """``(pending, active, completed, failed)`` right now; pending includes the backlog."""
        c = self.coordinator
        return AtomStats(self.pending_count, c.active_count, c.total_completed, c.total_failed)

    @property
    def backlog_count(self) -> int:
        """Items accepted by ``try_enqueue`` still waiting for room in the coordinator."""
        return len(self._backlog)

    @property
    def pending_count(self) -> int:
        """Items accepted and not yet being persisted (the backlog included)."""
        return self.coordinator.pending_count + len(self._backlog)

    @property
    def active_count(self) -> int:
        """Items being persisted now."""
        return self.coordinator.active_count

    @property
    def total_enqueued(self) -> int:
        """Items handed to ``persist``'s coordinator."""
        return self.coordinator.total_enqueued

    @property
    def total_completed(self) -> int:
        """Items persisted."""
        return self.coordinator.total_completed

    @property
    def total_failed(self) -> int:
        """Items whose ``persist`` raised."""
        return self.coordinator.total_failed

    def get_snapshot(self) -> list[EphemeralOperationSnapshot[Any]]:
        """The recent persist operations, oldest first."""
        return self.coordinator.get_snapshot()

    def get_failed(self) -> list[EphemeralOperationSnapshot[Any]]:
        """The recent persist operations that raised (each snapshot's ``error`` says why)."""
        return self.coordinator.get_failed()
