"""The work coordinator: bounded concurrency, an operation window, and signal-driven control."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._async_handlers import AsyncSignalQueue
from ._clock import TimeBase, loop_clock, to_seconds
from ._events import SignalEvent
from ._hooks import EventHook, Subscription
from ._lifecycle import CoordinatorClosedError, TaskGroupOwner
from ._loop import LoopBinding
from ._matcher import PatternSet, compile_pattern
from ._operation import (
    EphemeralOperation,
    EphemeralOperationSnapshot,
    OperationEcho,
    OperationEchoStore,
    OperationHost,
    OperationStatus,
    WorkerSlot,
    _current,
)
from ._options import EphemeralOptions
from ._sink import SignalFilter, SignalSink, _as_predicate, _ids, next_id

__all__ = ("CoordinatorBase", "CoordinatorClosedError", "CoordinatorMetrics", "EphemeralWorkCoordinator")

_log = logging.getLogger("ephemeral.core")
T = TypeVar("T")
R = TypeVar("R")

#: An accepted item waiting to run: (item, operation id, key shown on the operation, group). The group is
#: the subclass's own bookkeeping: the raw key of a keyed coordinator, the lane of a priority one.
Entry = tuple[Any, int, "str | None", Any]

_PROCEED, _RETRY, _STOP = 0, 1, 2
_new_id = _ids.__next__
_COMPLETED, _FAILED, _CANCELLED = OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED


class Deferral:
    """Holds work back while a defer signal is live, for at most ``attempts x interval`` per episode.

    An episode starts when a defer signal is first seen and ends when none is live (or a resume
    signal is). Once its budget is spent, work flows until the episode ends: a lingering signal
    delays work once, not once per item.
    """

    __slots__ = ("budget", "defer_on", "interval", "resume_on", "since")

    def __init__(self, defer_on: PatternSet, resume_on: PatternSet, interval: float, attempts: int) -> None:
        self.defer_on = defer_on
        self.resume_on = resume_on
        self.interval = interval
        self.budget = interval * attempts
        self.since: float | None = None

    @classmethod
    def of(
        cls,
        defer_on: Iterable[str] | str | None,
        resume_on: Iterable[str] | str | None,
        interval: float | timedelta,
        attempts: int,
    ) -> Deferral | None:
        """A deferral for these settings, or None when they defer nothing."""
        patterns = PatternSet(defer_on)
        if not patterns or attempts <= 0:
            return None
        return cls(patterns, PatternSet(resume_on), to_seconds(interval, "defer_check_interval"), attempts)

    def active(self, sink: SignalSink, now: float) -> bool:
        """Whether work is held back now."""
        if not sink.detect(self.defer_on) or (self.resume_on and sink.detect(self.resume_on)):
            self.since = None
            return False
        if self.since is None:
            self.since = now
        return now - self.since < self.budget


class CoordinatorMetrics(NamedTuple):
    """Counters of a coordinator at one moment.

    Once a coordinator is drained or cancelled,
    ``total_completed + total_failed + total_skipped + total_cancelled == total_enqueued``.
    """

    pending_count: int
    active_count: int
    total_enqueued: int
    total_completed: int
    total_failed: int
    total_skipped: int
    total_cancelled: int
    is_completed: bool
    is_paused: bool
    is_drained: bool


class CoordinatorBase(TaskGroupOwner, Generic[T, R]):
    """Machinery shared by every coordinator: workers, the window, counters, signals, lifecycle.

    Workers are tasks in a pool owned by the coordinator's task group. They start on demand, up to
    the concurrency limit, and park when nothing is ready, so an idle coordinator costs no wake-ups.
    Subclasses decide how accepted items wait: ``_pending``, ``_push``, ``_take``, ``_ready_count``,
    ``_take_all``, ``_has_room`` and, for per-key bookkeeping, ``_release``.

    The window holds every running operation, the last ``max_tracked_operations`` finished ones
    (none older than ``max_operation_lifetime`` after finishing) and every pinned one. An operation
    leaving it is finalised once: ``operation_finalized`` fires and its signals leave an echo.
    """

    #: Whether ``_release`` must be called when a body finishes (keyed coordinators).
    _tracks_release = False

    def __init__(self, body: Callable[[T], Awaitable[R]], options: EphemeralOptions | None = None) -> None:
        if not callable(body):
            raise TypeError(f"body must be an async callable taking one item, got {body!r}")
        if options is None:
            options = EphemeralOptions()
        elif not isinstance(options, EphemeralOptions):
            raise TypeError(f"options must be EphemeralOptions, got {options!r}")
        self.options = options
        self.id = next_id()
        self._body = body
        self._limit = options.max_concurrency
        self._capacity = options.max_tracked_operations
        lifetime = options.max_operation_lifetime
        self._lifetime = None if lifetime is None else to_seconds(lifetime, "max_operation_lifetime")
        self._sink = options.signals if options.signals is not None else SignalSink()
        self._cancel_on = PatternSet(options.cancel_on_signals)
        self._drain_on = PatternSet(options.drain_on_signals)
        self._deferral = Deferral.of(
            options.defer_on_signals,
            options.resume_on_signals,
            options.defer_check_interval,
            options.max_defer_attempts,
        )
        self._gated = bool(self._cancel_on) or self._deferral is not None
        self._deferring = False

        self._running: dict[int, EphemeralOperation] = {}
        self._finished: deque[EphemeralOperation] = deque()
        self._pinned: dict[int, EphemeralOperation] = {}
        self.operation_finalized: EventHook[EphemeralOperationSnapshot[R]] = EventHook("operation_finalized")

        self._started = False
        self._registered = False
        self._pool_lost = False
        self._closed = False
        self._completed = False
        self._cancelled = False
        self._paused = False
        self._workers = 0
        self._parked: list[anyio.Event] = []
        self._active = 0
        self._sequence = 0
        self._enqueued = 0
        self._succeeded = 0
        self._failed = 0
        self._skipped = 0
        self._cancelled_items = 0

        self._space: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._age_wake: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._pool: TaskGroup | None = None
        self._loop: LoopBinding | None = None
        self._subscriptions: list[Subscription] = []
        self._async_signals: AsyncSignalQueue | None = None
        self._echoes: OperationEchoStore | None = None
        self._clock: Callable[[], float] = time.monotonic  # the loop's clock once entered
        self._cancelled_exc: type[BaseException] = BaseException
        self._time = TimeBase(self._clock)
        self._host = OperationHost(self._sink, self._time, None, None, None)

    # -- queue hooks (overridden by subclasses) ------------------------------------------------

    def _pending(self) -> int:
        """Accepted items not started."""
        raise NotImplementedError

    def _push(self, entry: Entry) -> None:
        """Store an accepted item."""
        raise NotImplementedError

    def _take(self) -> Entry | None:
        """The next item allowed to start now, removed from the queue; None when there is none."""
        raise NotImplementedError

    def _ready_count(self) -> int:
        """How many waiting items could start now."""
        return self._pending()

    def _take_all(self) -> list[Entry]:
        """Remove and return every waiting item."""
        raise NotImplementedError

    def _has_room(self, item: T) -> bool:
        """Whether one more item may wait."""
        return self._pending() < self._capacity

    def _release(self, group: Any) -> None:
        """A body of ``group`` finished (only called when ``_tracks_release`` is set)."""

    # -- lifecycle ------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        options = self.options
        self._started = True
        self._clock = clock = loop_clock()
        self._time = TimeBase(clock)
        self._cancelled_exc = anyio.get_cancelled_exc_class()
        self._host = OperationHost(
            self._sink, self._time, options.signal_constraints, options.on_signal, options.on_signal_retracted
        )
        self._loop = LoopBinding()
        if options.enable_operation_echo:
            retention = to_seconds(options.operation_echo_retention, "operation_echo_retention")
            self._echoes = OperationEchoStore(self._time, retention, options.operation_echo_capacity)
        self._tg = tg
        self._pool = await tg.start(self._host_pool)
        if self._lifetime is not None:
            tg.start_soon(self._sweep_ages, self._lifetime)
        if options.on_signal_async is not None or options.on_signal_retracted_async is not None:
            self._async_signals = AsyncSignalQueue(
                options.on_signal_async,
                options.on_signal_retracted_async,
                options.max_concurrent_signal_handlers,
                options.max_queued_signals,
            )
            self._async_signals.start(tg, self._loop)
            self._host.dispatch_async = self._async_signals.submit
        if self._drain_on:
            self._subscriptions.append(self._sink.subscribe(self._watch_drain))
        self._sink.register_source(self)
        self._registered = True

    async def _on_clean_exit(self) -> None:
        await self.drain()
        if self._async_signals is not None:
            await self._async_signals.wait_idle()

    def _on_error_exit(self) -> None:
        self.cancel()

    def _on_close(self) -> None:
        """Release everything: subscriptions, the sink's view, background tasks; finalise the window."""
        if self._closed:
            return
        for subscription in self._subscriptions:
            subscription.close()
        if self._async_signals is not None:
            self._async_signals.close()
        if self._registered:
            self._sink.unregister_source(self)
        for operation in self._window_operations():
            if operation.completed_at is not None:  # bodies still unwinding are finalised as they retire
                self._finalize(operation)
        self._closed = True

    async def _host_pool(self, *, task_status: TaskStatus[TaskGroup]) -> None:
        async with anyio.create_task_group() as pool:
            task_status.started(pool)
            try:
                await anyio.sleep_forever()
            finally:
                # A cancellation reached the pool (an outer cancel scope, or the coordinator closing):
                # from now on no worker can start, so intake stops before an item is counted.
                self._pool_lost = not self._completed
                self.complete()

    # -- intake ---------------------------------------------------------------------------------

    def _accept(self, item: T, key: str | None = None, group: Any = None) -> int:
        operation_id = _new_id()
        self._push((item, operation_id, key, group))
        self._enqueued += 1
        if self._workers - self._active - len(self._parked) <= 0:
            self._top_up()
        return operation_id

    def _refused(self) -> CoordinatorClosedError:
        """The error of an item offered once intake has stopped (the item is not accepted)."""
        if self._pool_lost:
            return CoordinatorClosedError(
                f"{type(self).__name__} is closing: a cancellation reached it; no new items are accepted"
            )
        return CoordinatorClosedError(f"{type(self).__name__} has been completed; no new items are accepted")

    async def _wait_for_room(self, item: T) -> None:
        if self._pool is None:
            raise self._not_entered("coordinator", "c")
        while True:
            if self._completed:
                raise self._refused()
            if self._has_room(item):
                return
            if self._space is None:
                self._space = anyio.Event()
            await self._space.wait()

    def _wake_producers(self) -> None:
        space = self._space
        if space is not None:
            self._space = None
            space.set()

    async def enqueue(self, item: T) -> int:
        """Accept ``item``, waiting while ``max_tracked_operations`` items are already waiting.

        Returns:
            The id its operation will have (``enqueue_with_id`` is the same call).

        Raises:
            CoordinatorClosedError: The coordinator was completed or cancelled; the item was not accepted.
            RuntimeError: The coordinator has not been entered with ``async with``.
        """
        if self._pool is None or self._completed or not self._has_room(item):
            await self._wait_for_room(item)
        return self._accept(item)

    enqueue_with_id = enqueue

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` if it can wait right now; False when full, completed or cancelled."""
        if self._pool is None:
            raise self._not_entered("coordinator", "c")
        if self._completed or not self._has_room(item):
            return False
        self._accept(item)
        return True

    async def enqueue_many(self, items: Iterable[T] | AsyncIterable[T]) -> int:
        """Accept every item of a sync or async iterable, in order; return how many were accepted."""
        count = 0
        if isinstance(items, AsyncIterable):
            async for item in items:
                if await self.enqueue(item) is not False:  # a full priority lane refuses with False
                    count += 1
        else:
            for item in items:
                if await self.enqueue(item) is not False:
                    count += 1
        return count

    # -- workers --------------------------------------------------------------------------------

    def _top_up(self) -> None:
        """Make sure one idle worker is awake when items are ready: wake a parked one or start one.

        Only one is woken at a time; a worker that takes an item while more are ready wakes the next
        (see ``_execute``), so concurrency ramps up as bodies block, without waking every worker
        for work that one of them finishes at once.
        """
        if (
            self._pool is None
            or self._closed
            or self._paused
            or self._cancelled
            or self._deferring
            or self._workers - self._active - len(self._parked) > 0
            or not self._ready_count()
        ):
            return
        if self._parked:
            self._parked.pop().set()
        elif self._workers < self._limit:
            self._workers += 1
            self._pool.start_soon(self._worker)

    async def _park(self) -> None:
        event = anyio.Event()
        self._parked.append(event)
        try:
            await event.wait()
        finally:
            if not event.is_set():
                self._parked.remove(event)

    async def _worker(self) -> None:
        slot = WorkerSlot()
        _current.set(slot)
        try:
            while self._workers <= self._limit:
                if self._paused:
                    await self._park()
                    continue
                if self._gated:
                    verdict = await self._check_gates()
                    if verdict == _STOP:
                        await self._park()
                        continue
                    if verdict == _RETRY:
                        continue
                entry = self._take()
                if entry is None:
                    await self._park()
                    continue
                if self._space is not None:
                    self._wake_producers()
                await self._execute(slot, *entry)
                if self._drained is not None:
                    self._check_drained()
        finally:
            self._workers -= 1
            if self._drained is not None:
                self._check_drained()  # a cancelled body leaves through here
            self._top_up()  # a worker leaving (over a lowered limit) hands its place on

    async def _execute(self, slot: WorkerSlot, item: Any, operation_id: int, key: str | None, group: Any) -> None:
        clock = self._clock
        self._sequence = sequence = self._sequence + 1
        operation = EphemeralOperation(operation_id, key, self._host, clock(), sequence)
        self._running[operation_id] = operation
        self._active += 1
        if (self._parked or self._workers < self._limit) and self._workers - self._active - len(self._parked) <= 0:
            self._top_up()  # no idle worker is awake: wake the next one if more is ready
        slot.operation = operation
        try:
            operation.result = await self._body(item)
        except Exception as error:
            operation.error = error
            operation.status = _FAILED
            self._failed += 1
        except BaseException as error:
            if isinstance(error, self._cancelled_exc) and anyio.current_effective_deadline() != -math.inf:
                # Not our cancellation: the body let out a CancelledError of something it awaited.
                operation.error = error
                operation.status = _FAILED
                self._failed += 1
                return
            operation.status = _CANCELLED
            self._cancelled_items += 1
            raise
        else:
            operation.status = _COMPLETED
            operation.has_result = True
            self._succeeded += 1
        finally:
            slot.operation = None
            self._active -= 1
            operation.completed_at = clock()
            if self._tracks_release:
                self._release(group)
            self._retire(operation)

    def _record(self, entry: Entry, status: OperationStatus) -> None:
        """Put an item that never ran (skipped or cancelled) in the window as a finished operation."""
        now = self._clock() if self._started and not self._closed else 0.0
        self._sequence += 1
        operation = EphemeralOperation(entry[1], entry[2], self._host, now, self._sequence)
        operation.completed_at = now
        operation.status = status
        self._running[operation.id] = operation
        self._retire(operation)

    async def _check_gates(self) -> int:
        if not self._pending():
            return _PROCEED
        if self._cancel_on and self._sink.detect(self._cancel_on):
            entry = self._take()
            if entry is None:
                return _PROCEED  # nothing may start now (a busy key, a full lane): park until one may
            self._skip(entry)
            return _RETRY
        if self._deferral is not None and self._deferral.active(self._sink, self._clock()):
            return await self._hold(self._deferral.interval)
        return _PROCEED

    def _skip(self, entry: Entry, *, taken: bool = True) -> None:
        """Drop an item because of a cancel signal: counted, and visible in the window."""
        self._wake_producers()
        self._skipped += 1
        if taken and self._tracks_release:
            self._release(entry[3])
        self._record(entry, OperationStatus.SKIPPED)
        self._check_drained()

    async def _hold(self, interval: float) -> int:
        """Work is deferred: one worker waits ``interval`` and looks again, the others park."""
        if self._deferring:
            return _STOP
        self._deferring = True
        try:
            await anyio.sleep(interval)
        finally:
            self._deferring = False
        self._top_up()
        return _RETRY

    # -- the window -----------------------------------------------------------------------------

    def _retire(self, operation: EphemeralOperation) -> None:
        if self._running.pop(operation.id, None) is None:
            return  # evicted while running
        if operation.is_pinned:
            self._pinned[operation.id] = operation
            return
        finished = self._finished
        if not finished and self._age_wake is not None:
            self._age_wake.set()
        finished.append(operation)
        if self._closed:
            self._finalize(operation)
        if len(finished) > self._capacity:
            oldest = finished.popleft()
            if oldest.has_signals or self.operation_finalized.handlers:
                self._finalize(oldest)  # nothing to echo or tell otherwise

    def _trim_age(self) -> None:
        if self._lifetime is None or not self._started or self._closed:
            return
        lifetime, now = self._lifetime, self._clock()
        finished = self._finished
        # The same expression as the sweeper's deadline, so a wake-up at the deadline always trims.
        while finished and (finished[0].completed_at or 0.0) + lifetime <= now:
            self._finalize(finished.popleft())

    async def _sweep_ages(self, lifetime: float) -> None:
        while True:
            self._trim_age()
            if self._finished:
                # A microsecond past the deadline: clock arithmetic rounding can never make the
                # sweeper wake just short of it and spin (under a virtual clock time would not move).
                # Whole microseconds too: looptime 0.7 can hang on a deadline between its ticks.
                deadline = (self._finished[0].completed_at or 0.0) + lifetime
                await anyio.sleep(round(max(deadline - self._clock(), 0.0) + 1e-6, 6))
            else:
                self._age_wake = anyio.Event()
                await self._age_wake.wait()
                self._age_wake = None

    def _finalize(self, operation: EphemeralOperation) -> None:
        if operation.finalized:
            return
        operation.finalized = True
        if self._echoes is not None and operation.has_signals:
            self._echoes.add(operation, (operation.completed_at or 0.0) if self._closed else self._clock())
        if self.operation_finalized.handlers:
            self.operation_finalized.fire(operation.snapshot())

    def _window_operations(self) -> list[EphemeralOperation]:
        self._trim_age()
        operations = [*self._running.values(), *self._finished, *self._pinned.values()]
        operations.sort(key=lambda operation: operation.sequence)
        return operations

    def _find(self, operation_id: int) -> EphemeralOperation | None:
        found = self._running.get(operation_id) or self._pinned.get(operation_id)
        if found is None:
            found = next((op for op in self._finished if op.id == operation_id), None)
        return found

    def get_snapshot(self) -> list[EphemeralOperationSnapshot[R]]:
        """Every operation in the window, in dispatch order."""
        return [operation.snapshot() for operation in self._window_operations()]

    def get_running(self) -> list[EphemeralOperationSnapshot[R]]:
        """Operations whose body is running."""
        return [s for s in self.get_snapshot() if s.completed is None]

    def get_completed(self) -> list[EphemeralOperationSnapshot[R]]:
        """Finished operations in the window (succeeded, failed, skipped or cancelled)."""
        return [s for s in self.get_snapshot() if s.completed is not None]

    def get_failed(self) -> list[EphemeralOperationSnapshot[R]]:
        """Operations whose body raised."""
        return [s for s in self.get_snapshot() if s.error is not None]

    def get_operation(self, operation_id: int) -> EphemeralOperationSnapshot[R] | None:
        """The snapshot of one operation, if it is in the window."""
        operation = self._find(operation_id)
        return None if operation is None else operation.snapshot()

    def pin(self, operation_id: int) -> bool:
        """Keep an operation in the window until unpinned; False when it is not in the window."""
        operation = self._find(operation_id)
        if operation is None:
            return False
        if not operation.is_pinned and operation.completed_at is not None:
            self._finished.remove(operation)
            self._pinned[operation_id] = operation
        operation.is_pinned = True
        return True

    def unpin(self, operation_id: int) -> bool:
        """Let a pinned operation leave the window again; False when it is not pinned."""
        operation = self._find(operation_id)
        if operation is None or not operation.is_pinned:
            return False
        operation.is_pinned = False
        if self._pinned.pop(operation_id, None) is not None:
            # Back among the finished ones at its place by dispatch order, so an old operation
            # leaves as soon as it is unpinned instead of starting a new stay at the tail.
            finished = self._finished
            position = sum(1 for other in finished if other.sequence < operation.sequence)
            finished.insert(position, operation)
            while len(finished) > self._capacity:
                self._finalize(finished.popleft())
            self._trim_age()
        return True

    def evict(self, operation_id: int) -> bool:
        """Remove an operation from the window now, finalising it; a running body carries on unseen."""
        operation = self._find(operation_id)
        if operation is None:
            return False
        if self._running.pop(operation_id, None) is None and self._pinned.pop(operation_id, None) is None:
            self._finished.remove(operation)
        operation.is_pinned = False
        self._finalize(operation)
        return True

    def try_kill(self, operation_id: int) -> bool:
        """Like ``evict`` (the body is not interrupted); False for ids <= 0 or unknown ids."""
        return operation_id > 0 and self.evict(operation_id)

    def get_echoes(self, pattern: str | None = None) -> list[OperationEcho]:
        """Echoes of operations that left the window, oldest first; with ``pattern``, those holding a match."""
        return [] if self._echoes is None else self._echoes.snapshot(pattern)

    # -- control ----------------------------------------------------------------------------------

    def complete(self) -> None:
        """Stop accepting items; what was accepted still runs. Idempotent."""
        if self._completed:
            return
        self._completed = True
        self._wake_producers()
        self._check_drained()

    def cancel(self) -> None:
        """Stop now: refuse new items, cancel waiting ones and interrupt running bodies (all counted as cancelled)."""
        if self._cancelled:
            return
        self._cancelled = True
        self._completed = True
        for entry in self._take_all():
            self._cancelled_items += 1
            self._record(entry, _CANCELLED)
        self._wake_producers()
        if self._pool is not None:
            self._pool.cancel_scope.cancel()
        self._emit_own("coordinator.cancelled")
        self._check_drained()

    async def drain(self) -> None:
        """Stop accepting items and wait until every accepted item has finished.

        While the coordinator is paused, waiting items wait for ``resume()``.
        """
        if not self._started:
            raise self._not_entered("coordinator", "c")
        self.complete()
        while not self.is_drained:
            if self._drained is None:
                self._drained = anyio.Event()
            await self._drained.wait()

    def _check_drained(self) -> None:
        if self._drained is not None and self.is_drained:
            self._drained.set()
            self._drained = None

    def pause(self) -> None:
        """Start no new item until ``resume()``; running bodies carry on."""
        if not self._paused:
            self._paused = True
            self._emit_own("coordinator.paused")

    def resume(self) -> None:
        """Start items again after ``pause()``."""
        if self._paused:
            self._paused = False
            self._emit_own("coordinator.resumed")
            self._top_up()

    def set_max_concurrency(self, value: int) -> None:
        """Change how many bodies may run at once; bodies running above a lower limit finish first.

        Raises:
            RuntimeError: ``enable_dynamic_concurrency`` is off.
            ValueError: ``value`` is below 1.
        """
        if not self.options.enable_dynamic_concurrency:
            raise RuntimeError("dynamic concurrency is disabled; set enable_dynamic_concurrency=True")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max concurrency must be an int >= 1, got {value!r}")
        self._limit = value
        for _ in range(min(self._workers - value, len(self._parked))):
            self._parked.pop().set()  # a woken worker above the limit exits
        self._top_up()

    @property
    def current_max_concurrency(self) -> int:
        """How many bodies may run at once now."""
        return self._limit

    # -- counters -------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Accepted items not started yet."""
        return self._pending()

    @property
    def active_count(self) -> int:
        """Bodies running now."""
        return self._active

    @property
    def total_enqueued(self) -> int:
        """Items accepted."""
        return self._enqueued

    @property
    def total_completed(self) -> int:
        """Bodies that returned."""
        return self._succeeded

    @property
    def total_failed(self) -> int:
        """Bodies that raised."""
        return self._failed

    @property
    def total_skipped(self) -> int:
        """Items dropped because a ``cancel_on_signals`` signal was live when they reached the front."""
        return self._skipped

    @property
    def total_cancelled(self) -> int:
        """Items cancelled by ``cancel()`` or an error closing the coordinator, waiting or running."""
        return self._cancelled_items

    @property
    def is_completed(self) -> bool:
        """Whether intake has stopped."""
        return self._completed

    @property
    def is_paused(self) -> bool:
        """Whether the coordinator is paused."""
        return self._paused

    @property
    def is_cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._cancelled

    @property
    def is_drained(self) -> bool:
        """Whether intake has stopped and every accepted item has finished."""
        return self._completed and not self._active and not self._pending()

    def get_metrics(self) -> CoordinatorMetrics:
        """All counters at once."""
        return CoordinatorMetrics(
            self._pending(),
            self._active,
            self._enqueued,
            self._succeeded,
            self._failed,
            self._skipped,
            self._cancelled_items,
            self._completed,
            self._paused,
            self.is_drained,
        )

    @property
    def dropped_signal_count(self) -> int:
        """Signals dropped because the async handler queue (``max_queued_signals``) was full."""
        return 0 if self._async_signals is None else self._async_signals.dropped_count

    # -- signals ----------------------------------------------------------------------------------

    @property
    def signals(self) -> SignalSink:
        """The sink this coordinator emits to: ``options.signals``, or its own."""
        return self._sink

    @property
    def coordinator_id(self) -> str | None:
        """``options.coordinator_id``."""
        return self.options.coordinator_id

    def _emit_own(self, signal: str) -> None:
        self._sink.emit(SignalEvent(signal, self.id, self.options.coordinator_id, self._sink.now()))

    def emit(self, signal: str) -> None:
        """Emit a coordinator-level signal on the sink (key: ``coordinator_id``)."""
        self._emit_own(signal)

    def _watch_drain(self, event: SignalEvent[Any]) -> None:
        if self._completed or not self._drain_on.matches(event.signal):
            return
        name = self.options.coordinator_id
        if event.signal == "coordinator.drain.id" and (name is None or event.key != name):
            return  # a drain by id reaches only the coordinator with that coordinator_id
        if event.signal == "coordinator.drain.pattern" and (
            name is None or event.key is None or not compile_pattern(event.key).matches(name)
        ):
            return
        if self._loop is not None:
            self._loop.call(self.complete)

    def iter_signal_events(self) -> list[SignalEvent[Any]]:
        """Every signal held by the operations in the window."""
        return [
            event
            for operations in (self._running.values(), self._finished, self._pinned.values())
            for operation in list(operations)
            if operation.has_signals
            for event in operation.signal_events()
        ]

    def get_signals(self, selector: SignalFilter = None) -> list[SignalEvent[Any]]:
        """The signals of the operations in the window, in dispatch order, optionally filtered."""
        predicate = _as_predicate(selector)
        events = [event for operation in self._window_operations() for event in operation.signal_events()]
        return events if predicate is None else [event for event in events if predicate(event)]

    def get_signals_by_pattern(self, pattern: str) -> list[SignalEvent[Any]]:
        """Signals whose name matches the glob."""
        return self.get_signals(pattern)

    def get_signals_by_name(self, name: str) -> list[SignalEvent[Any]]:
        """Signals with exactly this name."""
        return self.get_signals(lambda event: event.signal == name)

    def get_signals_by_key(self, key: str) -> list[SignalEvent[Any]]:
        """Signals emitted by operations with this key."""
        return self.get_signals(lambda event: event.key == key)

    def get_signals_since(self, since: datetime) -> list[SignalEvent[Any]]:
        """Signals emitted at or after ``since``."""
        return self.get_signals(lambda event: event.timestamp >= since)

    def get_signals_by_time_range(self, start: datetime, end: datetime) -> list[SignalEvent[Any]]:
        """Signals emitted between ``start`` and ``end``, both included."""
        return self.get_signals(lambda event: start <= event.timestamp <= end)

    def has_signal(self, name: str) -> bool:
        """Whether an operation in the window holds a signal with exactly this name."""
        return any(operation.has_signal(name) for operation in self._window_operations())

    def has_signal_matching(self, pattern: str) -> bool:
        """Whether an operation in the window holds a signal matching the glob."""
        return bool(self.get_signals(pattern))

    def count_signals(self, name: str | None = None) -> int:
        """How many signals the window holds (with exactly this name, when given)."""
        return len(self.get_signals(None if name is None else (lambda event: event.signal == name)))

    def count_signals_matching(self, pattern: str) -> int:
        """How many signals in the window match the glob."""
        return len(self.get_signals(pattern))

    def now(self) -> datetime:
        """The current time by the coordinator's clock (the event loop's), as a UTC datetime."""
        return self._time.now()


class EphemeralWorkCoordinator(CoordinatorBase[T, Any]):
    """A long-lived queue of work run with bounded concurrency, observable through a bounded window.

    Use it as an async context manager: leaving the block completes intake and drains; an exception
    in the block cancels what is still waiting (counted in ``total_cancelled``).

    Args:
        body: ``async def body(item)``; an exception it raises is recorded on its operation.
        options: Concurrency, window and signal settings.

    Example:
        >>> async with EphemeralWorkCoordinator(handle, EphemeralOptions(max_concurrency=8)) as c:
        ...     await c.enqueue(request)
    """

    def __init__(self, body: Callable[[T], Awaitable[Any]], options: EphemeralOptions | None = None) -> None:
        super().__init__(body, options)
        self._queue: deque[Entry] = deque()

    def _pending(self) -> int:
        return len(self._queue)

    def _push(self, entry: Entry) -> None:
        self._queue.append(entry)

    def _take(self) -> Entry | None:
        return self._queue.popleft() if self._queue else None

    def _take_all(self) -> list[Entry]:
        entries = list(self._queue)
        self._queue.clear()
        return entries
