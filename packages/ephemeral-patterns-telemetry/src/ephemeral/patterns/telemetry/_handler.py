"""Queueing signals for a telemetry client, off the emitting path, bounded in memory and concurrency."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup
from opentelemetry import context as otel_context

from ephemeral.core import SignalEvent
from ephemeral.core.lowlevel import AsyncHandlerQueue, LoopBinding, TaskGroupOwner, check_int, to_seconds

from ._client import TelemetryClient, parse_metric

__all__ = ("TelemetrySignalHandler",)

_log = logging.getLogger("ephemeral.patterns.telemetry")

#: The event every signal is recorded as.
EVENT_NAME = "EphemeralSignal"

_Queued = tuple[SignalEvent[Any], otel_context.Context]


def _log_failure(item: _Queued) -> None:
    _log.exception("telemetry client failed for %s", item[0].signal)


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
        max_queue = check_int(max_queue, "max_queue")
        max_concurrency = check_int(max_concurrency, "max_concurrency")
        self._close_timeout = to_seconds(close_timeout, "close_timeout", allow_zero=True)
        self._queue: AsyncHandlerQueue[_Queued] = AsyncHandlerQueue(
            self._send_in_context, max_concurrency, max_queue, overflow="refuse_newest", on_failure=_log_failure
        )

    @property
    def queued_count(self) -> int:
        """Signals accepted into the queue so far."""
        return self._queue.accepted_count

    @property
    def processed_count(self) -> int:
        """Signals sent to the client."""
        return self._queue.processed_count

    @property
    def failed_count(self) -> int:
        """Signals whose client call raised."""
        return self._queue.failed_count

    @property
    def dropped_count(self) -> int:
        """Signals refused (queue full, handler not running) or never sent (left unsent at close)."""
        return self._queue.dropped_count

    @property
    def pending_count(self) -> int:
        """Signals waiting to be sent."""
        return self._queue.queued_count

    # -- lifecycle (TaskGroupOwner) ---------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._queue.start(tg, LoopBinding())

    async def _on_clean_exit(self) -> None:
        with anyio.move_on_after(self._close_timeout):
            await self.flush()

    def _on_close(self) -> None:
        self._queue.close()  # refuse new signals; what is still queued is never sent

    async def flush(self) -> None:
        """Wait until every signal queued so far has been sent (the handler keeps running)."""
        await self._queue.wait_idle()

    # -- intake (any thread) ----------------------------------------------------------------------------

    def on_signal(self, event: SignalEvent[Any]) -> bool:
        """Queue ``event`` for the client, with the OpenTelemetry context current here.

        Returns:
            True when queued; False when dropped (the queue is full or the handler is not running). From
            another thread, True means handed to the loop, which queues it or counts it as dropped.
        """
        return self._queue.offer((event, otel_context.get_current()))

    # -- sending ----------------------------------------------------------------------------------------

    async def _send_in_context(self, item: _Queued) -> None:
        event, ctx = item
        token = otel_context.attach(ctx)
        try:
            await self._send(event)
        finally:
            otel_context.detach(token)

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
