"""The work coordinator: a lifecycle over named parts.

A coordinator is the composition of a work queue (``_queues``: FIFO, keyed or lanes, and the room
producers wait for), the dispatcher with its worker pool (``_workers``: run state, the worker loop),
the gates a worker passes before taking an item (``_gates``), the operation window with its signal
queries (``_window``) and the outcome counters (``_counters``). ``CoordinatorBase`` holds the
lifecycle (``TaskGroupOwner``) and the intake and control calls, and delegates the rest.

The enqueue contract, for every coordinator: ``enqueue`` waits while ``max_tracked_operations`` items
wait, then returns the accepted item's operation id (an int > 0). An item a policy refuses (a full
priority lane, an early exit, a live cancel signal at an atom) gets ``REFUSED``, which equals -1 and is
falsy. Once intake has stopped (completed, cancelled, closed, or reached by a cancellation) ``enqueue``
raises ``CoordinatorClosedError`` and ``try_enqueue`` returns False; the item is not counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._async_handlers import AsyncSignalQueue
from ._checks import check_async_callable
from ._clock import TimeBase, loop_clock, to_seconds
from ._counters import REFUSED, CoordinatorMetrics, CounterViews, Refused
from ._events import SignalEvent
from ._gates import Deferral, drain_requested
from ._hooks import EventHook, Subscription
from ._lifecycle import CoordinatorClosedError, TaskGroupOwner
from ._loop import LoopBinding
from ._matcher import PatternSet
from ._operation import EphemeralOperationSnapshot, OperationEchoStore, OperationHost
from ._options import EphemeralOptions
from ._queues import FifoQueue, WorkQueue
from ._sink import SignalSink, next_id
from ._window import OperationWindow, WindowViews
from ._workers import Dispatcher

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


class CoordinatorBase(TaskGroupOwner, WindowViews[R], CounterViews, Generic[T, R]):
    """Lifecycle, intake and control of a coordinator, over its queue, dispatcher, window and counters.

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
        self._capacity = options.max_tracked_operations
        self._sink = options.signals if options.signals is not None else SignalSink()
        self._drain_on = PatternSet(options.drain_on_signals)
        self._time = TimeBase(time.monotonic)
        self._queue: WorkQueue = FifoQueue() if queue is None else queue(options)
        lifetime = options.max_operation_lifetime
        self._window = OperationWindow(
            options.max_tracked_operations,
            None if lifetime is None else to_seconds(lifetime, "max_operation_lifetime"),
        )
        self.operation_finalized: EventHook[EphemeralOperationSnapshot[R]] = self._window.finalized
        self._run = run = Dispatcher(
            body,
            self._queue,
            self._window,
            limit=options.max_concurrency,
            capacity=options.max_tracked_operations,
            cancel_on=PatternSet(options.cancel_on_signals),
            deferral=Deferral.of(
                options.defer_on_signals,
                options.resume_on_signals,
                options.defer_check_interval,
                options.max_defer_attempts,
            ),
            sink=self._sink,
            host=OperationHost(self._sink, self._time, None, None, None),
            clock=time.monotonic,
            lifecycle_signals=options.emit_lifecycle_signals,
        )
        self._pool, self._room = run.pool, run.room
        self._started = False
        self._refusing = True  # fast path of intake: not entered yet, or intake stopped
        self._registered = False
        self._pool_lost = False
        self._loop: LoopBinding | None = None
        self._subscriptions: list[Subscription] = []
        self._async_signals: AsyncSignalQueue | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        options, run = self.options, self._run
        self._started = True
        run.clock = clock = loop_clock()
        self._time = TimeBase(clock)
        run.cancelled_exc = anyio.get_cancelled_exc_class()
        run.host = host = OperationHost(
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
            host.dispatch_async = self._async_signals.submit
        if self._drain_on:
            self._subscriptions.append(self._sink.subscribe(self._watch_drain))
        self._sink.register_source(self)
        self._registered = True
        self._refusing = run.completed

    async def _on_clean_exit(self) -> None:
        await self.drain()
        if self._async_signals is not None:
            await self._async_signals.wait_idle()

    def _on_error_exit(self) -> None:
        self.cancel()

    def _on_close(self) -> None:
        """Release everything: subscriptions, the sink's view, background tasks; finalise the window."""
        if self._run.closed:
            return
        for subscription in self._subscriptions:
            subscription.close()
        if self._async_signals is not None:
            self._async_signals.close()
        if self._registered:
            self._sink.unregister_source(self)
        self._window.close()
        self._run.closed = True

    def _pool_closing(self) -> None:
        # A cancellation reached the pool (an outer cancel scope, or the coordinator closing): from
        # now on no worker can start, so intake stops before an item is counted.
        self._pool_lost = not self._run.completed
        self.complete()

    # -- intake ---------------------------------------------------------------------------------

    @property
    def _completed(self) -> bool:
        return self._run.completed

    def _accept(self, item: T, key: str | None = None, group: Any = None) -> int:
        """Count and queue an item that may wait now; return its operation id."""
        operation_id = next_id()
        self._run.accept((item, operation_id, key, group))
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
            if self._run.completed:
                raise self._refused()
            if self._room.free():
                return
            await self._room.wait()

    def _can_wait_now(self) -> bool:
        """Whether ``try_enqueue`` may accept an item now (raises before the coordinator is entered)."""
        if not self._started:
            raise self._not_entered("coordinator", "c")
        return not self._run.completed and self._room.free()

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
        operation_id = next_id()  # _accept, inlined: the hot path of intake
        self._run.accept((item, operation_id, None, None))
        return operation_id

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

    # -- control ----------------------------------------------------------------------------------

    def complete(self) -> None:
        """Stop accepting items; what was accepted still runs. Idempotent."""
        if self._run.complete():
            self._refusing = True

    def cancel(self) -> None:
        """Stop now: refuse new items, cancel waiting ones and interrupt running bodies (all counted as cancelled)."""
        if self._run.cancelled:
            return
        self._refusing = True
        self._run.cancel()
        self._emit_own("coordinator.cancelled")
        self._run.check_drained()

    async def drain(self) -> None:
        """Stop accepting items and wait until every accepted item has finished.

        While the coordinator is paused, waiting items wait for ``resume()``.
        """
        if not self._started:
            raise self._not_entered("coordinator", "c")
        self.complete()
        await self._run.wait_drained()

    def pause(self) -> None:
        """Start no new item until ``resume()``; running bodies carry on."""
        if not self._run.paused:
            self._run.paused = True
            self._emit_own("coordinator.paused")

    def resume(self) -> None:
        """Start items again after ``pause()``."""
        if self._run.paused:
            self._run.paused = False
            self._emit_own("coordinator.resumed")
            self._run.top_up()

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
        self._run.set_limit(value)

    @property
    def current_max_concurrency(self) -> int:
        """How many bodies may run at once now."""
        return self._pool.limit

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
        self._sink.emit(self._sink.make_event(signal, self.options.coordinator_id, operation_id=self.id))

    def emit(self, signal: str) -> None:
        """Emit a coordinator-level signal on the sink (key: ``coordinator_id``)."""
        self._emit_own(signal)

    def _watch_drain(self, event: SignalEvent[Any]) -> None:
        name = self.options.coordinator_id
        if self._loop is not None and not self._run.completed and drain_requested(event, self._drain_on, name):
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
