"""Queueing signals for a telemetry client, off the emitting path, bounded in memory and concurrency."""

from __future__ import annotations

import logging
from collections import deque
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup
from opentelemetry import context as otel_context

from ephemeral.core import SignalEvent
from ephemeral.core.lowlevel import LoopBinding, TaskGroupOwner, check_int, to_seconds

from ._client import TelemetryClient, parse_metric

__all__ = ("TelemetrySignalHandler",)

_log = logging.getLogger("ephemeral.patterns.telemetry")

#: The event every signal is recorded as.
EVENT_NAME = "EphemeralSignal"

_Queued = tuple[SignalEvent[Any], otel_context.Context]


def _is(name: str, prefix: str) -> bool:
    """Whether ``name`` is ``prefix`` or starts with ``prefix.`` or ``prefix:``."""
    return name.startswith(prefix) and (len(name) == len(prefix) or name[len(prefix)] in ".:")


class TelemetrySignalHandler(TaskGroupOwner):
    """Sends signals to a telemetry client in the background: ``on_signal`` queues, workers send.

    ``on_signal(event)`` is synchronous and cheap, callable from any thread, so it can be a
    coordinator's ``on_signal`` callback or a sink subscriber. Each queued signal is sent by one of at
    most ``max_concurrency`` workers:

    - every signal: ``client.track_event("EphemeralSignal", properties)``;
    - ``error``, ``error.*`` and ``error:*`` signals also: ``client.track_exception(signal, properties)``;
    - ``perf``, ``perf.*`` and ``perf:*`` signals also: ``client.track_metric(name, value, properties)``,
      the value parsed from the signal (``perf.db.query:12.5ms`` is 12.5 ms of ``perf.db.query``; a
      signal without a value counts 1).

    ``properties`` are ``signal``, ``operation_id``, ``key`` (``"none"`` when absent) and ``depth``.
    The OpenTelemetry context current when ``on_signal`` was called is current while the client is
    called, so ``OpenTelemetryClient`` puts the signal on the span that emitted it.

    At most ``max_queue`` signals wait: when the queue is full, ``on_signal`` returns False and the
    signal is dropped and counted. Leaving the ``async with`` block sends what is queued, for at most
    ``close_timeout``; what is still unsent then (or when the block is left by an exception) is
    dropped and counted. A client call that raises is logged and counted in ``failed_count``. Every
    call of ``on_signal`` is accounted for: ``processed_count + failed_count + dropped_count +
    pending_count`` equals the number of calls.

    Args:
        client: Where the signals go (``InMemoryTelemetryClient``, ``OpenTelemetryClient``, your own).
        max_queue: The most signals waiting at once.
        max_concurrency: The most signals being sent at once.
        close_timeout: How long leaving the block waits for the queue to empty (seconds or timedelta).

    Raises:
        TypeError: ``client`` lacks ``track_event``, ``track_exception`` or ``track_metric``, or an
            argument has the wrong type.
        ValueError: ``max_queue`` or ``max_concurrency`` is below 1, or ``close_timeout`` is negative.
    """

    def __init__(
        self,
        client: TelemetryClient,
        *,
        max_queue: int = 5000,
        max_concurrency: int = 8,
        close_timeout: float | timedelta = 5.0,
    ) -> None:
        if not isinstance(client, TelemetryClient):
            raise TypeError(f"client must have track_event, track_exception and track_metric, got {client!r}")
        self._client = client
        self._max_queue = check_int(max_queue, "max_queue")
        self._max_concurrency = check_int(max_concurrency, "max_concurrency")
        self._close_timeout = to_seconds(close_timeout, "close_timeout", allow_zero=True)
        self._queue: deque[_Queued] = deque()
        self._workers = 0
        self._idle: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._loop: LoopBinding | None = None
        self.queued_count = 0
        """Signals accepted into the queue so far."""
        self.processed_count = 0
        """Signals sent to the client."""
        self.failed_count = 0
        """Signals whose client call raised."""
        self.dropped_count = 0
        """Signals refused (queue full, handler not running) or never sent (left unsent at close)."""

    @property
    def pending_count(self) -> int:
        """Signals waiting to be sent."""
        return len(self._queue)

    # -- lifecycle (TaskGroupOwner) ---------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._loop = LoopBinding()
        self._tg = tg

    async def _on_clean_exit(self) -> None:
        with anyio.move_on_after(self._close_timeout):
            await self.flush()

    def _on_close(self) -> None:
        self._tg = None  # refuse new signals; what is still queued is never sent
        self.dropped_count += len(self._queue)
        self._queue.clear()

    async def flush(self) -> None:
        """Wait until every signal queued so far has been sent (the handler keeps running)."""
        while self._workers or self._queue:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    # -- intake (any thread) ----------------------------------------------------------------------------

    def on_signal(self, event: SignalEvent[Any]) -> bool:
        """Queue ``event`` for the client.

        Returns:
            True when queued; False when dropped (the queue is full or the handler is not running).
        """
        loop = self._loop
        if loop is None or self._tg is None:
            self.dropped_count += 1
            return False
        item = (event, otel_context.get_current())
        if not loop.on_loop_thread:
            accepted: list[bool] = []
            loop.call(lambda: accepted.append(self._offer(item)))
            if not accepted:
                self.dropped_count += 1
            return bool(accepted and accepted[0])
        return self._offer(item)

    def _offer(self, item: _Queued) -> bool:
        tg = self._tg
        if tg is None or len(self._queue) >= self._max_queue:
            self.dropped_count += 1
            return False
        self._queue.append(item)
        self.queued_count += 1
        if self._workers < self._max_concurrency:
            self._workers += 1
            tg.start_soon(self._work)
        return True

    # -- sending ----------------------------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while self._queue:
                event, ctx = self._queue.popleft()
                token = otel_context.attach(ctx)
                try:
                    await self._send(event)
                except Exception:
                    self.failed_count += 1
                    _log.exception("telemetry client failed for %s", event.signal)
                except BaseException:
                    self.dropped_count += 1  # interrupted by cancellation: never fully sent
                    raise
                else:
                    self.processed_count += 1
                finally:
                    otel_context.detach(token)
        finally:
            self._workers -= 1
            idle = self._idle
            if not self._workers and idle is not None:
                self._idle = None
                idle.set()

    async def _send(self, event: SignalEvent[Any]) -> None:
        name = event.signal
        properties = {
            "signal": name,
            "operation_id": str(event.operation_id),
            "key": event.key if event.key is not None else "none",
            "depth": str(event.propagation.depth if event.propagation is not None else 0),
        }
        await self._client.track_event(EVENT_NAME, properties)
        if _is(name, "error"):
            await self._client.track_exception(name, properties)
        elif _is(name, "perf"):
            metric, value, unit = parse_metric(name)
            await self._client.track_metric(metric, value, {**properties, "unit": unit} if unit else properties)

    def __repr__(self) -> str:
        return (
            f"TelemetrySignalHandler(queued={self.queued_count}, processed={self.processed_count}, "
            f"dropped={self.dropped_count}, failed={self.failed_count})"
        )
