"""The worker pool and the dispatcher: workers that take items through the gates and run the body.

Modelled on trio's ``ParkingLot``: an idle worker parks on its own event in the lot, and whoever has
work for it unparks exactly one. An idle pool costs no wake-ups; a busy one wakes the next worker only
when no awake worker is idle, so concurrency ramps up as bodies block, never ahead of the work.

``Dispatcher`` is the worker loop of a coordinator: it holds the run state (completed, paused,
cancelled, closed), takes items from the queue past the gates, runs the body on each under an
operation of the window, and counts the outcome. A worker takes items in a tight loop while the queue
has ready ones: it parks only when there is nothing it may start, and reads the clock once per item
(an item that follows another without a wait starts when the previous one finished).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from ._cancel import cancel_probe
from ._counters import OutcomeCounters
from ._gates import Deferral, Gates, Verdict
from ._matcher import PatternSet
from ._operation import OperationHost, OperationStatus, WorkerSlot, worker_slot
from ._queues import Entry, Room, WorkQueue
from ._sink import SignalSink
from ._window import OperationWindow

__all__ = ("Dispatcher", "ParkingLot", "WorkerPool")

_COMPLETED, _FAILED, _CANCELLED = OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED
_PROCEED, _PARK = Verdict.PROCEED, Verdict.PARK


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


class Dispatcher:
    """A coordinator's run state and worker loop, over its queue, gates, window, counters and pool.

    Args:
        body: ``async def body(item)``.
        queue: Where accepted items wait.
        window: Where operations are shown.
        limit: The most bodies at once.
        capacity: The most items waiting before producers wait (``room``).
        cancel_on: Patterns of the cancel gate.
        deferral: The defer gate (None: none).
        sink: The sink the gates look at.
        lifecycle_signals: Emit ``atom.start``/``atom.stop`` from each operation.
    """

    __slots__ = (
        "body",
        "cancelled",
        "cancelled_exc",
        "clock",
        "closed",
        "completed",
        "counts",
        "drained",
        "gates",
        "host",
        "lifecycle_signals",
        "paused",
        "pool",
        "queue",
        "room",
        "sink",
        "window",
    )

    def __init__(
        self,
        body: Callable[[Any], Awaitable[Any]],
        queue: WorkQueue,
        window: OperationWindow,
        *,
        limit: int,
        capacity: int,
        cancel_on: PatternSet,
        deferral: Deferral | None,
        sink: SignalSink,
        host: OperationHost,
        clock: Callable[[], float],
        lifecycle_signals: bool,
    ) -> None:
        self.body = body
        self.queue = queue
        self.window = window
        self.counts = OutcomeCounters()
        self.room = Room(queue, capacity)
        self.pool = WorkerPool(limit, self.work)
        self.gates = Gates(cancel_on, deferral, queue, self.skip, self.top_up)
        self.sink = sink
        self.host = host
        self.clock = clock
        self.lifecycle_signals = lifecycle_signals
        self.cancelled_exc: type[BaseException] = BaseException
        self.completed = False
        self.paused = False
        self.cancelled = False
        self.closed = False
        self.drained: anyio.Event | None = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def is_drained(self) -> bool:
        """Whether intake has stopped and every accepted item has finished."""
        return self.completed and not self.pool.active and not len(self.queue)

    def check_drained(self) -> None:
        """Wake the ``wait_drained`` callers once drained."""
        if self.drained is not None and self.is_drained:
            self.drained.set()
            self.drained = None

    async def wait_drained(self) -> None:
        """Return once drained (intake must have stopped for that)."""
        while not self.is_drained:
            if self.drained is None:
                self.drained = anyio.Event()
            await self.drained.wait()

    def complete(self) -> bool:
        """Stop intake; False when it had stopped already."""
        if self.completed:
            return False
        self.completed = True
        self.room.wake()
        self.check_drained()
        return True

    def cancel(self) -> None:
        """Stop intake, count every waiting item cancelled (shown in the window) and cancel the workers."""
        self.cancelled = self.completed = True
        for entry in self.queue.take_all():
            self.counts.cancelled += 1
            self.record(entry, _CANCELLED)
        self.room.wake()
        if self.pool.tg is not None:
            self.pool.tg.cancel_scope.cancel()

    def accept(self, entry: Entry) -> None:
        """Queue an accepted item, count it, and make sure a worker is awake for it."""
        self.queue.push(entry)
        self.counts.enqueued += 1
        pool = self.pool
        if pool.workers - pool.active - len(pool.lot) <= 0:
            self.top_up()

    def set_limit(self, value: int) -> None:
        """Change how many bodies may run at once (a woken worker above the limit leaves)."""
        self.pool.set_limit(value)
        self.top_up()

    # -- workers ----------------------------------------------------------------------------------

    def top_up(self) -> None:
        """Make sure one idle worker is awake when items are ready: wake a parked one or start one.

        Only one is woken at a time; a worker that takes an item while more are ready wakes the next
        (see ``work``), so concurrency ramps up as bodies block, without waking every worker for work
        that one of them finishes at once.
        """
        pool = self.pool
        if (
            pool.tg is None
            or self.closed
            or self.paused
            or self.cancelled
            or self.gates.holding
            or pool.workers - pool.active - len(pool.lot) > 0
            or not self.queue.ready()
        ):
            return
        pool.wake_or_start()

    async def work(self) -> None:
        """One worker: take what may start, run it, repeat; park when nothing may start."""
        slot = WorkerSlot()
        worker_slot.set(slot)
        pool, queue, gates, room, window, counts = (
            self.pool,
            self.queue,
            self.gates,
            self.room,
            self.window,
            self.counts,
        )
        lot, take, body, host, clock, open_, retire = (
            pool.lot,
            queue.take,
            self.body,
            self.host,
            self.clock,
            window.open,
            window.retire,
        )
        release = queue.release if queue.tracks_release else None
        signals = self.lifecycle_signals
        cancelled, checkpoint = cancel_probe(), anyio.lowlevel.checkpoint
        now: float | None = None  # the clock when nothing was awaited since the last reading
        try:
            while pool.workers <= pool.limit:
                if self.paused:
                    await lot.park()
                    now = None
                    continue
                if gates.active:
                    verdict = await gates.check(self.sink, clock)
                    now = None
                    if verdict is not _PROCEED:
                        if verdict is _PARK:
                            await lot.park()
                        continue
                if cancelled():  # cancelled while nothing was awaited (a body cancelled its scope and
                    await checkpoint()  # returned): start nothing more; the cancellation arrives here
                    now = None
                    continue
                entry = take()
                if entry is None:
                    await lot.park()
                    now = None
                    continue
                if room.space is not None:
                    room.wake()
                operation = open_(entry[1], entry[2], host, clock() if now is None else now)
                pool.active += 1
                if (lot or pool.workers < pool.limit) and pool.workers - pool.active - len(lot) <= 0:
                    self.top_up()  # no idle worker is awake: wake the next one if more is ready
                slot.operation = operation
                if signals:
                    operation.emit("atom.start")
                try:
                    operation.result = await body(entry[0])
                except Exception as error:
                    operation.error = error
                    operation.status = _FAILED
                    counts.failed += 1
                except BaseException as error:
                    if not isinstance(error, self.cancelled_exc) or anyio.current_effective_deadline() == -math.inf:
                        operation.status = _CANCELLED
                        counts.cancelled += 1
                        raise
                    # Not our cancellation: the body let out a CancelledError of something it awaited.
                    operation.error = error
                    operation.status = _FAILED
                    counts.failed += 1
                else:
                    operation.status = _COMPLETED
                    operation.has_result = True
                    counts.completed += 1
                finally:
                    slot.operation = None
                    pool.active -= 1
                    operation.completed_at = now = clock()
                    if signals:
                        operation.emit("atom.stop")
                    if release is not None:
                        release(entry[3])
                    retire(operation)
                if self.drained is not None:
                    self.check_drained()
        finally:
            pool.workers -= 1
            self.check_drained()  # a cancelled body leaves through here
            self.top_up()  # a worker leaving (over a lowered limit) hands its place on

    def record(self, entry: Entry, status: OperationStatus) -> None:
        """Put an item that never ran (skipped or cancelled) in the window as a finished operation."""
        self.window.record(entry[1], entry[2], self.host, status)

    def skip(self, entry: Entry, taken: bool = True) -> None:
        """Drop an item because of a cancel signal: counted, and visible in the window."""
        self.room.wake()
        self.counts.skipped += 1
        if taken and self.queue.tracks_release:
            self.queue.release(entry[3])
        self.record(entry, OperationStatus.SKIPPED)
        self.check_drained()
