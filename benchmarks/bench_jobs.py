"""Signal jobs and the logging bridge: signals/s from ``sink.emit`` to a job body, log records/s into signals.

    python benchmarks/bench_jobs.py [--signals N] [--records N] [--repeat N]

Needs ephemeral-core, ephemeral-attributes and ephemeral-logging (with structlog) installed. Prints a
markdown report on stdout, in a few seconds:

1. Signals per second from ``sink.emit`` to the body of the one job whose trigger matches, with 1, 10 and
   100 jobs registered (the others' triggers have other literal prefixes, as distinct jobs usually do), on
   asyncio; the ratio to the 1-job rate shows that matching does not grow with the number of jobs.
2. The matching step alone: ``PatternIndex.match`` against testing each of 100 compiled globs in turn.
3. Log records per second through ``SignalLoggerProvider`` (record -> named signal with a payload on a
   ``SignalSink``) against ``logging.NullHandler`` in the same run, as a ratio.
"""

from __future__ import annotations

import argparse
import gc
import logging
import time
from typing import Any

import anyio
import anyio.lowlevel

from ephemeral.attributes import EphemeralJobRunnerOptions, EphemeralSignalJobRunner, ephemeral_job
from ephemeral.core import SignalEvent, SignalSink
from ephemeral.core.lowlevel import PatternIndex, compile_pattern
from ephemeral.logging import EventId, SignalLoggerProvider


class Counter:
    """Counts job bodies and sets ``finished`` at ``target``."""

    def __init__(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.finished = anyio.Event()


def make_jobs(count: int, counter: Counter) -> object:
    """An object with ``count`` jobs, triggers ``bench.j{i}.*``; each body counts its calls."""
    attributes: dict[str, Any] = {}
    for index in range(count):

        async def body(self: object, event: SignalEvent[Any]) -> None:
            counter.count += 1
            if counter.count == counter.target:
                counter.finished.set()

        body.__name__ = f"job{index}"
        attributes[body.__name__] = ephemeral_job(f"bench.j{index}.*", max_concurrency=0)(body)
    return type(f"Jobs{count}", (), attributes)()


async def signals_per_second(jobs: int, signals: int) -> float:
    """Emit ``signals`` signals matching job 0 and time until every body has run."""
    sink = SignalSink(max_capacity=1000)
    counter = Counter(signals)
    options = EphemeralJobRunnerOptions(max_pending=signals, max_tracked_operations=200, max_operation_lifetime=None)
    async with EphemeralSignalJobRunner(sink, [make_jobs(jobs, counter)], options):
        start = time.perf_counter()
        for n in range(signals):
            sink.emit("bench.j0.tick")
            if n % 100 == 99:
                await anyio.lowlevel.checkpoint()
        await counter.finished.wait()
        return signals / (time.perf_counter() - start)


def matching(patterns: int, lookups: int) -> tuple[float, float]:
    """Lookups/s of one name among ``patterns`` globs: the pattern index, and a loop over every glob."""
    globs = [f"bench.j{i}.*" for i in range(patterns)]
    index: PatternIndex[int] = PatternIndex()
    for number, glob in enumerate(globs):
        index.add(glob, number)
    compiled = [(compile_pattern(glob), number) for number, glob in enumerate(globs)]
    name = "bench.j0.tick"
    start = time.perf_counter()
    for _ in range(lookups):
        index.match(name)
    indexed = lookups / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(lookups):
        [number for glob, number in compiled if glob.matches(name)]
    linear = lookups / (time.perf_counter() - start)
    return indexed, linear


def records_per_second(handler: logging.Handler, records: int) -> float:
    logger = logging.getLogger(f"bench.{type(handler).__name__}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    event_id = {"event_id": EventId(1001, "DbFailure")}
    gc.collect()
    start = time.perf_counter()
    for _ in range(records):
        logger.error("Order store failed", extra=event_id)
    return records / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rates: dict[int, float] = {}
    for jobs in (1, 10, 100):
        anyio.run(signals_per_second, jobs, 1000)  # warm-up
        rates[jobs] = max(anyio.run(signals_per_second, jobs, args.signals) for _ in range(args.repeat))
    print(f"## Signals from sink.emit to a job body ({args.signals:,} signals, asyncio, best of {args.repeat})\n")
    print("| jobs registered | signals/s | ratio to 1 job |")
    print("|---:|---:|---:|")
    for jobs, value in rates.items():
        print(f"| {jobs} | {value:,.0f} | {value / rates[1]:.2f}x |")

    indexed, linear = max((matching(100, 100_000) for _ in range(args.repeat)), key=lambda pair: pair[0])
    print("\n## Matching one signal name against 100 job triggers\n")
    print("| method | lookups/s | ratio |")
    print("|---|---:|---:|")
    print(f"| PatternIndex.match | {indexed:,.0f} | {indexed / linear:.1f}x |")
    print(f"| every glob in turn | {linear:,.0f} | 1.0x |")

    sink = SignalSink(max_capacity=1000)
    provider = max(records_per_second(SignalLoggerProvider(sink), args.records) for _ in range(args.repeat))
    null = max(records_per_second(logging.NullHandler(), args.records) for _ in range(args.repeat))
    print(f"\n## Log records through a handler ({args.records:,} records, best of {args.repeat})\n")
    print("| handler | records/s | ratio to NullHandler |")
    print("|---|---:|---:|")
    print(f"| SignalLoggerProvider (a signal with a payload per record) | {provider:,.0f} | {provider / null:.2f}x |")
    print(f"| logging.NullHandler | {null:,.0f} | 1.00x |")


if __name__ == "__main__":
    main()
