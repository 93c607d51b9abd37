"""PostgresSignalBridge: emit-to-arrival latency between two processes, and what a bridge adds to ``sink.emit``.

    python benchmarks/bench_signals_postgres.py [--dsn DSN] [--seconds S] [--backend asyncio|trio]
        [--part all|latency|cost] [--rounds N]

Latency: this process emits ``bench.*`` signals on a bridged sink at a fixed rate (paced every
millisecond) for S seconds; a child process with its own bridge on the same table records, for each
signal, its arrival (a sink subscriber) minus its original timestamp (both read from the same machine's
wall clock). Reported: p50/p99/max and how many arrived, at 100, 1,000 and 10,000 signals/s, then at
rising rates until p99 passes 100 ms (the highest rate that stayed under it is reported).

Emit cost: ``sink.emit(name)`` in chunks of 1,000 calls (2 ms apart) on a sink without subscribers, with
one no-op subscriber, and with an entered bridge (publishing every signal, and publishing none of them),
in ns per call (wall clock, so the bridged figure includes the GIL time the bridge's loop work and writer
thread take while a chunk runs). The four sinks are measured in turn, ``--rounds`` times (interleaved, so
a busy machine slows them alike), and the median of each is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread
import psycopg
from anyio.streams.buffered import BufferedByteReceiveStream

from ephemeral.core import SignalEvent, SignalSink
from ephemeral.core.lowlevel import utc_now
from ephemeral.signals.postgres import PostgresSignalBridge

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def receive(dsn: str, table: str) -> None:
    """The child: record each arrival's latency; answer ``report NAME COUNT`` lines with statistics."""
    sink = SignalSink(1000, 60.0)
    latencies: dict[str, list[float]] = {}

    def on_signal(event: SignalEvent[Any]) -> None:
        if event.signal.startswith("bench."):
            latencies.setdefault(event.signal, []).append((utc_now() - event.timestamp).total_seconds())

    sink.subscribe(on_signal)
    async with PostgresSignalBridge(sink, dsn, table=table, subscribe="bench.*", max_queue=1_000_000):
        print("ready", flush=True)
        while line := await anyio.to_thread.run_sync(sys.stdin.readline):
            _, name, count = line.split()
            with anyio.move_on_after(10):
                while True:
                    if len(latencies.get(name, ())) >= int(count):
                        break
                    await anyio.sleep(0.01)
            got = sorted(latencies.get(name, []))
            quantiles = statistics.quantiles(got, n=100) if len(got) > 1 else got * 99 or [0.0] * 99
            answer = {"count": len(got), "p50": quantiles[49], "p99": quantiles[98], "max": got[-1] if got else 0.0}
            print(json.dumps(answer), flush=True)


async def emit_at(sink: SignalSink, name: str, rate: int, seconds: float) -> int:
    """Emit ``rate`` signals a second for ``seconds``, paced every millisecond; how many were emitted."""
    total = int(rate * seconds)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        for _ in range(due - sent):
            sink.emit(name)
        sent = due
        await anyio.sleep(0.001)
    return sent


async def emit_cost(sink: SignalSink, gap: float, n: int = 20_000, chunk: int = 1000) -> float:
    """ns per ``sink.emit`` call over ``n`` calls; only the emit loops are timed.

    The calls come in chunks of ``chunk`` with a pause of ``gap`` seconds between them, as a service
    emits: a bridge's writer takes its queue in the pauses (its thread may still run during the next
    chunk, and that counts).
    """
    spent = 0.0
    emit = sink.emit
    for _ in range(n // chunk):
        start = time.perf_counter()
        for _ in range(chunk):
            emit("cost.probe")
        spent += time.perf_counter() - start
        await anyio.sleep(gap)
    return spent / n * 1e9


async def measure_emit_cost(dsn: str, table: str, rounds: int) -> None:
    """The emit cost table: bare, one no-op subscriber, bridged (published and not), interleaved rounds.

    Twice: chunks 2 ms apart (about 400,000 signals/s, more than PostgreSQL takes here, so the writer is
    never idle and its thread competes for the GIL throughout), and 20 ms apart (about 50,000/s, which
    it keeps up with).
    """
    bare = SignalSink(1000, 60.0)
    subscribed = SignalSink(1000, 60.0)
    subscribed.subscribe(lambda event: None)
    bridged, filtered = SignalSink(1000, 60.0), SignalSink(1000, 60.0)
    sinks = {"bare": bare, "subscribed": subscribed, "bridged": bridged, "filtered": filtered}
    async with (
        PostgresSignalBridge(bridged, dsn, table=f"{table}_cost", subscribe="other.*", max_queue=1_000_000) as bridge,
        PostgresSignalBridge(filtered, dsn, table=f"{table}_idle", publish="other.*", subscribe="other.*"),
    ):
        for gap in (0.002, 0.02):
            results: dict[str, list[float]] = {name: [] for name in sinks}
            for _ in range(rounds):
                for name, sink in sinks.items():
                    results[name].append(await emit_cost(sink, gap))
            with anyio.fail_after(120):
                while True:  # the next figures start with an idle writer
                    if not bridge.stats().queued:
                        break
                    await anyio.sleep(0.05)
            median = {name: statistics.median(values) for name, values in results.items()}
            base = median["bare"]
            print(
                f"sink.emit cost, chunks {gap * 1000:g} ms apart (ns per call, median of {rounds} interleaved "
                "rounds of 20,000 calls in chunks of 1,000):"
            )
            print(f"  no subscriber          {base:8.0f}")
            print(f"  one no-op subscriber   {median['subscribed']:8.0f}  ({median['subscribed'] / base:.2f}x)")
            print(f"  bridge, published      {median['bridged']:8.0f}  ({median['bridged'] / base:.2f}x bare)")
            print(f"  bridge, not published  {median['filtered']:8.0f}  ({median['filtered'] / base:.2f}x bare)")
        print(f"  (cost bridge: {bridge.stats()})")


async def measure_latency(dsn: str, table: str, seconds: float, backend: str) -> None:
    """Emit-to-arrival latency at fixed rates, through a child process's bridge on the same table."""
    args = [sys.executable, __file__, "--receive", "--dsn", dsn, "--table", table, "--backend", backend]
    async with await anyio.open_process(args, stderr=None) as child:
        assert child.stdout is not None and child.stdin is not None
        out = BufferedByteReceiveStream(child.stdout)
        assert await out.receive_until(b"\n", 100) == b"ready"
        sink = SignalSink(1000, 60.0)
        async with PostgresSignalBridge(sink, dsn, table=table, max_queue=1_000_000, window=10.0) as bridge:
            phases = iter(range(1000))

            async def phase(rate: int) -> dict[str, Any]:
                name = f"bench.p{next(phases)}"
                count = await emit_at(sink, name, rate, seconds)
                await child.stdin.send(f"report {name} {count}\n".encode())  # type: ignore[union-attr]
                result: dict[str, Any] = json.loads(await out.receive_until(b"\n", 10_000))
                result["sent"] = count
                line = (
                    f"{rate:>7,}/s: p50 {result['p50'] * 1000:7.1f} ms  p99 {result['p99'] * 1000:7.1f} ms  "
                    f"max {result['max'] * 1000:7.1f} ms  arrived {result['count']}/{count}"
                )
                print(line, flush=True)
                return result

            print(f"latency between two processes ({backend}, {seconds:g} s per rate):")
            for rate in (100, 1_000, 10_000):
                await phase(rate)
            best = 0
            for rate in (2_000, 5_000, 10_000, 20_000, 40_000, 80_000):
                result = await phase(rate)
                if result["p99"] >= 0.1 or result["count"] < result["sent"]:
                    break
                best = rate
            print(f"highest sustained rate with p99 < 100 ms (of those tried): {best:,}/s")
            print(f"bridge stats: {bridge.stats()}")
        await child.stdin.aclose()
        await child.wait()


async def main(dsn: str, seconds: float, backend: str, part: str = "all", rounds: int = 7) -> None:
    table = f"bench_signals_{uuid.uuid4().hex[:12]}"
    try:
        if part in ("all", "latency"):
            await measure_latency(dsn, table, seconds, backend)
        if part in ("all", "cost"):
            await measure_emit_cost(dsn, table, rounds)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{table}", "{table}_cost", "{table}_idle"')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--backend", default="asyncio", choices=("asyncio", "trio"))
    parser.add_argument("--part", default="all", choices=("all", "latency", "cost"))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the emit cost")
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.receive:
        anyio.run(receive, options.dsn, options.table, backend=options.backend)
    else:
        anyio.run(
            main, options.dsn, options.seconds, options.backend, options.part, options.rounds, backend=options.backend
        )
