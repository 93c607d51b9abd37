"""The worker pool: workers started on demand up to a limit, parked when idle, woken one at a time.

Modelled on trio's ``ParkingLot``: an idle worker parks on its own event in the lot, and whoever has
work for it unparks exactly one. An idle pool costs no wake-ups; a busy one wakes the next worker only
when no awake worker is idle, so concurrency ramps up as bodies block, never ahead of the work.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

__all__ = ("ParkingLot", "WorkerPool")


class ParkingLot(list[anyio.Event]):
    """Parked tasks, each on its own event; the most recently parked is woken first (its cache is warm)."""

    __slots__ = ()

    async def park(self) -> None:
        """Wait here until ``unpark`` picks this task (or the task is cancelled)."""
        event = anyio.Event()
        self.append(event)
        try:
            await event.wait()
        finally:
            if not event.is_set():
                self.remove(event)

    def unpark(self) -> bool:
        """Wake one parked task; False when none is parked."""
        if not self:
            return False
        self.pop().set()
        return True

    def unpark_many(self, count: int) -> int:
        """Wake up to ``count`` parked tasks; return how many were woken."""
        woken = 0
        while woken < count and self:
            self.pop().set()
            woken += 1
        return woken


class WorkerPool:
    """Workers run ``work()`` in a task group of their own; ``active`` of them are running a body.

    Args:
        limit: The most workers at once (``set_limit`` changes it; workers above it leave as they finish).
        work: The worker's loop; it returns when the worker should leave.
    """

    __slots__ = ("_work", "active", "limit", "lot", "tg", "workers")

    def __init__(self, limit: int, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.limit = limit
        self.workers = 0
        self.active = 0
        self.lot = ParkingLot()
        self.tg: TaskGroup | None = None
        self._work = work

    @property
    def idle_awake(self) -> int:
        """Workers neither running a body nor parked: they are about to take work."""
        return self.workers - self.active - len(self.lot)

    def wake_or_start(self) -> None:
        """Wake a parked worker, or start one if the pool is below its limit."""
        if self.lot:
            self.lot.pop().set()
        elif self.workers < self.limit and self.tg is not None:
            self.workers += 1
            self.tg.start_soon(self._work)

    def set_limit(self, value: int) -> None:
        """Change the limit; parked workers above it are woken so that they leave."""
        self.limit = value
        self.lot.unpark_many(self.workers - value)

    async def host(
        self, on_closed: Callable[[], None], *, task_status: TaskStatus[TaskGroup] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the workers' task group until cancelled; ``on_closed`` runs as soon as a cancellation arrives."""
        async with anyio.create_task_group() as tg:
            self.tg = tg
            task_status.started(tg)
            try:
                await anyio.sleep_forever()
            finally:
                on_closed()
