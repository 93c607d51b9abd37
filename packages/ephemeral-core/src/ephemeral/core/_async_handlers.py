"""Running async signal handlers off the emitting path, bounded in concurrency and backlog."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._events import SignalEvent, SignalRetractedEvent
from ._loop import LoopBinding

__all__ = ("AsyncSignalQueue",)

_log = logging.getLogger("ephemeral.core")

AnySignal = SignalEvent[Any] | SignalRetractedEvent


class AsyncSignalQueue:
    """Queues signals for async handlers and runs at most ``max_concurrent`` handlers at once.

    When ``max_queued`` signals are already waiting, the oldest waiting one is dropped to make room
    (the newest state matters most) and counted in ``dropped_count``, as are signals whose handler was
    interrupted by cancellation and signals still waiting at ``close()``. A handler that raises is
    logged and counted in ``failed_count``; the others carry on.
    """

    def __init__(
        self,
        on_signal: Callable[[SignalEvent[Any]], Awaitable[object]] | None,
        on_retracted: Callable[[SignalRetractedEvent], Awaitable[object]] | None,
        max_concurrent: int,
        max_queued: int,
    ) -> None:
        self._on_signal = on_signal
        self._on_retracted = on_retracted
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        self._queue: deque[AnySignal] = deque()
        self._workers = 0
        self._idle: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._loop: LoopBinding | None = None
        self.processed_count = 0
        self.dropped_count = 0
        self.failed_count = 0

    def start(self, tg: TaskGroup, loop: LoopBinding) -> None:
        """Begin running handlers in ``tg``."""
        self._tg, self._loop = tg, loop

    @property
    def queued_count(self) -> int:
        """Signals waiting for a handler."""
        return len(self._queue)

    def submit(self, event: AnySignal) -> None:
        """Queue ``event`` for its handler; callable from any thread."""
        self.offer(event)

    def offer(self, event: AnySignal) -> bool:
        """Queue ``event`` for its handler, as ``submit`` does, and tell whether it was queued.

        Returns:
            True when queued (a full queue drops its oldest waiting signal to make room); False when
            the queue is not running (counted in ``dropped_count``) or has no handler for the event.
        """
        loop = self._loop
        if loop is None or self._tg is None:
            self.dropped_count += 1
            return False
        if not loop.on_loop_thread:
            queued: list[bool] = []

            def offer_on_loop() -> None:
                queued.append(self.offer(event))

            loop.call(offer_on_loop)
            if not queued:  # the loop has finished
                self.dropped_count += 1
                return False
            return queued[0]
        if isinstance(event, SignalEvent) and self._on_signal is None:
            return False
        if isinstance(event, SignalRetractedEvent) and self._on_retracted is None:
            return False
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped_count += 1
        self._queue.append(event)
        if self._workers < self._max_concurrent:
            self._workers += 1
            self._tg.start_soon(self._work)
        return True

    async def _work(self) -> None:
        try:
            while self._queue:
                event = self._queue.popleft()
                try:
                    if isinstance(event, SignalEvent):
                        assert self._on_signal is not None
                        await self._on_signal(event)
                    else:
                        assert self._on_retracted is not None
                        await self._on_retracted(event)
                except Exception:
                    self.failed_count += 1
                    _log.exception("async signal handler failed for %s", event.signal)
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
        """Wait until every queued signal has been handled."""
        while self._workers or self._queue:
            if self._idle is None:  # shared by every waiter, so none is left waiting on a stale event
                self._idle = anyio.Event()
            await self._idle.wait()

    def close(self) -> None:
        """Stop accepting signals; the ones still queued are dropped and counted."""
        self.dropped_count += len(self._queue)
        self._queue.clear()
        self._tg = None
