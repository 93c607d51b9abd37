"""The original README's opening example: a logged error runs signal jobs (ephemeral-logging + ephemeral-attributes)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from ephemeral.complete import (
    EphemeralSignalJobRunner,
    EventId,
    SignalEvent,
    SignalLoggerProvider,
    SignalLogPayload,
    SignalSink,
    SignalToLoggerAdapter,
    TypedSignalSink,
    ephemeral_job,
)


class LogWatcherJobs:
    """The original README's watcher: errors escalate into incidents, and incidents notify after the monitor starts."""

    def __init__(self, sink: SignalSink) -> None:
        self._sink = sink
        self.lines: list[str] = []

    @ephemeral_job("log.error.*", priority=1, max_concurrency=2, lane="hot:4", emit_on_complete=["incident.created"])
    async def escalate(self, signal: SignalEvent[Any]) -> None:
        self.lines.append(f"escalating {signal.signal} for {signal.key}")
        self._sink.emit("incident.created", key=signal.key)

    @ephemeral_job("incident.created", emit_on_start=["incident.monitor.start"])
    async def notify(self, signal: SignalEvent[Any]) -> None:
        started = len(self._sink.sense("incident.monitor.start"))
        self.lines.append(f"notified incident for {signal.key} ({started} monitor start(s) before)")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def orders() -> Iterator[logging.Logger]:
    logger = logging.getLogger("orders")
    logger.setLevel(logging.INFO)
    yield logger
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


async def test_a_logged_error_escalates_and_notifies(orders: logging.Logger) -> None:
    sink = SignalSink()
    typed: TypedSignalSink[SignalLogPayload] = TypedSignalSink(sink)
    jobs = LogWatcherJobs(sink)
    async with EphemeralSignalJobRunner(sink, [jobs]) as runner:
        orders.addHandler(SignalLoggerProvider(typed))
        orders.error("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})
        await anyio.sleep(1)
        assert jobs.lines[0] == "escalating log.error.orders.dbfailure for DbFailure"
        # Later tasks or other services can also raise watcher-friendly signals directly:
        sink.emit("log.error.orders.dbfailure", key="orders")
    assert jobs.lines == [
        "escalating log.error.orders.dbfailure for DbFailure",
        "notified incident for DbFailure (1 monitor start(s) before)",
        "notified incident for DbFailure (2 monitor start(s) before)",
        "escalating log.error.orders.dbfailure for orders",
        "notified incident for orders (3 monitor start(s) before)",
        "notified incident for orders (4 monitor start(s) before)",
    ]
    (payload,) = [event.payload for event in typed.sense()]
    assert payload is not None and payload.message == "Order store failed" and payload.event_id == 1001
    assert runner.get_stats().completed == 6


async def test_signals_mirrored_back_into_logs_and_jobs_that_log_do_not_loop(orders: logging.Logger) -> None:
    sink = SignalSink()
    records = Records()
    orders.addHandler(SignalLoggerProvider(sink))
    orders.addHandler(records)

    class Noisy:
        @ephemeral_job("log.error.*", emit_on_complete="incident.created")
        async def log_again(self, signal: SignalEvent[Any]) -> None:
            orders.error("still failing", extra={"event_id": EventId(1001, "DbFailure")})  # same signal: a cycle

    with SignalToLoggerAdapter(sink, orders) as adapter:
        async with EphemeralSignalJobRunner(sink, [Noisy()]) as runner:
            orders.error("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})
    assert [event.signal for event in sink.sense()] == [
        "log.error.orders.dbfailure",
        "log.error.orders.dbfailure",  # logged by the job: its chain repeats the trigger, so no job runs for it
        "incident.created",
    ]
    assert runner.get_stats().completed == 1 and runner.blocked_count == 1
    messages = [record.getMessage() for record in records.records]
    assert messages[:2] == ["Order store failed", "still failing"]
    assert len(messages) == 3 and messages[2].startswith("incident.created (op:")  # only the job's own signal
    assert adapter.logged_count == 1
