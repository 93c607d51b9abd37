"""TelemetrySignalHandler, InMemoryTelemetryClient, OpenTelemetryClient (real OpenTelemetry SDK), README."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ephemeral.core import (
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalEvent,
    SignalPropagation,
    SignalSink,
    current_operation,
)
from ephemeral.core.testing import ConcurrencyProbe, arun_readme_examples, output_blocks
from ephemeral.patterns.telemetry import (
    InMemoryTelemetryClient,
    ITelemetryClient,
    OpenTelemetryClient,
    TelemetryClient,
    TelemetryEvent,
    TelemetrySignalHandler,
    parse_metric,
)


# Sleeps are whole milliseconds: looptime 0.7 (Python 3.10) never wakes from some arbitrary float sleeps.
def ms(seconds: float) -> float:
    """``seconds`` rounded to whole milliseconds."""
    return round(seconds, 3)


def event(
    name: str, key: str | None = None, op: int = 7, propagation: SignalPropagation | None = None
) -> SignalEvent[Any]:
    return SignalEvent(name, op, key, datetime.now(timezone.utc), propagation)


def accounted(handler: TelemetrySignalHandler, calls: int) -> bool:
    total = handler.processed_count + handler.failed_count + handler.dropped_count + handler.pending_count
    return total == calls


class GatedClient:
    """A client whose calls wait for a gate, recording the signals it was called for."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.signals: list[str] = []

    async def track_event(self, name: str, properties: Mapping[str, str]) -> None:
        await self.gate.wait()
        self.signals.append(properties["signal"])

    async def track_exception(self, name: str, properties: Mapping[str, str]) -> None:
        pass

    async def track_metric(self, name: str, value: float, properties: Mapping[str, str]) -> None:
        pass


# -- the handler with the in-memory client ----------------------------------------------------------


async def test_seed_example_as_a_coordinators_on_signal() -> None:
    telemetry = InMemoryTelemetryClient()

    async def body(item: int) -> None:
        current_operation().emit("work.started")
        current_operation().emit(f"perf.step:{item * 10}ms")
        if item == 2:
            current_operation().emit("error.db")

    async with TelemetrySignalHandler(telemetry) as handler:
        options = EphemeralOptions(on_signal=handler.on_signal, max_concurrency=2)
        async with EphemeralWorkCoordinator(body, options) as coordinator:
            for item in range(3):
                await coordinator.enqueue(item)
    assert (handler.queued_count, handler.processed_count, handler.dropped_count) == (7, 7, 0)
    events = telemetry.get_events()
    assert sum(1 for e in events if e == TelemetryEvent("EphemeralSignal", "event", e.properties)) == 7
    [exception] = [e for e in events if e.type == "exception"]
    assert exception.name == "error.db"
    assert exception.properties["signal"] == "error.db"
    metrics = sorted((e.name, e.properties["value"], e.properties["unit"]) for e in events if e.type == "metric")
    assert metrics == [("perf.step", "0", "ms"), ("perf.step", "10", "ms"), ("perf.step", "20", "ms")]


async def test_properties_of_each_record() -> None:
    telemetry = InMemoryTelemetryClient()
    async with TelemetrySignalHandler(telemetry) as handler:
        assert handler.on_signal(
            event("error.timeout", key="order-7", op=42, propagation=SignalPropagation(("a", "b")))
        )
        assert handler.on_signal(event("perf.cache.size:42"))
        assert handler.on_signal(event("errors.are.not.error"))
        assert handler.on_signal(event("perf"))
    assert telemetry.get_events()[:2] == [
        TelemetryEvent(
            "EphemeralSignal",
            "event",
            {"signal": "error.timeout", "operation_id": "42", "key": "order-7", "depth": "2"},
        ),
        TelemetryEvent(
            "error.timeout",
            "exception",
            {"signal": "error.timeout", "operation_id": "42", "key": "order-7", "depth": "2"},
        ),
    ]
    assert [(e.type, e.name) for e in telemetry.get_events()[2:]] == [
        ("event", "EphemeralSignal"),
        ("metric", "perf.cache.size"),
        ("event", "EphemeralSignal"),
        ("event", "EphemeralSignal"),
        ("metric", "perf"),
    ]
    assert telemetry.get_events()[3].properties == {
        "signal": "perf.cache.size:42",
        "operation_id": "7",
        "key": "none",
        "depth": "0",
        "value": "42",
    }
    assert telemetry.get_events()[6].properties["value"] == "1"


def test_parse_metric() -> None:
    assert parse_metric("perf.db.query:12.5ms") == ("perf.db.query", 12.5, "ms")
    assert parse_metric("perf.cache.size:42") == ("perf.cache.size", 42.0, "")
    assert parse_metric("perf.ratio:-1.5e3") == ("perf.ratio", -1500.0, "")
    assert parse_metric("perf.hit:95%") == ("perf.hit", 95.0, "%")
    assert parse_metric("perf.retry") == ("perf.retry", 1.0, "")
    assert parse_metric("perf.label:fast") == ("perf.label:fast", 1.0, "")


async def test_bounded_queue_refuses_and_counts() -> None:
    client = GatedClient()
    async with TelemetrySignalHandler(client, max_queue=3, max_concurrency=1) as handler:
        results = [handler.on_signal(event(f"s.{n}")) for n in range(5)]
        assert results == [True, True, True, False, False]
        assert (handler.queued_count, handler.dropped_count, handler.pending_count) == (3, 2, 3)
        await anyio.sleep(1)  # the worker takes s.0 and waits at the gate: room for one more
        assert handler.on_signal(event("s.5"))
        assert not handler.on_signal(event("s.6"))
        client.gate.set()
    assert client.signals == ["s.0", "s.1", "s.2", "s.5"]
    assert (handler.processed_count, handler.dropped_count) == (4, 3)
    assert accounted(handler, 7)


async def test_concurrency_is_bounded() -> None:
    probe = ConcurrencyProbe()

    class Slow(InMemoryTelemetryClient):
        async def track_event(self, name: str, properties: Mapping[str, str]) -> None:
            with probe:
                await anyio.sleep(0.1)

    async with TelemetrySignalHandler(Slow(), max_concurrency=3) as handler:
        for n in range(20):
            handler.on_signal(event(f"s.{n}"))
    assert probe.peak == 3
    assert handler.processed_count == 20


async def test_failing_client_is_counted_and_the_handler_carries_on() -> None:
    class Flaky(InMemoryTelemetryClient):
        async def track_exception(self, name: str, properties: Mapping[str, str]) -> None:
            raise ConnectionError("collector down")

    client = Flaky()
    async with TelemetrySignalHandler(client) as handler:
        for name in ("a", "error.x", "b"):
            handler.on_signal(event(name))
    assert (handler.processed_count, handler.failed_count) == (2, 1)
    assert [e.properties["signal"] for e in client.get_events()] == ["a", "error.x", "b"]


async def test_close_timeout_bounds_the_wait_and_counts_what_was_not_sent() -> None:
    client = GatedClient()  # never opened
    start = anyio.current_time()
    async with TelemetrySignalHandler(client, max_concurrency=2, close_timeout=2) as handler:
        for n in range(5):
            handler.on_signal(event(f"s.{n}"))
    assert anyio.current_time() - start == pytest.approx(2)
    assert (handler.processed_count, handler.dropped_count, handler.pending_count) == (0, 5, 0)
    assert not handler.on_signal(event("late"))
    assert handler.dropped_count == 6


async def test_exception_out_of_the_block_drops_what_is_queued() -> None:
    client = GatedClient()
    with pytest.raises(KeyError):
        async with TelemetrySignalHandler(client, max_concurrency=1) as handler:
            for n in range(4):
                handler.on_signal(event(f"s.{n}"))
            raise KeyError("boom")
    assert (handler.processed_count, handler.dropped_count) == (0, 4)
    assert accounted(handler, 4)


@pytest.mark.parametrize("seed", range(4))
async def test_outer_cancel_at_random_deadlines_accounts_for_every_call(seed: int) -> None:
    rng = random.Random(seed)
    calls = 0
    sent: list[str] = []

    class Slow(InMemoryTelemetryClient):
        async def track_event(self, name: str, properties: Mapping[str, str]) -> None:
            await anyio.sleep(ms(rng.random() / 4))
            sent.append(properties["signal"])

    with anyio.move_on_after(ms(rng.uniform(0.1, 3))):
        async with TelemetrySignalHandler(Slow(), max_concurrency=2, max_queue=10) as handler:
            for n in range(40):
                calls += 1
                handler.on_signal(event(f"s.{n}"))
                await anyio.sleep(ms(rng.random() / 10))
    count = len(sent)
    await anyio.sleep(5)
    assert len(sent) == count  # nothing is sent after the cancel
    assert accounted(handler, calls)
    assert handler.processed_count == count


async def test_not_running_refuses() -> None:
    handler = TelemetrySignalHandler(InMemoryTelemetryClient())
    assert not handler.on_signal(event("early"))
    assert handler.dropped_count == 1
    async with handler:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with handler:
            pass


@pytest.mark.real_time
async def test_on_signal_from_other_threads() -> None:
    telemetry = InMemoryTelemetryClient()
    async with TelemetrySignalHandler(telemetry) as handler:
        sink = SignalSink()
        sink.subscribe(handler.on_signal)

        def emit_many() -> None:
            for n in range(200):
                sink.emit(f"thread.{n}")

        await anyio.to_thread.run_sync(emit_many)
    assert handler.processed_count == 200
    assert sorted(e.properties["signal"] for e in telemetry.get_events()) == sorted(f"thread.{n}" for n in range(200))


def test_bad_input_names_the_argument() -> None:
    client = InMemoryTelemetryClient()
    with pytest.raises(TypeError, match="client"):
        TelemetrySignalHandler(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queue"):
        TelemetrySignalHandler(client, max_queue=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        TelemetrySignalHandler(client, max_concurrency=0)
    with pytest.raises(ValueError, match="close_timeout"):
        TelemetrySignalHandler(client, close_timeout=-1)
    with pytest.raises(ValueError, match="max_events"):
        InMemoryTelemetryClient(max_events=0)
    with pytest.raises(TypeError, match="tracer_provider"):
        OpenTelemetryClient(tracer_provider=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="meter_provider"):
        OpenTelemetryClient(meter_provider=object())  # type: ignore[arg-type]


def test_clients_satisfy_the_protocol() -> None:
    assert ITelemetryClient is TelemetryClient
    assert isinstance(InMemoryTelemetryClient(), TelemetryClient)
    assert isinstance(OpenTelemetryClient(TracerProvider(), MeterProvider()), TelemetryClient)
    memory = InMemoryTelemetryClient(max_events=2)
    anyio.run(memory.track_event, "a", {"signal": "a"})
    anyio.run(memory.track_event, "b", {"signal": "b"})
    anyio.run(memory.track_event, "c", {"signal": "c"})
    assert [e.properties["signal"] for e in memory.get_events()] == ["b", "c"]
    assert len(memory) == 2
    memory.clear()
    assert memory.get_events() == []


# -- OpenTelemetry, with the real SDK ----------------------------------------------------------------


@pytest.fixture
def otel() -> Iterator[tuple[TracerProvider, InMemorySpanExporter, MeterProvider, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield tracer_provider, exporter, meter_provider, reader
    tracer_provider.shutdown()
    meter_provider.shutdown()


def histograms(reader: InMemoryMetricReader) -> dict[str, tuple[str, HistogramDataPoint]]:
    data = reader.get_metrics_data()
    assert data is not None
    found = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "ephemeral.patterns.telemetry"
            for metric in scope.metrics:
                [point] = metric.data.data_points
                assert isinstance(point, HistogramDataPoint)
                found[metric.name] = (metric.unit or "", point)
    return found


async def test_opentelemetry_signals_land_on_the_emitting_span(otel: Any) -> None:
    tracer_provider, exporter, meter_provider, reader = otel
    tracer = tracer_provider.get_tracer("test")
    client = OpenTelemetryClient(tracer_provider=tracer_provider, meter_provider=meter_provider)

    async def body(order: str) -> None:
        with tracer.start_as_current_span(f"handle {order}"):
            current_operation().emit("order.received")
            current_operation().emit("perf.db.query:12.5ms")
            if order == "bad":
                current_operation().emit("error.validation")
            await anyio.sleep(1)  # the span is still open when the handler gets to the signals

    async with TelemetrySignalHandler(client) as handler:
        options = EphemeralOptions(on_signal=handler.on_signal, max_concurrency=2)
        async with EphemeralWorkCoordinator(body, options) as coordinator:
            await coordinator.enqueue("good")
            await coordinator.enqueue("bad")
    assert handler.processed_count == 5
    spans: dict[str, ReadableSpan] = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"handle good", "handle bad"}
    assert [e.name for e in spans["handle good"].events] == ["order.received", "perf.db.query:12.5ms"]
    bad = spans["handle bad"]
    assert [e.name for e in bad.events] == ["order.received", "perf.db.query:12.5ms", "error.validation", "exception"]
    exception = bad.events[3].attributes
    assert exception is not None
    assert exception["exception.type"] == "error.validation"
    assert exception["exception.message"] == "signal error.validation"
    assert exception["ephemeral.signal.signal"] == "error.validation"
    first = bad.events[0].attributes
    assert first is not None and first["ephemeral.signal.key"] == "none" and first["ephemeral.signal.depth"] == "0"
    assert bad.status.is_unset  # the signal reports; it does not fail the span
    [(unit, point)] = histograms(reader).values()
    assert unit == "ms"
    assert (point.count, point.sum) == (2, 25.0)


async def test_opentelemetry_signals_outside_any_span_get_their_own(otel: Any) -> None:
    tracer_provider, exporter, meter_provider, reader = otel
    client = OpenTelemetryClient(tracer_provider=tracer_provider, meter_provider=meter_provider)
    async with TelemetrySignalHandler(client) as handler:
        handler.on_signal(event("cache.miss", key="user-1"))
        handler.on_signal(event("perf.cache.load:3"))
        handler.on_signal(event("perf.cache.load:5"))
        handler.on_signal(event("perf.queue.depth:40"))
    spans = exporter.get_finished_spans()
    assert {span.name for span in spans} == {"ephemeral.signal"}
    assert [span.events[0].name for span in spans] == [
        "cache.miss",
        "perf.cache.load:3",
        "perf.cache.load:5",
        "perf.queue.depth:40",
    ]
    attributes = spans[0].attributes
    assert attributes is not None and attributes["ephemeral.signal.key"] == "user-1"
    found = histograms(reader)
    assert {name: (point.count, point.sum) for name, (_, point) in found.items()} == {
        "perf.cache.load": (2, 8.0),
        "perf.queue.depth": (1, 40.0),
    }


async def test_opentelemetry_metric_names_outside_the_instrument_syntax_still_record(otel: Any) -> None:
    """OpenTelemetry instrument names allow letters, digits and ``_.-/`` (255 at most): others are replaced."""
    tracer_provider, _, meter_provider, reader = otel
    client = OpenTelemetryClient(tracer_provider=tracer_provider, meter_provider=meter_provider)
    async with TelemetrySignalHandler(client) as handler:
        handler.on_signal(event("perf.label:fast"))  # no numeric value: counts 1 under its whole name
        handler.on_signal(event("perf.label:fast"))
        handler.on_signal(event("perf.cache.load:1e400"))  # not a finite number: counts 1, never inf
        handler.on_signal(event("perf." + "x" * 300 + ":2"))
    assert (handler.processed_count, handler.failed_count) == (4, 0)
    found = {name: (point.count, point.sum) for name, (_, point) in histograms(reader).items()}
    assert found == {
        "perf.label_fast": (2, 2.0),
        "perf.cache.load_1e400": (1, 1.0),
        ("perf." + "x" * 300)[:255]: (1, 2.0),
    }


def test_parse_metric_never_gives_a_value_that_is_not_finite() -> None:
    assert parse_metric("perf.cache.load:1e400") == ("perf.cache.load:1e400", 1.0, "")


async def test_readme_example() -> None:
    """The README's examples run as written (on this backend, in virtual time) and print what it shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert await arun_readme_examples(readme) == "".join(output_blocks(readme))
