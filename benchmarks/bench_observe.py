"""Observation patterns against what a Python user would write instead, in one short run, as ratios.

1. Telemetry: signals/s through ``TelemetrySignalHandler`` + ``OpenTelemetryClient`` into the
   OpenTelemetry SDK (a no-op span exporter, no metric reader) against calling the OpenTelemetry API
   directly for each signal (``span.add_event``, plus an exception event for ``error.*`` and a histogram
   record for ``perf.*``), inside one recording span, same signals.
2. Watcher latency: emit -> callback (p50, p99) of ``SignalLogWatcher`` against a watcher polling the
   sink's window every 200 ms (the original's design), same emits.
3. Download: throughput of ``SignalingHttpClient.download_with_signals`` against a bare
   ``httpx`` stream of the same 32 MiB body from a server on 127.0.0.1.

    python benchmarks/bench_observe.py   # about 10 s; needs httpx, opentelemetry-sdk and the packages

asyncio only (anyio.run). Figures depend on the machine; the ratios are the point.
"""

from __future__ import annotations

import platform
import statistics
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from ephemeral.core import SignalEvent, SignalSink
from ephemeral.patterns.signalinghttp import SignalingHttpClient
from ephemeral.patterns.signallogwatcher import SignalLogWatcher
from ephemeral.patterns.telemetry import OpenTelemetryClient, TelemetrySignalHandler, parse_metric

TELEMETRY_SIGNALS = 20_000
WATCHER_EMITS = 150
WATCHER_SPACING = 0.007
POLL_INTERVAL = 0.2
BODY = bytes(range(256)) * (32 * 4096)  # 32 MiB
DOWNLOAD_ROUNDS = 3


class NoOpExporter(SpanExporter):
    """Accepts spans and does nothing with them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def providers() -> tuple[TracerProvider, MeterProvider]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(NoOpExporter()))
    return tracer_provider, MeterProvider()


def signal_names(n: int) -> list[str]:
    """80% plain signals, 10% error.*, 10% perf.* with a value."""
    names = []
    for i in range(n):
        kind = i % 10
        names.append("error.db.timeout" if kind == 0 else f"perf.db.query:{i % 50}ms" if kind == 1 else "order.placed")
    return names


# -- 1. telemetry -------------------------------------------------------------------------------------


async def telemetry_direct(names: list[str]) -> float:
    tracer_provider, meter_provider = providers()
    tracer = tracer_provider.get_tracer("bench")
    meter = meter_provider.get_meter("bench")
    histograms: dict[str, Any] = {}
    now = datetime.now(timezone.utc)
    events: list[SignalEvent[Any]] = [SignalEvent(name, i, "k", now) for i, name in enumerate(names)]
    start = time.perf_counter()
    with tracer.start_as_current_span("batch") as span:
        for event in events:
            attributes = {"ephemeral.signal.signal": event.signal, "ephemeral.signal.key": event.key or "none"}
            span.add_event(event.signal, attributes)
            if event.signal.startswith("error."):
                span.add_event("exception", {"exception.type": event.signal, **attributes})
            elif event.signal.startswith("perf."):
                metric, value, unit = parse_metric(event.signal)
                histogram = histograms.get(metric)
                if histogram is None:
                    histogram = histograms[metric] = meter.create_histogram(metric, unit=unit)
                histogram.record(value)
    elapsed = time.perf_counter() - start
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return len(names) / elapsed


async def telemetry_handler(names: list[str]) -> tuple[float, float]:
    """Signals/s end to end (queued and exported), and signals/s on the emitting path (on_signal alone)."""
    tracer_provider, meter_provider = providers()
    tracer = tracer_provider.get_tracer("bench")
    client = OpenTelemetryClient(tracer_provider=tracer_provider, meter_provider=meter_provider)
    now = datetime.now(timezone.utc)
    events: list[SignalEvent[Any]] = [SignalEvent(name, i, "k", now) for i, name in enumerate(names)]
    start = time.perf_counter()
    with tracer.start_as_current_span("batch"):
        async with TelemetrySignalHandler(client, max_queue=len(events)) as handler:
            for event in events:
                handler.on_signal(event)
            queued = time.perf_counter() - start
            await handler.flush()
    elapsed = time.perf_counter() - start
    assert handler.processed_count == len(events), handler
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return len(names) / elapsed, len(names) / queued


# -- 2. watcher latency ---------------------------------------------------------------------------------


async def emit_spaced(sink: SignalSink, sent: dict[str, float]) -> None:
    for n in range(WATCHER_EMITS):
        name = f"error.{n}"
        sent[name] = time.perf_counter()
        sink.emit(name)
        sink.emit("info.noise")
        await anyio.sleep(WATCHER_SPACING)


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def watcher_subscribed() -> tuple[float, float]:
    sink = SignalSink()
    sent: dict[str, float] = {}
    latencies: list[float] = []

    def on_match(event: SignalEvent[Any]) -> None:
        latencies.append(time.perf_counter() - sent[event.signal])

    async with SignalLogWatcher(sink, on_match=on_match, pattern="error.*"):
        await emit_spaced(sink, sent)
    assert len(latencies) == WATCHER_EMITS
    return percentiles(latencies)


async def watcher_polling() -> tuple[float, float]:
    """What the original did: every 200 ms, read the window and call back for signals not seen yet."""
    sink = SignalSink()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    seen: set[int] = set()

    def poll() -> None:
        for event in sink.sense("error.*"):
            if event.operation_id not in seen:
                seen.add(event.operation_id)
                latencies.append(time.perf_counter() - sent[event.signal])

    async def poller() -> None:
        while True:
            await anyio.sleep(POLL_INTERVAL)
            poll()

    async with anyio.create_task_group() as tg:
        tg.start_soon(poller)
        await emit_spaced(sink, sent)
        await anyio.sleep(POLL_INTERVAL * 1.5)
        tg.cancel_scope.cancel()
    assert len(latencies) == WATCHER_EMITS
    return percentiles(latencies)


# -- 3. download ------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        view = memoryview(BODY)
        for start in range(0, len(BODY), 1 << 20):
            self.wfile.write(view[start : start + (1 << 20)])


async def download_bare(client: httpx.AsyncClient, url: str) -> float:
    start = time.perf_counter()
    parts: list[bytes] = []
    async with client.stream("GET", url) as response:
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
    data = b"".join(parts)
    elapsed = time.perf_counter() - start
    assert len(data) == len(BODY)
    return len(data) / elapsed


async def download_signals(client: httpx.AsyncClient, url: str) -> float:
    sink = SignalSink()
    start = time.perf_counter()
    data = await SignalingHttpClient.download_with_signals(client, url, sink)
    elapsed = time.perf_counter() - start
    assert len(data) == len(BODY) and sink.count("progress:*") == 5
    return len(data) / elapsed


async def downloads() -> tuple[float, float]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/body"
    bare: list[float] = []
    signals: list[float] = []
    try:
        async with httpx.AsyncClient() as client:
            await download_bare(client, url)  # warm up the connection
            for _ in range(DOWNLOAD_ROUNDS):
                bare.append(await download_bare(client, url))
                signals.append(await download_signals(client, url))
    finally:
        httpd.shutdown()
        httpd.server_close()
    return max(bare), max(signals)


async def main() -> None:
    print(f"# bench_observe: Python {platform.python_version()}, {platform.machine()}, asyncio\n")
    names = signal_names(TELEMETRY_SIGNALS)
    await telemetry_direct(names[:1000])  # warm up
    direct = await telemetry_direct(names)
    handler, emitting_path = await telemetry_handler(names)
    print(f"telemetry, {TELEMETRY_SIGNALS:,} signals into the OpenTelemetry SDK (no-op exporter):")
    print(f"  OpenTelemetry API called directly per signal: {direct:>10,.0f} signals/s")
    print(f"  TelemetrySignalHandler + OpenTelemetryClient: {handler:>10,.0f} signals/s  ({handler / direct:.2f}x)")
    path_ratio = emitting_path / direct
    print(f"  of which on the emitting path (on_signal):    {emitting_path:>10,.0f} signals/s  ({path_ratio:.1f}x)")

    sub50, sub99 = await watcher_subscribed()
    poll50, poll99 = await watcher_polling()
    print(f"\nwatcher, emit -> callback latency over {WATCHER_EMITS} matching emits:")
    print(f"  SignalLogWatcher (subscription):   p50 {sub50 * 1e3:8.3f} ms   p99 {sub99 * 1e3:8.3f} ms")
    print(f"  polling the window every 200 ms:   p50 {poll50 * 1e3:8.3f} ms   p99 {poll99 * 1e3:8.3f} ms")
    print(f"  polling / subscription:            p50 {poll50 / sub50:8.0f}x    p99 {poll99 / sub99:8.0f}x")

    bare, signals = await downloads()
    mib = 1 << 20
    print(f"\ndownload, {len(BODY) // mib} MiB over loopback, best of {DOWNLOAD_ROUNDS}:")
    print(f"  bare httpx stream:                 {bare / mib:8.0f} MiB/s")
    print(f"  download_with_signals:             {signals / mib:8.0f} MiB/s  ({signals / bare:.2f}x)")


if __name__ == "__main__":
    anyio.run(main)
