"""Running async handlers off the emitting path, bounded in concurrency and backlog."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._checks import check_choice
from ._events import SignalEvent, SignalRetractedEvent
from ._loop import LoopBinding

__all__ = ("AsyncHandlerQueue", "AsyncSignalQueue")

_log = logging.getLogger("ephemeral.core")

T = TypeVar("T")
AnySignal = SignalEvent[Any] | SignalRetractedEvent
Overflow = Literal["drop_oldest", "refuse_newest"]


def _log_failure(item: object) -> None:
    _log.exception("async handler failed for %r", item)


class AsyncHandlerQueue(Generic[T]):
    """Queues items for an async handler and runs at most ``max_concurrent`` handlers at once.

    ``offer``/``submit`` are synchronous and callable from any thread; ``start(tg, loop)`` begins
    running handlers in ``tg``. When ``max_queued`` items are already waiting, ``overflow`` decides:
    ``"drop_oldest"`` drops the oldest waiting item to make room (the newest state matters most),
    ``"refuse_newest"`` refuses the new one (``offer`` returns False). Either is counted in
    ``dropped_count``, as are items offered while the queue is not running, items whose handler was
    interrupted by cancellation and items still waiting at ``close()``. A handler that raises is
    counted in ``failed_count`` and reported by ``on_failure(item)``, called inside the ``except``
    block (so ``logger.exception`` shows the traceback); the others carry on.

    ``accepted_count`` counts the items queued so far.

    Args:
        handle: The async handler, awaited once per item.
        max_concurrent: The most handlers running at once.
        max_queued: The most items waiting at once.
        overflow: What a full queue does with a new item.
        on_failure: Reports an item whose handler raised (default: logged on ``ephemeral.core``).
    """

    def __init__(
        self,
        handle: Callable[[T], Awaitable[object]],
        max_concurrent: int,
        max_queued: int,
        *,
        overflow: Overflow = "drop_oldest",
        on_failure: Callable[[T], object] = _log_failure,
    ) -> None:
        self._handle = handle
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        self._refuse_newest = check_choice(overflow, "overflow", ("drop_oldest", "refuse_newest")) == "refuse_newest"
        self._on_failure = on_failure
        self._queue: deque[T] = deque()
        self._workers = 0
        self._idle: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._loop: LoopBinding | None = None
        self.accepted_count = 0
        self.processed_count = 0
        self.dropped_count = 0
        self.failed_count = 0

    def start(self, tg: TaskGroup, loop: LoopBinding) -> None:
        """Begin running handlers in ``tg``."""
        self._tg, self._loop = tg, loop

    @property
    def queued_count(self) -> int:
        """Items waiting for a handler."""
        return len(self._queue)

    def submit(self, item: T) -> None:
        """Queue ``item`` for the handler; callable from any thread."""
        self.offer(item)

    def offer(self, item: T) -> bool:
        """Queue ``item`` for the handler, as ``submit`` does, and tell whether it was queued.

        Returns:
            True when queued; False when the queue is not running or (``"refuse_newest"``) full, both
            counted in ``dropped_count``, or when the queue does not take such items.
            From another thread the item is handed to the loop without waiting, and True means handed
            over (the loop then queues it, or counts it as dropped).
        """
        loop = self._loop
        if loop is None or self._tg is None:
            self.dropped_count += 1
            return False
        if not loop.on_loop_thread:
            if loop.call(partial(self.offer, item)):
                return True
            self.dropped_count += 1  # the loop has finished
            return False
        if not self._takes(item):
            return False
        if len(self._queue) >= self._max_queued:
            self.dropped_count += 1
            if self._refuse_newest:
                return False
            self._queue.popleft()
        self._queue.append(item)
        self.accepted_count += 1
        if self._workers < self._max_concurrent:
            self._workers += 1
            self._tg.start_soon(self._work)
        return True

    def _takes(self, item: T) -> bool:
        """Whether ``item`` has a handler here (subclasses refuse some kinds without counting them)."""
        return True

    async def _work(self) -> None:
        try:
            while self._queue:
                item = self._queue.popleft()
                try:
                    await self._handle(item)
                except Exception:
                    self.failed_count += 1
                    self._on_failure(item)
                except BaseException:
                    self.dropped_count += 1  # interrupted by cancellation: never fully handled
                    raise
                else:
                    self.processed_count += 1
        finally:
            self._workers -= 1
            idle = self._idle
            if not self._workers and idle is not None:
                self._idle = None
                idle.set()

    async def wait_idle(self) -> None:
        """Wait until every queued item has been handled."""
        while self._workers or self._queue:
            if self._idle is None:  # shared by every waiter, so none is left waiting on a stale event
                self._idle = anyio.Event()
            await self._idle.wait()

    def close(self) -> None:
        """Stop accepting items; the ones still queued are dropped and counted."""
        self.dropped_count += len(self._queue)
        self._queue.clear()
        self._tg = None


def _log_signal_failure(event: AnySignal) -> None:
    _log.exception("async signal handler failed for %s", event.signal)


class AsyncSignalQueue(AsyncHandlerQueue[AnySignal]):
    """An ``AsyncHandlerQueue`` of signals, each kind to its own handler.

    A ``SignalEvent`` goes to ``on_signal``, a ``SignalRetractedEvent`` to ``on_retracted``; a kind
    without a handler is not taken (``offer`` returns False, nothing counted). A failing handler is
    logged on ``ephemeral.core``.
    """

    def __init__(
        self,
        on_signal: Callable[[SignalEvent[Any]], Awaitable[object]] | None,
        on_retracted: Callable[[SignalRetractedEvent], Awaitable[object]] | None,
        max_concurrent: int,
        max_queued: int,
        *,
        overflow: Overflow = "drop_oldest",
    ) -> None:
        super().__init__(self._dispatch, max_concurrent, max_queued, overflow=overflow, on_failure=_log_signal_failure)
        self._on_signal = on_signal
        self._on_retracted = on_retracted

    def _takes(self, item: AnySignal) -> bool:
        handler = self._on_signal if isinstance(item, SignalEvent) else self._on_retracted
        return handler is not None

    async def _dispatch(self, event: AnySignal) -> None:
        if isinstance(event, SignalEvent):
            assert self._on_signal is not None
            await self._on_signal(event)
        else:
            assert self._on_retracted is not None
            await self._on_retracted(event)
