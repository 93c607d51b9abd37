"""The work coordinator: a lifecycle over named parts.

A coordinator is the composition of a work queue (``_queues``: FIFO, keyed or lanes), a worker pool
with its parking lot (``_workers``), the gates a worker passes before taking an item (``_gates``),
the operation window with its signal queries (``_window``) and the outcome counters (``_counters``).
``CoordinatorBase`` holds the lifecycle (``TaskGroupOwner``), intake and control, and delegates the rest.

The enqueue contract, for every coordinator: ``enqueue`` waits while ``max_tracked_operations`` items
wait, then returns the accepted item's operation id (an int > 0). An item a policy refuses (a full
priority lane, an early exit, a live cancel signal at an atom) gets ``REFUSED``, which equals -1 and is
falsy. Once intake has stopped (completed, cancelled, closed, or reached by a cancellation) ``enqueue``
raises ``CoordinatorClosedError`` and ``try_enqueue`` returns False; the item is not counted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._async_handlers import AsyncSignalQueue
from ._checks import check_async_callable
from ._clock import TimeBase, loop_clock, to_seconds
from ._counters import REFUSED, CoordinatorMetrics, OutcomeCounters, Refused
from ._events import SignalEvent
from ._gates import Deferral, Gates, Verdict
from ._hooks import EventHook, Subscription
from ._lifecycle import CoordinatorClosedError, TaskGroupOwner
from ._loop import LoopBinding
from ._matcher import PatternSet, compile_pattern
from ._operation import (
    EphemeralOperationSnapshot,
    OperationEchoStore,
    OperationHost,
    OperationStatus,
    WorkerSlot,
    worker_slot,
)
from ._options import EphemeralOptions
from ._queues import Entry, FifoQueue, WorkQueue
from ._sink import SignalSink, next_id
from ._window import OperationWindow, WindowViews
from ._workers import WorkerPool

__all__ = (
    "REFUSED",
    "CoordinatorBase",
    "CoordinatorClosedError",
    "CoordinatorMetrics",
    "Deferral",
    "EphemeralWorkCoordinator",
    "Refused",
)

_log = logging.getLogger("ephemeral.core")
T = TypeVar("T")
R = TypeVar("R")

_COMPLETED, _FAILED, _CANCELLED = OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED
_PROCEED, _PARK = Verdict.PROCEED, Verdict.PARK


class CoordinatorBase(TaskGroupOwner, WindowViews[R], Generic[T, R]):
    """Lifecycle, intake and control of a coordinator, over its queue, workers, gates, window and counters.

    Workers are tasks in a pool owned by the coordinator's task group. They start on demand, up to
    the concurrency limit, and park when nothing is ready, so an idle coordinator costs no wake-ups.
    Subclasses choose the queue (``queue=``) and write their intake methods on ``_accept``.

    Args:
        body: ``async def body(item)``.
        options: Concurrency, window and signal settings.
        queue: Builds the work queue from the options (default: FIFO).
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[R]],
        options: EphemeralOptions | None = None,
        queue: Callable[[EphemeralOptions], WorkQueue] | None = None,
    ) -> None:
        check_async_callable(body, "body")
        if options is None:
            options = EphemeralOptions()
        elif not isinstance(options, EphemeralOptions):
            raise TypeError(f"options must be EphemeralOptions, got {options!r}")
        self.options = options
        self.id = next_id()
        self._body = body
        self._capacity = options.max_tracked_operations
        self._sink = options.signals if options.signals is not None else SignalSink()
        self._drain_on = PatternSet(options.drain_on_signals)
        self._lifecycle_signals = options.emit_lifecycle_signals

        self._queue: WorkQueue = FifoQueue() if queue is None else queue(options)
        lifetime = options.max_operation_lifetime
        self._window = OperationWindow(
            options.max_tracked_operations,
            None if lifetime is None else to_seconds(lifetime, "max_operation_lifetime"),
        )
        self.operation_finalized: EventHook[EphemeralOperationSnapshot[R]] = self._window.finalized
        self._counts = OutcomeCounters()
        self._pool = WorkerPool(options.max_concurrency, self._worker)
        self._gates = Gates(
            PatternSet(options.cancel_on_signals),
            Deferral.of(
                options.defer_on_signals,
                options.resume_on_signals,
                options.defer_check_interval,
                options.max_defer_attempts,
            ),
            self._queue,
            self._skip,
            self._top_up,
        )

        self._started = False
        self._refusing = True  # fast path of intake: not entered yet, or intake stopped
        self._registered = False
        self._pool_lost = False
        self._closed = False
        self._completed = False
        self._cancelled = False
        self._paused = False
        self._space: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._loop: LoopBinding | None = None
        self._subscriptions: list[Subscription] = []
        self._async_signals: AsyncSignalQueue | None = None
        self._clock: Callable[[], float] = time.monotonic  # the loop's clock once entered
        self._cancelled_exc: type[BaseException] = BaseException
        self._time = TimeBase(self._clock)
        self._host = OperationHost(self._sink, self._time, None, None, None)

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
        echoes = None
        if options.enable_operation_echo:
            retention = to_seconds(options.operation_echo_retention, "operation_echo_retention")
            echoes = OperationEchoStore(self._time, retention, options.operation_echo_capacity)
        self._window.bind(clock, echoes)
        bind = getattr(self._queue, "bind", None)
        if bind is not None:
            bind(self._sink, clock)
        await tg.start(self._pool.host, self._pool_closing)
        if self._window.lifetime is not None:
            tg.start_soon(self._window.sweep)
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
        self._refusing = self._completed

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
        self._window.close()
        self._closed = True

    def _pool_closing(self) -> None:
        # A cancellation reached the pool (an outer cancel scope, or the coordinator closing): from
        # now on no worker can start, so intake stops before an item is counted.
        self._pool_lost = not self._completed
        self.complete()

    # -- intake ---------------------------------------------------------------------------------

    def _accept(self, item: T, key: str | None = None, group: Any = None) -> int:
        """Count and queue an item that may wait now; return its operation id."""
        operation_id = next_id()
        self._queue.push((item, operation_id, key, group))
        self._counts.enqueued += 1
        pool = self._pool
        if pool.workers - pool.active - len(pool.lot) <= 0:
            self._top_up()
        return operation_id

    def _refused(self) -> CoordinatorClosedError:
        """The error of an item offered once intake has stopped (the item is not accepted)."""
        if self._pool_lost:
            return CoordinatorClosedError(
                f"{self._shown_name} is closing: a cancellation reached it; no new items are accepted"
            )
        return CoordinatorClosedError(f"{self._shown_name} has been completed; no new items are accepted")

    async def _wait_for_room(self) -> None:
        """Return once one more item may wait; raise when it never will."""
        if not self._started:
            raise self._not_entered("coordinator", "c")
        while True:
            if self._completed:
                raise self._refused()
            if len(self._queue) < self._capacity:
                return
            if self._space is None:
                self._space = anyio.Event()
            await self._space.wait()

    def _can_wait_now(self) -> bool:
        """Whether ``try_enqueue`` may accept an item now (raises before the coordinator is entered)."""
        if not self._started:
            raise self._not_entered("coordinator", "c")
        return not self._completed and len(self._queue) < self._capacity

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
        if self._refusing or len(self._queue) >= self._capacity:
            await self._wait_for_room()
        return self._accept(item)

    enqueue_with_id = enqueue

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` if it can wait right now; False when full, completed or cancelled."""
        if not self._can_wait_now():
            return False
        self._accept(item)
        return True

    async def enqueue_many(self, items: Iterable[T] | AsyncIterable[T]) -> int:
        """Accept every item of a sync or async iterable, in order; return how many were accepted."""
        count = 0
        if isinstance(items, AsyncIterable):
            async for item in items:
                if await self.enqueue(item):  # a refused item (REFUSED) is falsy
                    count += 1
        else:
            for item in items:
                if await self.enqueue(item):
                    count += 1
        return count

    # -- workers --------------------------------------------------------------------------------

    def _top_up(self) -> None:
        """Make sure one idle worker is awake when items are ready: wake a parked one or start one.

        Only one is woken at a time; a worker that takes an item while more are ready wakes the next
        (see ``_execute``), so concurrency ramps up as bodies block, without waking every worker
        for work that one of them finishes at once.
        """
        pool = self._pool
        if (
            pool.tg is None
            or self._closed
            or self._paused
            or self._cancelled
            or self._gates.holding
            or pool.workers - pool.active - len(pool.lot) > 0
            or not self._queue.ready()
        ):
            return
        pool.wake_or_start()

    async def _worker(self) -> None:
        slot = WorkerSlot()
        worker_slot.set(slot)
        pool, queue, gates, lot = self._pool, self._queue, self._gates, self._pool.lot
        try:
            while pool.workers <= pool.limit:
                if self._paused:
                    await lot.park()
                    continue
                if gates.active:
                    verdict = await gates.check(self._sink, self._clock)
                    if verdict is not _PROCEED:
                        if verdict is _PARK:
                            await lot.park()
                        continue
                entry = queue.take()
                if entry is None:
                    await lot.park()
                    continue
                if self._space is not None:
                    self._wake_producers()
                await self._execute(slot, *entry)
                if self._drained is not None:
                    self._check_drained()
        finally:
            pool.workers -= 1
            if self._drained is not None:
                self._check_drained()  # a cancelled body leaves through here
            self._top_up()  # a worker leaving (over a lowered limit) hands its place on

    async def _execute(self, slot: WorkerSlot, item: Any, operation_id: int, key: str | None, group: Any) -> None:
        clock = self._clock
        operation = self._window.open(operation_id, key, self._host, clock())
        pool = self._pool
        pool.active += 1
        if (pool.lot or pool.workers < pool.limit) and pool.workers - pool.active - len(pool.lot) <= 0:
            self._top_up()  # no idle worker is awake: wake the next one if more is ready
        slot.operation = operation
        counts = self._counts
        if self._lifecycle_signals:
            operation.emit("atom.start")
        try:
            operation.result = await self._body(item)
        except Exception as error:
            operation.error = error
            operation.status = _FAILED
            counts.failed += 1
        except BaseException as error:
            if isinstance(error, self._cancelled_exc) and anyio.current_effective_deadline() != -math.inf:
                # Not our cancellation: the body let out a CancelledError of something it awaited.
                operation.error = error
                operation.status = _FAILED
                counts.failed += 1
                return
            operation.status = _CANCELLED
            counts.cancelled += 1
            raise
        else:
            operation.status = _COMPLETED
            operation.has_result = True
            counts.completed += 1
        finally:
            slot.operation = None
            pool.active -= 1
            operation.completed_at = clock()
            if self._lifecycle_signals:
                operation.emit("atom.stop")
            if self._queue.tracks_release:
                self._queue.release(group)
            self._window.retire(operation)

    def _record(self, entry: Entry, status: OperationStatus) -> None:
        """Put an item that never ran (skipped or cancelled) in the window as a finished operation."""
        self._window.record(entry[1], entry[2], self._host, status)

    def _skip(self, entry: Entry, taken: bool = True) -> None:
        """Drop an item because of a cancel signal: counted, and visible in the window."""
        self._wake_producers()
        self._counts.skipped += 1
        if taken and self._queue.tracks_release:
            self._queue.release(entry[3])
        self._record(entry, OperationStatus.SKIPPED)
        self._check_drained()

    # -- control ----------------------------------------------------------------------------------

    def complete(self) -> None:
        """Stop accepting items; what was accepted still runs. Idempotent."""
        if self._completed:
            return
        self._completed = True
        self._refusing = True
        self._wake_producers()
        self._check_drained()

    def cancel(self) -> None:
        """Stop now: refuse new items, cancel waiting ones and interrupt running bodies (all counted as cancelled)."""
        if self._cancelled:
            return
        self._cancelled = True
        self._completed = True
        self._refusing = True
        for entry in self._queue.take_all():
            self._counts.cancelled += 1
            self._record(entry, _CANCELLED)
        self._wake_producers()
        if self._pool.tg is not None:
            self._pool.tg.cancel_scope.cancel()
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
        self._pool.set_limit(value)  # a woken worker above the limit exits
        self._top_up()

    @property
    def current_max_concurrency(self) -> int:
        """How many bodies may run at once now."""
        return self._pool.limit

    # -- counters -------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Accepted items not started yet."""
        return len(self._queue)

    @property
    def active_count(self) -> int:
        """Bodies running now."""
        return self._pool.active

    @property
    def total_enqueued(self) -> int:
        """Items accepted."""
        return self._counts.enqueued

    @property
    def total_completed(self) -> int:
        """Bodies that returned."""
        return self._counts.completed

    @property
    def total_failed(self) -> int:
        """Bodies that raised."""
        return self._counts.failed

    @property
    def total_skipped(self) -> int:
        """Items dropped because a ``cancel_on_signals`` signal was live when they reached the front."""
        return self._counts.skipped

    @property
    def total_cancelled(self) -> int:
        """Items cancelled by ``cancel()`` or an error closing the coordinator, waiting or running."""
        return self._counts.cancelled

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
        return self._completed and not self._pool.active and not len(self._queue)

    def get_metrics(self) -> CoordinatorMetrics:
        """All counters at once."""
        counts = self._counts
        return CoordinatorMetrics(
            len(self._queue),
            self._pool.active,
            counts.enqueued,
            counts.completed,
            counts.failed,
            counts.skipped,
            counts.cancelled,
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
