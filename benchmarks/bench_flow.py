"""Flow-control patterns against what a Python user would build instead, in one run, as ratios.

    python benchmarks/bench_flow.py [--only adaptiverate,controlledfanout,reactivefanout] [--quick]

- adaptiverate: a loopback HTTP server (a child process on 127.0.0.1) allows R requests per one-second
  window and answers 429 with Retry-After beyond it. N requests, 8 at once, each retried until it
  succeeds, through AdaptiveRateService (no knowledge of R), aiolimiter's AsyncLimiter(R, 1) (told R),
  and a per-call retry loop honouring Retry-After (tenacity-style). Successful requests/s and 429s.
- controlledfanout: ControlledFanOut against anyio CapacityLimiters, one global and one per key
  (Trio's CombinedLimiter recipe, a task per item): items/s, and how soon cold tenants finish while one
  hot tenant floods the queue.
- reactivefanout: peak memory (resident set growth of a child process) with a slow stage 2 and N items
  offered (200,000 by default, ``--items 1000000`` for a million), against two unbounded asyncio.Queues
  with worker tasks.

Needs httpx and aiolimiter besides the packages (``pip install httpx aiolimiter``). Figures depend on the
machine and its load; the report prints both. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import mib, rate, ratio, table

CONCURRENCY = 8

SERVER = r"""
import asyncio, math, sys, time

LIMIT, MODE = int(sys.argv[1]), sys.argv[2]
state = {"start": None, "window": 0, "count": 0}


def answer(path):
    now = time.monotonic()
    if path == b"/reset":
        state.update(start=None, window=0, count=0)
        return b"200 OK", b""
    if state["start"] is None:
        state["start"] = now  # windows start at the first request after a reset
    window = int(now - state["start"])
    if window != state["window"]:
        state["window"], state["count"] = window, 0
    if state["count"] < LIMIT:
        state["count"] += 1
        return b"200 OK", b""
    wait = state["start"] + window + 1 - now
    value = str(max(1, math.ceil(wait))) if MODE == "integer" else f"{wait:.3f}"
    return b"429 Too Many Requests", b"Retry-After: " + value.encode() + b"\r\n"


async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            path = line.split()[1]
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            status, headers = answer(path)
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n" + headers + b"\r\nok")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- adaptiverate ------------------------------------------------------------------------------------


@dataclass
class HttpRun:
    ok: int = 0
    refused: int = 0
    elapsed: float = 0.0


async def http_contender(name: str, port: int, limit: int, total: int) -> HttpRun:
    import httpx
    from aiolimiter import AsyncLimiter

    from ephemeral.patterns.adaptiverate import AdaptiveRateService, RateLimitException

    run = HttpRun()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
        await client.get("/reset")

        async def get() -> str | None:
            """One request: None when it succeeded, else the Retry-After it was refused with."""
            response = await client.get("/api")
            if response.status_code == 429:
                run.refused += 1
                return response.headers["Retry-After"]
            run.ok += 1
            return None

        start = time.perf_counter()
        if name == "AdaptiveRateService":

            async def call(item: int) -> None:
                retry_after = await get()
                if retry_after is not None:
                    raise RateLimitException("429", retry_after=retry_after)

            async with AdaptiveRateService(call, CONCURRENCY, max_attempts=10_000, max_pending=total) as service:
                for item in range(total):
                    await service.process(item)
        else:
            limiter = AsyncLimiter(limit, 1) if name.startswith("aiolimiter") else None
            items = iter(range(total))

            async def worker() -> None:
                for _ in items:
                    while True:
                        if limiter is not None:
                            async with limiter:
                                retry_after = await get()
                        else:
                            retry_after = await get()
                        if retry_after is None:
                            break
                        await asyncio.sleep(float(retry_after))

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        run.elapsed = time.perf_counter() - start
    return run


def bench_adaptiverate(quick: bool) -> str:
    limit = 50  # well below what the client manages over loopback, so the limit is what binds
    total = limit * (2 if quick else 4)
    lines = [
        "## adaptiverate: a server allowing R requests per second, 429 + Retry-After beyond",
        "",
        f"R = {limit} per one-second window, {total} requests, {CONCURRENCY} at once, every request retried "
        "until it succeeds; asyncio, httpx over loopback keep-alive connections.",
        "",
    ]
    for mode in ("fraction", "integer"):
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(limit), mode], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            runs: dict[str, HttpRun] = {}
            for name in ("AdaptiveRateService", f"aiolimiter AsyncLimiter({limit}, 1)", "retry loop on 429"):
                log(f"adaptiverate ({mode} Retry-After): {name}")
                runs[name] = asyncio.run(http_contender(name, port, limit, total))
        finally:
            server.terminate()
            server.wait()
        base = runs[f"aiolimiter AsyncLimiter({limit}, 1)"]
        rows = [
            [
                name,
                rate(run.ok / run.elapsed),
                ratio((run.ok / run.elapsed) / (base.ok / base.elapsed)),
                str(run.refused),
                "no" if name == "AdaptiveRateService" or name.startswith("retry") else "yes",
            ]
            for name, run in runs.items()
        ]
        header = "fractional seconds (`0.347`)" if mode == "fraction" else "whole seconds, rounded up (`1`)"
        lines += [
            f"Retry-After in {header}:",
            "",
            table(["contender", "successful req/s", "vs aiolimiter", "429s received", "told R"], rows, "lrrrl"),
            "",
        ]
    return "\n".join(lines)


# -- controlledfanout --------------------------------------------------------------------------------


async def fanout_ephemeral(
    items: list[tuple[str, int]], body: Callable[[tuple[str, int]], Awaitable[None]], limit: int, per_key: int
) -> None:
    from ephemeral.patterns.controlledfanout import ControlledFanOut

    async with ControlledFanOut(
        key_selector=lambda item: item[0],
        body=body,
        max_global_concurrency=limit,
        per_key_concurrency=per_key,
        max_pending=len(items),
    ) as fanout:
        for item in items:
            await fanout.enqueue(item)


def limiter_fanout(key_first: bool) -> Callable[..., Awaitable[None]]:
    async def fanout(
        items: list[tuple[str, int]], body: Callable[[tuple[str, int]], Awaitable[None]], limit: int, per_key: int
    ) -> None:
        total = anyio.CapacityLimiter(limit)
        keys: dict[str, anyio.CapacityLimiter] = {}

        async def run(item: tuple[str, int]) -> None:
            key = keys.get(item[0])
            if key is None:
                key = keys[item[0]] = anyio.CapacityLimiter(per_key)
            first, second = (key, total) if key_first else (total, key)
            async with first, second:
                await body(item)

        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(run, item)

    return fanout


FANOUTS: dict[str, Callable[..., Awaitable[None]]] = {
    "ControlledFanOut": fanout_ephemeral,
    "anyio limiters, key then global (CombinedLimiter recipe)": limiter_fanout(key_first=True),
    "anyio limiters, global then key": limiter_fanout(key_first=False),
}


def bench_controlledfanout(quick: bool) -> str:
    count = 3_000 if quick else 10_000
    throughput: dict[str, float] = {}

    async def checkpoint(item: tuple[str, int]) -> None:
        await anyio.lowlevel.checkpoint()

    items = [(f"tenant-{n % 100}", n) for n in range(count)]
    for name, fanout in FANOUTS.items():
        best = 0.0
        for _ in range(2):
            log(f"controlledfanout throughput: {name}")
            start = time.perf_counter()
            anyio.run(fanout, items, checkpoint, 64, 4)
            best = max(best, count / (time.perf_counter() - start))
        throughput[name] = best

    flood = 500 if quick else 2_000
    latency: dict[str, float] = {}
    hot = [("hot", n) for n in range(flood)]
    cold = [(f"cold-{n % 20}", n) for n in range(60)]

    for name, fanout in FANOUTS.items():
        log(f"controlledfanout cold tenants: {name}")
        done: list[float] = []

        async def body(item: tuple[str, int], done: list[float] = done) -> None:
            await anyio.sleep(0.005)
            if item[0] != "hot":
                done.append(anyio.current_time())

        async def scenario(
            fanout: Callable[..., Awaitable[None]] = fanout,
            body: Callable[[tuple[str, int]], Awaitable[None]] = body,
            done: list[float] = done,
        ) -> float:
            start = anyio.current_time()
            await fanout(hot + cold, body, 16, 4)
            return max(done) - start

        latency[name] = anyio.run(scenario)

    base = "anyio limiters, key then global (CombinedLimiter recipe)"
    rows = [
        [
            name,
            rate(throughput[name]),
            ratio(throughput[name] / throughput[base]),
            f"{latency[name] * 1000:.0f} ms",
            ratio(latency[name] / latency[base]),
        ]
        for name in FANOUTS
    ]
    return "\n".join(
        [
            "## controlledfanout: global + per-key limits",
            "",
            f"items/s: {count:,} items over 100 tenants, `await checkpoint()` bodies, global 64, per tenant 4 "
            "(best of 2, asyncio). Cold tenants: one hot tenant enqueues "
            f"{flood:,} items of 5 ms first, then 20 cold tenants 3 items each; global 16, per tenant 4; "
            "time until the last cold item is done (a tenant-blind FIFO would need "
            f"{flood * 0.005 / 4:.1f} s).",
            "",
            table(["contender", "items/s", "vs recipe", "cold tenants done after", "vs recipe"], rows, "lrrrr"),
            "",
        ]
    )


# -- reactivefanout ----------------------------------------------------------------------------------


def max_rss() -> int:
    """The peak resident set of this process so far, in bytes.

    On Linux from /proc (VmHWM): ``ru_maxrss`` survives exec, so a child would report its parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


async def slow(item: tuple[str, int]) -> None:
    for _ in range(3):
        await anyio.lowlevel.checkpoint()


async def pipeline_ephemeral(count: int) -> None:
    from ephemeral.patterns.reactivefanout import ReactiveFanOutPipeline

    async with ReactiveFanOutPipeline(
        stage2_work=slow, stage1_max_concurrency=8, stage2_max_concurrency=4, backpressure_threshold=32
    ) as pipeline:
        for n in range(count):
            await pipeline.enqueue(("item", n))


async def pipeline_queues(count: int) -> None:
    first: asyncio.Queue[Any] = asyncio.Queue()
    second: asyncio.Queue[Any] = asyncio.Queue()

    async def stage1() -> None:
        while (item := await first.get()) is not None:
            second.put_nowait(item)

    async def stage2() -> None:
        while (item := await second.get()) is not None:
            await slow(item)

    workers1 = [asyncio.create_task(stage1()) for _ in range(8)]
    workers2 = [asyncio.create_task(stage2()) for _ in range(4)]
    for n in range(count):
        first.put_nowait(("item", n))  # an unbounded queue never pushes back on the producer
        if n % 1000 == 0:
            await asyncio.sleep(0)
    for _ in workers1:
        first.put_nowait(None)
    await asyncio.gather(*workers1)
    for _ in workers2:
        second.put_nowait(None)
    await asyncio.gather(*workers2)


def pipeline_child(name: str, count: int) -> None:
    """Run one pipeline in this (child) process; print the peak RSS growth and the time."""
    import ephemeral.patterns.reactivefanout  # noqa: F401  (imports before the baseline)

    baseline = max_rss()
    start = time.perf_counter()
    if name == "ours":
        asyncio.run(pipeline_ephemeral(count))
    else:
        asyncio.run(pipeline_queues(count))
    print(max_rss() - baseline, time.perf_counter() - start)


def bench_reactivefanout(quick: bool, count: int | None) -> str:
    # 1,000,000 items take about 100 s through the pipeline on a loaded 2-CPU machine: 200,000 by default.
    count = count or (50_000 if quick else 200_000)
    results: dict[str, tuple[int, float]] = {}
    for name, label in (("ours", "ReactiveFanOutPipeline"), ("queues", "two unbounded asyncio.Queues + workers")):
        log(f"reactivefanout: {label}, {count:,} items")
        out = subprocess.run(
            [sys.executable, __file__, "--pipeline-child", name, str(count)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        results[label] = (int(out[0]), float(out[1]))
    ours, theirs = results["ReactiveFanOutPipeline"], results["two unbounded asyncio.Queues + workers"]
    rows = [
        [label, mib(growth), f"{elapsed:.1f} s", rate(count / elapsed)] for label, (growth, elapsed) in results.items()
    ]
    return "\n".join(
        [
            "## reactivefanout: memory with a slow stage 2",
            "",
            f"{count:,} items `('item', n)` offered as fast as the producer may; stage 1: 8 at once, no work; "
            "stage 2: 4 at once, 3 checkpoints each; asyncio. Peak resident set growth of a child process "
            "over its baseline after imports.",
            "",
            table(["contender", "peak RSS growth", "time", "items/s"], rows, "lrrr"),
            "",
            f"Memory: {ratio(ours[0] / max(theirs[0], 1))} of the queue pipeline's; "
            f"time: {ratio(ours[1] / theirs[1])}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="adaptiverate,controlledfanout,reactivefanout")
    parser.add_argument("--quick", action="store_true", help="fewer items and requests")
    parser.add_argument("--items", type=int, default=None, help="items offered to the reactivefanout pipelines")
    parser.add_argument("--pipeline-child", nargs=2, metavar=("NAME", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_child:
        pipeline_child(args.pipeline_child[0], int(args.pipeline_child[1]))
        return
    load = os.getloadavg()[0]
    print(f"# Flow-control patterns\n\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load:.1f}\n")
    sections = args.only.split(",")
    if "adaptiverate" in sections:
        print(bench_adaptiverate(args.quick), flush=True)
    if "controlledfanout" in sections:
        print(bench_controlledfanout(args.quick), flush=True)
    if "reactivefanout" in sections:
        print(bench_reactivefanout(args.quick, args.items), flush=True)


if __name__ == "__main__":
    main()
