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
    (the newest state matters most) and counted in ``dropped_count``. A handler that raises is
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
        loop = self._loop
        if loop is None or self._tg is None:
            self.dropped_count += 1
            return
        if not loop.on_loop_thread:
            loop.call(lambda: self.submit(event))
            return
        if isinstance(event, SignalEvent) and self._on_signal is None:
            return
        if isinstance(event, SignalRetractedEvent) and self._on_retracted is None:
            return
        if len(self._queue) >= self._max_queued:
            self._queue.popleft()
            self.dropped_count += 1
        self._queue.append(event)
        if self._workers < self._max_concurrent:
            self._workers += 1
            self._tg.start_soon(self._work)

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
                else:
                    self.processed_count += 1
        finally:
            self._workers -= 1
            if not self._workers and self._idle is not None:
                self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until every queued signal has been handled."""
        while self._workers or self._queue:
            self._idle = anyio.Event()
            await self._idle.wait()
        self._idle = None

    def close(self) -> None:
        """Stop accepting signals; the ones still queued are dropped and counted."""
        self.dropped_count += len(self._queue)
        self._queue.clear()
        self._tg = None
