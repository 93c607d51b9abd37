"""Log records to signals and back, for stdlib logging and structlog."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import structlog
from structlog.testing import LogCapture

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalEvent, SignalSink, TypedSignalSink
from ephemeral.logging import (
    TRACE,
    EventId,
    LogMessage,
    SignalLogContext,
    SignalLoggerProvider,
    SignalLogPayload,
    SignalProcessor,
    SignalToLoggerAdapter,
    SignalToStructlogAdapter,
    level_for_signal,
    slug,
)


class Records(logging.Handler):
    """Collects the records a logger passes on."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_names = iter(range(1_000_000))


def _payload(event: SignalEvent[Any]) -> SignalLogPayload:
    assert isinstance(event.payload, SignalLogPayload)
    return event.payload


@pytest.fixture
def category() -> Iterator[str]:
    """A fresh logger name per test, so handlers never leak between tests."""
    name = f"test.bridge.{next(_names)}"
    logging.getLogger(name).setLevel(1)
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_default_name_key_and_payload(category: str) -> None:
    sink = SignalSink()
    logger = SignalLoggerProvider(sink).create_logger(category)
    logger.setLevel(logging.DEBUG)
    logger.info("user %s logged in", "ada", extra={"event_id": EventId(100, "UserLogin")})
    (event,) = sink.sense()
    assert event.signal == f"log.information.{slug(category)}.userlogin"
    assert event.key == "UserLogin"
    assert event.payload == SignalLogPayload(
        category=category, level="information", message="user ada logged in", event_id=100, event_name="UserLogin"
    )


def test_the_orders_example_and_plain_extra_fields() -> None:
    sink = SignalSink()
    provider = SignalLoggerProvider(sink)
    logger = provider.create_logger("orders")
    logger.error("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})
    logger.error("Order store failed", extra={"event_id": 1001, "event_name": "DbFailure"})
    logger.warning("no event id")
    logger.warning("a number only", extra={"event_id": 7})
    names = [(e.signal, e.key) for e in sink.sense()]
    assert names == [
        ("log.error.orders.dbfailure", "DbFailure"),
        ("log.error.orders.dbfailure", "DbFailure"),
        ("log.warning.orders.none", "0"),
        ("log.warning.orders.7", "7"),
    ]
    assert provider.create_logger("orders").handlers.count(provider) == 1


def test_slug_rules() -> None:
    assert slug("MyApp.Service") == "myapp-service"
    assert slug("orders.fetch.failed") == "orders-fetch-failed"
    assert slug("  ") == "none"
    assert slug("") == "none"
    assert slug("a--b__") == "a-b"
    assert slug(".lead") == "-lead"


def test_minimum_level(category: str) -> None:
    sink = SignalSink()
    logger = SignalLoggerProvider(sink, minimum_level=logging.WARNING).create_logger(category)
    logger.setLevel(logging.DEBUG)
    logger.info("dropped")
    logger.warning("kept")
    assert [_payload(e).level for e in sink.sense()] == ["warning"]


def test_levels_below_debug_are_trace_and_above_error_critical(category: str) -> None:
    sink = SignalSink()
    logger = SignalLoggerProvider(sink, minimum_level=1).create_logger(category)
    logger.setLevel(1)
    for level in (TRACE, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        logger.log(level, "x")
    assert [e.signal.split(".")[1] for e in sink.sense()] == [
        "trace",
        "debug",
        "information",
        "warning",
        "error",
        "critical",
    ]


def test_an_exception_adds_its_class(category: str) -> None:
    sink = SignalSink()
    logger = SignalLoggerProvider(sink).create_logger(category)
    try:
        raise RuntimeError("DB failure")
    except RuntimeError:
        logger.exception("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})
    (event,) = sink.sense()
    assert event.signal == f"log.error.{slug(category)}.dbfailure:runtimeerror"
    payload = _payload(event)
    assert payload.exception_type == "builtins.RuntimeError"
    assert payload.exception_message == "DB failure"
    assert payload.level == "error"


def test_typed_sink_keeps_the_payload_and_forwards_the_signal(category: str) -> None:
    typed: TypedSignalSink[SignalLogPayload] = TypedSignalSink()
    logger = SignalLoggerProvider(typed).create_logger(category)
    logger.warning("cpu at %d%%", 85)
    (event,) = typed.sense()
    assert event.payload is not None and event.payload.category == category and "85" in event.payload.message
    assert event.payload.level == "warning"
    (plain,) = typed.untyped.sense()
    assert plain.signal == event.signal and plain.payload is None


def test_custom_maps(category: str) -> None:
    sink = SignalSink()
    seen: list[SignalLogContext] = []

    def name(ctx: SignalLogContext) -> str | None:
        seen.append(ctx)
        return None if ctx.message == "skip" else f"custom.{ctx.level}.{ctx.event_id.id}"

    logger = SignalLoggerProvider(sink, map_signal=name, map_payload=lambda ctx: None).create_logger(category)
    logger.info("hello", extra={"event_id": EventId(42)})
    logger.info("skip")
    (event,) = sink.sense()
    assert (event.signal, event.key, event.payload) == ("custom.information.42", "42", None)
    assert seen[0].record is not None and seen[0].levelno == logging.INFO and seen[0].exception is None


def test_one_signal_for_an_event_name_with_dots(category: str) -> None:
    sink = SignalSink()
    logger = SignalLoggerProvider(sink).create_logger("OrderService")
    logger.warning("x", extra={"event_id": EventId(42, "orders.fetch.failed")})
    (event,) = sink.sense()
    assert event.signal == "log.warning.orderservice.orders-fetch-failed"
    assert event.key == "orders.fetch.failed"
    logging.getLogger("OrderService").handlers.clear()


def test_never_raises_into_the_logging_call(category: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError stays quiet
    sink = SignalSink()

    def broken(ctx: SignalLogContext) -> str:
        raise ValueError("map failed")

    provider = SignalLoggerProvider(sink, map_signal=broken)
    logger = provider.create_logger(category)
    logger.error("x")
    logger.error("bad format %d", "not a number")
    assert provider.error_count == 2 and len(sink) == 0

    def raising_subscriber(event: SignalEvent[Any]) -> None:
        raise RuntimeError("subscriber failed")

    ok = SignalLoggerProvider(sink)
    logger.handlers[:] = [ok]
    sink.subscribe(raising_subscriber)
    logger.error("still fine")
    assert len(sink) == 1 and sink.subscriber_errors == 1 and ok.error_count == 0


def test_a_subscriber_that_logs_causes_no_storm(category: str) -> None:
    sink = SignalSink()
    provider = SignalLoggerProvider(sink)
    logger = provider.create_logger(category)
    sink.subscribe(lambda event: logger.error("handling %s", event.signal))
    logger.error("first")
    assert len(sink) == 1
    assert provider.dropped_count == 1 and provider.emitted_count == 1


def test_records_from_many_threads(category: str) -> None:
    sink = SignalSink(max_capacity=10_000)
    provider = SignalLoggerProvider(sink)
    logger = provider.create_logger(category)
    logged: list[str] = []
    lock = threading.Lock()

    def on_signal(event: SignalEvent[Any]) -> None:
        with lock:
            logged.append(_payload(event).message)

    sink.subscribe(on_signal)

    def work(n: int) -> None:
        for i in range(200):
            logger.error("t%d-%d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(logged) == sorted(f"t{n}-{i}" for n in range(8) for i in range(200))
    assert provider.emitted_count == 1600 and provider.dropped_count == 0


async def test_logging_from_inside_coordinator_bodies_on_the_loop(category: str) -> None:
    sink = SignalSink()
    logger = SignalLoggerProvider(sink).create_logger(category)

    async def body(n: int) -> None:
        await anyio.sleep(0.01 * n)
        logger.error("item %d failed", n, extra={"event_id": EventId(n, f"item{n}")})

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=4, signals=sink)) as coordinator:
        for n in range(5):
            await coordinator.enqueue(n)
    assert [e.key for e in sink.sense("log.error.*")] == [f"item{n}" for n in range(5)]


def test_bad_arguments() -> None:
    sink = SignalSink()
    with pytest.raises(TypeError, match="sink"):
        SignalLoggerProvider("not a sink")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="minimum_level"):
        SignalLoggerProvider(sink, minimum_level="INFO")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="map_signal"):
        SignalLoggerProvider(sink, map_signal="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="logger"):
        SignalToLoggerAdapter(sink, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="map"):
        SignalToLoggerAdapter(sink, "x", map=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="id"):
        EventId("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="category"):
        SignalProcessor(sink, category=1)  # type: ignore[arg-type]


# -- signals to logs ------------------------------------------------------------------------------


def test_level_from_the_first_segment() -> None:
    assert level_for_signal("api.request.completed") == logging.INFO
    assert level_for_signal("error.timeout") == logging.ERROR
    assert level_for_signal("warning.disk") == logging.WARNING
    assert level_for_signal("warn:disk") == logging.WARNING
    assert level_for_signal("debug.x") == logging.DEBUG
    assert level_for_signal("critical.x") == logging.CRITICAL
    assert level_for_signal("FATAL.x") == logging.CRITICAL
    assert level_for_signal("trace.x") == TRACE
    assert level_for_signal("log.error.orders.dbfailure") == logging.ERROR
    assert level_for_signal("log") == logging.INFO


def test_signal_to_logger_adapter(category: str) -> None:
    sink = SignalSink()
    records = Records()
    logger = logging.getLogger(category)
    logger.addHandler(records)
    logger.setLevel(1)
    with SignalToLoggerAdapter(sink, logger) as adapter:
        sink.emit(SignalEvent("error.db.timeout", 123, "order-42", sink.now()))
        sink.emit("api.request.completed")
        sink.emit("warning.disk")
    sink.emit("error.after.close")
    assert adapter.closed and adapter.logged_count == 3
    first, second, third = records.records
    assert first.levelno == logging.ERROR
    assert "error.db.timeout" in first.getMessage() and "order-42" in first.getMessage()
    assert first.__dict__["event_id"] == EventId(123, "order-42")
    assert second.levelno == logging.INFO and second.__dict__["event_id"].name == "api.request.completed"
    assert third.levelno == logging.WARNING


def test_adapter_map_and_logger_by_name(category: str) -> None:
    sink = SignalSink()
    records = Records()
    logging.getLogger(category).addHandler(records)

    def only_orders(event: SignalEvent[Any]) -> LogMessage | None:
        if not event.signal.startswith("order."):
            return None
        return LogMessage(logging.WARNING, EventId(1, "o"), f"order event {event.signal}")

    adapter = SignalToLoggerAdapter(sink, category, map=only_orders)
    sink.emit("order.placed")
    sink.emit("other")
    adapter.close()
    adapter.close()
    assert [r.getMessage() for r in records.records] == ["order event order.placed"]


def test_both_directions_on_one_sink_do_not_loop(category: str) -> None:
    sink = SignalSink()
    records = Records()
    root = logging.getLogger(category)
    root.setLevel(logging.DEBUG)
    provider = SignalLoggerProvider(sink)
    root.addHandler(provider)
    root.addHandler(records)
    with SignalToLoggerAdapter(sink, root) as adapter:
        root.error("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})
        sink.emit("error.db", key="k")
        sink.emit("incident.created", key="k")
    # One signal per record and per direct emit; the adapter logged the two direct signals once each
    # and the provider turned none of its records back into signals.
    assert [e.signal for e in sink.sense()] == [f"log.error.{slug(category)}.dbfailure", "error.db", "incident.created"]
    assert [r.getMessage() for r in records.records] == [
        "Order store failed",
        f"error.db (op:{sink.sense()[1].operation_id}, key:k)",
        f"incident.created (op:{sink.sense()[2].operation_id}, key:k)",
    ]
    assert adapter.skipped_count == 1 and provider.emitted_count == 1


# -- structlog ----------------------------------------------------------------------------------


def _structlog_logger(*processors: Any) -> Any:
    return structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[structlog.processors.add_log_level, *processors, structlog.processors.KeyValueRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )


def test_structlog_processor_emits_signals() -> None:
    sink = SignalSink()
    processor = SignalProcessor(sink)
    log = _structlog_logger(processor).bind(logger="orders")
    log.error("Order store failed", event_id=EventId(1001, "DbFailure"))
    log.debug("below the minimum level")
    rendered = log.info("user login", event_id=100, event_name="UserLogin")
    try:
        raise KeyError("k")
    except KeyError:
        log.exception("lookup failed")
    assert "user login" in rendered
    assert [(e.signal, e.key) for e in sink.sense()] == [
        ("log.error.orders.dbfailure", "DbFailure"),
        ("log.information.orders.userlogin", "UserLogin"),
        ("log.error.orders.none:keyerror", "0"),
    ]
    payload = _payload(sink.sense()[2])
    assert payload.exception_type == "builtins.KeyError" and payload.message == "lookup failed"
    assert processor.emitted_count == 3


def test_structlog_processor_category_and_maps() -> None:
    sink = SignalSink()
    contexts: list[SignalLogContext] = []

    def name(ctx: SignalLogContext) -> str:
        contexts.append(ctx)
        return "custom." + ctx.level

    log = _structlog_logger(SignalProcessor(sink, map_signal=name, category="billing"))
    log.warning("careful", user="ada")
    (event,) = sink.sense()
    assert event.signal == "custom.warning"
    assert contexts[0].category == "billing" and contexts[0].event_dict is not None
    assert contexts[0].event_dict["user"] == "ada" and contexts[0].record is None


def test_structlog_processor_never_raises() -> None:
    sink = SignalSink()

    def broken(ctx: SignalLogContext) -> str:
        raise ValueError("no")

    processor = SignalProcessor(sink, map_signal=broken)
    log = _structlog_logger(processor)
    assert "still logged" in log.error("still logged")
    assert processor.error_count == 1 and len(sink) == 0


def test_signals_into_structlog_and_no_loop() -> None:
    sink = SignalSink()
    capture = LogCapture()
    processor = SignalProcessor(sink)
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[structlog.processors.add_log_level, processor, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    with SignalToStructlogAdapter(sink, log) as adapter:
        sink.emit("error.db", key="k")
        sink.emit("trace.detail")
        log.error("from the app", event_id=EventId(5, "AppError"))
    assert [e.signal for e in sink.sense()] == ["error.db", "trace.detail", "log.error.root.apperror"]
    first, second, third = capture.entries
    assert first["signal"] == "error.db" and first["log_level"] == "error" and first["key"] == "k"
    assert first["event_id"] == EventId(sink.sense()[0].operation_id, "k")
    assert second["log_level"] == "debug"
    assert third["event"] == "from the app"
    assert adapter.logged_count == 2 and adapter.skipped_count == 1 and processor.emitted_count == 1


def test_structlog_adapter_default_logger() -> None:
    sink = SignalSink()
    with SignalToStructlogAdapter(sink) as adapter, structlog.testing.capture_logs() as logs:
        sink.emit("order.placed", key="o1")
    assert adapter.logged_count == 1
    assert logs[0]["signal"] == "order.placed"
    with pytest.raises(TypeError, match="logger"):
        SignalToStructlogAdapter(sink, logger=object())
