"""Benchmarks of ephemeral-core's hot paths against what a Python user would pick instead.

One process, one run: coordinator throughput (asyncio and trio), SignalSink.emit and sense, the memory
of a long coordinator run, and EphemeralLruCache against cachetools and async-lru. Prints a markdown
report on stdout (progress goes to stderr).

    python benchmarks/run.py [--quick] [--backend asyncio|trio|both] [--repeat N] [--json PATH]

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cache
import bench_keyed
import bench_memory
import bench_sink
import bench_throughput
from report import check, mib, rate, ratio, table, verdict

CONCURRENCY = 64


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Targets:
    """Every target checked in the run: (what, measured, target, met)."""

    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def add(self, what: str, measured: float, op: str, bound: float) -> bool:
        ok = check(measured, op, bound)
        self.rows.append((what, ratio(measured), f"{op} {bound:g}x", ok))
        return ok


# -- machine ------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def library_source() -> dict[str, Any]:
    """Where ephemeral.core was imported from and, in a git checkout, its commit and uncommitted edits."""
    import ephemeral.core

    package = Path(ephemeral.core.__file__).resolve().parent
    source: dict[str, Any] = {"path": str(package), "commit": None, "modified_files": []}
    if "site-packages" in package.parts:
        return source  # an installed copy (nox installs it non-editable): the checkout's state says nothing
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=package, capture_output=True, text=True, check=True
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=package, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return source  # installed from a wheel, or no git
    source["commit"] = commit.stdout.strip()
    source["modified_files"] = [line[3:] for line in status.stdout.splitlines()]
    return source


def machine_info() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "versions": {
            name: _version(name)
            for name in ("ephemeral-core", "anyio", "trio", "aiometer", "sniffio", "cachetools", "async-lru")
        },
        "ephemeral_core_source": library_source(),
    }


# -- 1. throughput --------------------------------------------------------------------------------


def timed_run(backend: str, run: bench_throughput.Runner, n: int) -> float:
    """Seconds `run` takes for `n` items, timed inside a fresh event loop of `backend`."""

    async def main() -> float:
        start = time.perf_counter()
        await run(n, CONCURRENCY, bench_throughput.DEFAULT_BOUND)
        return time.perf_counter() - start

    gc.collect()
    return anyio.run(main, backend=backend)


def throughput(backends: Sequence[str], n: int, repeats: int, targets: Targets) -> tuple[str, dict[str, Any]]:
    plan = {backend: bench_throughput.contenders(backend) for backend in backends}
    for backend, contenders in plan.items():  # warm-up: imports, caches, code paths
        for contender in contenders:
            timed_run(backend, contender.run, max(n // 20, 1000))
    times: dict[tuple[str, str], list[float]] = {(b, c.name): [] for b, cs in plan.items() for c in cs}
    for rep in range(repeats):
        for backend, contenders in plan.items():
            shift = rep % len(contenders)  # rotate the order each round: no contender always runs first
            for contender in contenders[shift:] + contenders[:shift]:
                seconds = timed_run(backend, contender.run, n)
                times[backend, contender.name].append(seconds)
                log(f"  [{rep + 1}/{repeats}] {backend:7} {contender.name}: {n / seconds:,.0f} items/s")

    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    for backend, contenders in plan.items():
        own = times[backend, bench_throughput.COORDINATOR.name]
        own_best, own_median = n / min(own), n / statistics.median(own)
        for contender in contenders:
            runs = times[backend, contender.name]
            best, median = n / min(runs), n / statistics.median(runs)
            figures[f"{backend}/{contender.name}"] = {
                "items_per_s_best": best,
                "items_per_s_median": median,
                "seconds": runs,
                "coordinator_ratio_best": own_best / best,
                "coordinator_ratio_median": own_median / median,
            }
            if contender is bench_throughput.COORDINATOR:
                rows.append([backend, f"**{contender.name}**", rate(best), rate(median), "-", "-", "-", "-"])
                continue
            target, met = "-", "-"
            if contender.target is not None:
                op, bound = contender.target
                ok = targets.add(f"throughput {backend}: coordinator / {contender.name}", own_best / best, op, bound)
                target, met = f"{op} {bound:g}x", verdict(ok)
            rows.append(
                [
                    backend,
                    contender.name,
                    rate(best),
                    rate(median),
                    ratio(own_best / best),
                    ratio(own_median / median),
                    target,
                    met,
                ]
            )
    headers = [
        "backend",
        "contender",
        "items/s (best)",
        "items/s (median)",
        "coord ÷ it (best)",
        "coord ÷ it (median)",
        "target",
        "met",
    ]
    text = (
        f"## 1. Coordinator throughput: {n:,} no-op items, max_concurrency={CONCURRENCY}, "
        f"best and median of {repeats} interleaved runs\n\n" + table(headers, rows, "llrrrrll")
    )
    return text, figures


# -- 2. emit ----------------------------------------------------------------------------------------


def emit_rate(n: int, repeats: int, targets: Targets) -> tuple[str, dict[str, Any]]:
    names = list(bench_sink.EMIT_CONTENDERS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        bench_sink.time_calls(bench_sink.EMIT_CONTENDERS[name](), max(n // 20, 1000))
    for rep in range(repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            fn = bench_sink.EMIT_CONTENDERS[name]()
            gc.collect()
            times[name].append(bench_sink.time_calls(fn, n))
        log(f"  [{rep + 1}/{repeats}] emit: " + ", ".join(f"{times[k][-1] / n * 1e9:.0f} ns" for k in names))

    per_call = {name: min(runs) / n for name, runs in times.items()}
    floor = per_call[bench_sink.FLOOR]
    empty = per_call["empty call (loop + call overhead, for scale)"]
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    for name in names:
        cost = per_call[name]
        net = (cost - empty) / (floor - empty) if floor > empty else float("nan")
        target, met = "-", "-"
        bound = bench_sink.EMIT_TARGETS.get(name)
        if bound is not None:
            ok = targets.add(f"{name.removeprefix('SignalSink.')} / floor", cost / floor, "<=", bound)
            target, met = f"<= {bound:g}x", verdict(ok)
        figures[name] = {
            "ns_per_call_best": cost * 1e9,
            "ns_per_call_median": statistics.median(times[name]) / n * 1e9,
            "calls_per_s_best": 1 / cost,
            "ratio_to_floor": cost / floor,
            "ratio_to_floor_net_of_call": net,
        }
        rows.append([name, f"{cost * 1e9:.0f}", rate(1 / cost), ratio(cost / floor), ratio(net), target, met])
    headers = ["contender", "ns/call (best)", "calls/s", "÷ floor", "÷ floor, net of empty call", "target", "met"]
    text = (
        f"## 2. `SignalSink.emit`: {n:,} calls of emit({bench_sink.EMIT_NAME!r}, key={bench_sink.EMIT_KEY!r}), "
        f"best of {repeats}\n\n" + table(headers, rows, "lrrrrll")
    )
    return text, figures


# -- 3. sense -----------------------------------------------------------------------------------------


def sense_time(capacity: int, calls: int, repeats: int, targets: Targets) -> tuple[str, dict[str, Any]]:
    names = list(bench_sink.SENSE_CONTENDERS)
    prepared: dict[str, Callable[[], int]] = {name: bench_sink.SENSE_CONTENDERS[name](capacity) for name in names}
    expected = capacity // 2
    for call in prepared.values():  # warm-up
        bench_sink.time_sense(call, 2, expected)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            times[name].append(bench_sink.time_sense(prepared[name], calls, expected))
        log(f"  [{rep + 1}/{repeats}] sense: " + ", ".join(f"{times[k][-1] * 1e6:.0f} µs" for k in names))

    best = {name: min(runs) for name, runs in times.items()}
    sense_name = names[0]
    targets.add(
        f"sense({bench_sink.SENSE_PATTERN!r}) / regex over tuples", best[sense_name] / best[names[1]], "<=", 1.5
    )
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    for name in names:
        seconds = best[name]
        figures[name] = {
            "us_per_call_best": seconds * 1e6,
            "us_per_call_median": statistics.median(times[name]) * 1e6,
            "ns_per_window_signal": seconds / capacity * 1e9,
            "ns_per_match": seconds / expected * 1e9,
        }
        rows.append(
            [
                name,
                f"{seconds * 1e6:,.0f}",
                f"{statistics.median(times[name]) * 1e6:,.0f}",
                f"{seconds / capacity * 1e9:.0f}",
                f"{seconds / expected * 1e9:.0f}",
                f"{expected:,}",
                ratio(best[sense_name] / seconds),
            ]
        )
    headers = [
        "contender",
        "µs/call (best)",
        "µs/call (median)",
        "ns per signal in window",
        "ns per match",
        "matches",
        "sense ÷ it",
    ]
    text = (
        f"## 3. `sense({bench_sink.SENSE_PATTERN!r})` over a full window of {capacity:,} signals "
        f"(max_capacity={capacity:,}, half matching): {calls} calls per run, best and median of {repeats}\n\n"
        + table(headers, rows, "lrrrrrr")
    )
    return text, figures


# -- 3b. sense and detect as the window grows; 3c. patterns ------------------------------------------------


def detect_scaling(windows: list[int], calls: int, repeats: int, targets: Targets) -> tuple[str, dict[str, Any]]:
    sinks = {capacity: bench_sink.make_scaling_sink(capacity) for capacity in windows}
    queries = bench_sink.SCALING_QUERIES
    best: dict[str, dict[int, float]] = {name: {} for name in queries}
    for _ in range(repeats):
        for name, (query, expected) in queries.items():
            for capacity, sink in sinks.items():
                gc.collect()
                seconds = bench_sink.time_query(sink, query, expected, calls)
                best[name][capacity] = min(best[name].get(capacity, seconds), seconds)
    small, large = windows[0], windows[-1]
    rows = [
        [name, *(f"{best[name][c] * 1e6:,.1f}" for c in windows), ratio(best[name][large] / best[name][small])]
        for name in queries
    ]
    targets.add(
        f'sense("error.*") at {large:,} ÷ at {small:,} signals (10 matches each)',
        best['sense("error.*") (10 matches)'][large] / best['sense("error.*") (10 matches)'][small],
        "<=",
        2.0,
    )
    targets.add(
        f"detect(literal) at {large:,} ÷ at {small:,} signals",
        best['detect("work.item.7") (literal name)'][large] / best['detect("work.item.7") (literal name)'][small],
        "<=",
        2.0,
    )
    headers = ["query", *(f"µs at {c:,} signals" for c in windows), f"{large:,} ÷ {small:,}"]
    text = (
        f"## 3b. `sense`/`detect` as the window grows: full windows, {bench_sink.SCALING_MATCHES} `error.*` "
        f"signals in each, {calls} calls per run, best of {repeats}\n\n"
        "Flat rows cost the same whatever the window holds (they follow the matches); the last row has no "
        "literal prefix, so it scans.\n\n" + table(headers, rows, "l" + "r" * (len(windows) + 1))
    )
    return text, {name: {str(c): v * 1e6 for c, v in by.items()} for name, by in best.items()}


def patterns(calls: int, repeats: int, targets: Targets) -> tuple[str, dict[str, Any]]:
    figures: dict[str, Any] = {"lookup_ns": {}, "glob_ms": {}}
    rows: list[list[str]] = []
    if bench_sink.PatternIndex is not None:
        for count in bench_sink.PATTERN_COUNTS:
            index_call, loop_call = bench_sink.make_index_lookup(count), bench_sink.make_loop_lookup(count)
            if index_call() != loop_call():
                raise RuntimeError("PatternIndex and the loop disagree")
            index_best = loop_best = float("inf")
            for _ in range(repeats):
                gc.collect()
                index_best = min(index_best, bench_sink.time_lookup(index_call, calls))
                loop_best = min(loop_best, bench_sink.time_lookup(loop_call, max(calls // max(count // 10, 1), 100)))
            figures["lookup_ns"][count] = {"index": index_best * 1e9, "loop": loop_best * 1e9}
            rows.append(
                [f"{count:,}", f"{index_best * 1e9:,.0f}", f"{loop_best * 1e9:,.0f}", ratio(loop_best / index_best)]
            )
        first, last = figures["lookup_ns"][1]["index"], figures["lookup_ns"][1000]["index"]
        targets.add("PatternIndex.match, 1,000 patterns ÷ 1 pattern", last / first, "<=", 3.0)
        lookup = table(["patterns", "PatternIndex.match (ns)", "loop over compiled (ns)", "loop ÷ index"], rows, "lrrr")
    else:
        lookup = "(this ephemeral-core has no PatternIndex)"
    value = "a" * bench_sink.GLOB_VALUE_SIZE
    glob_rows = []
    for label, pattern in bench_sink.GLOBS:
        ours = bench_sink.time_glob(bench_sink.compile_pattern(pattern).matches, value)
        reference = bench_sink.time_glob(lambda v, p=pattern: bench_sink.fnmatch.fnmatchcase(v, p), value)
        figures["glob_ms"][label] = {"compile_pattern": ours * 1e3, "fnmatchcase": reference * 1e3}
        glob_rows.append([f"`{label}`", f"{ours * 1e3:,.1f}", f"{reference * 1e3:,.1f}", ratio(ours / reference)])
    text = (
        f"## 3c. One signal name against N registered patterns (`{bench_sink.PROBE_NAME}`; per-service globs "
        f"and literal names, and one leading-star glob), best of {repeats}\n\n"
        + lookup
        + f"\n\nPathological globs over {bench_sink.GLOB_VALUE_SIZE:,} characters (no match), one call each:\n\n"
        + table(["glob", "compile_pattern (ms)", "fnmatch.fnmatchcase (ms)", "÷ fnmatch"], glob_rows, "lrrr")
    )
    return text, figures


# -- 4. memory ------------------------------------------------------------------------------------------


def memory(backends: Sequence[str], total: int, checkpoints: list[int]) -> tuple[str, dict[str, Any]]:
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    flat_notes: list[str] = []
    for backend in backends:
        log(f"  memory: {total:,} items on {backend} (tracemalloc on)")
        baseline, readings = bench_memory.run(backend, total, checkpoints, CONCURRENCY)
        figures[backend] = {"baseline": baseline.as_dict(), "readings": [r.as_dict() for r in readings]}
        for reading in readings:
            rows.append(
                [
                    backend,
                    f"{reading.items:,}",
                    mib(reading.traced_current),
                    mib(reading.traced_peak),
                    mib(reading.rss),
                    mib(None if reading.rss is None or baseline.rss is None else reading.rss - baseline.rss, True),
                    mib(reading.rss_peak),
                    f"{reading.gc_objects - baseline.gc_objects:+,}",
                    f"{reading.window:,}",
                    f"{reading.pending:,}",
                    f"{reading.elapsed:.1f}",
                ]
            )
        first, last = readings[0], readings[-1]
        growth = last.traced_current - first.traced_current
        flat_notes.append(
            f"- {backend}: traced memory after {first.items:,} items {mib(first.traced_current)}, after "
            f"{last.items:,} items {mib(last.traced_current)} ({mib(growth, True)} for "
            f"{last.items - first.items:,} more items, {growth / (last.items - first.items):+.2f} bytes/item); "
            f"live GC objects {last.gc_objects - first.gc_objects:+,}."
        )
        figures[backend]["traced_growth_bytes_first_to_last"] = growth
    headers = [
        "backend",
        "items done",
        "traced now",
        "traced peak (since prev. row)",
        "VmRSS",
        "RSS Δ from start",
        "VmHWM",
        "GC objects Δ",
        "window ops",
        "pending",
        "elapsed s",
    ]
    text = (
        f"## 4. Memory: {total:,} no-op items through one EphemeralWorkCoordinator "
        f"(default options, max_concurrency={CONCURRENCY}), tracemalloc on\n\n"
        "Traced figures count memory allocated since just before the coordinator was created and still alive.\n\n"
        + table(headers, rows, "lrrrrrrrrrr")
        + "\n\n"
        + "\n".join(flat_notes)
    )
    return text, figures


# -- 5. cache -----------------------------------------------------------------------------------------------


def _interleaved(names: Sequence[str], run: Callable[[str], float], repeats: int, label: str) -> dict[str, list[float]]:
    """Each name's timings over `repeats` rounds, the order rotated from round to round."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        shift = rep % len(names)
        for name in [*names[shift:], *names[:shift]]:
            gc.collect()
            times[name].append(run(name))
        log(f"  [{rep + 1}/{repeats}] {label}")
    return times


def cache(
    backends: Sequence[str], rounds: int, misses: int, repeats: int, targets: Targets
) -> tuple[str, dict[str, Any]]:
    hits = {f"{bench_cache.where(c.backend)}/{c.name}": c for c in bench_cache.hit_contenders(list(backends))}
    for contender in hits.values():  # warm-up
        bench_cache.time_hit(contender, max(rounds // 20, 1))
    n = rounds * bench_cache.KEYS
    hit_times = _interleaved(list(hits), lambda key: bench_cache.time_hit(hits[key], rounds), repeats, "cache hits")
    per_hit = {key: min(runs) for key, runs in hit_times.items()}
    ttl_get = per_hit[f"sync code/{bench_cache.TTL_GET}"]
    lru_get = per_hit[f"sync code/{bench_cache.LRU_GET}"]
    figures: dict[str, Any] = {"hits": {}, "misses": {}}
    rows: list[list[str]] = []
    for key, contender in hits.items():
        cost = per_hit[key]
        async_lru = per_hit.get(f"{contender.backend}/{bench_cache.ASYNC_LRU}")
        by_async_lru = "-" if async_lru is None or contender.timed is None else ratio(cost / async_lru)
        target, met = "-", "-"
        if contender.target:
            ok_ttl = targets.add(
                f"cache hit, {bench_cache.where(contender.backend)}: {contender.name} / {bench_cache.TTL_GET}",
                cost / ttl_get,
                "<=",
                2.0,
            )
            ok_lru = targets.add(
                f"cache hit, {bench_cache.where(contender.backend)}: {contender.name} / {bench_cache.LRU_GET}",
                cost / lru_get,
                "<=",
                2.0,
            )
            target, met = "<= 2x both", verdict(ok_ttl and ok_lru)
        figures["hits"][key] = {
            "ns_per_hit_best": cost * 1e9,
            "ns_per_hit_median": statistics.median(hit_times[key]) * 1e9,
            "ratio_to_ttlcache_get": cost / ttl_get,
            "ratio_to_lrucache_get": cost / lru_get,
        }
        floor = contender.floor
        rows.append(
            [
                bench_cache.where(contender.backend),
                contender.name,
                f"{cost * 1e9:,.0f}",
                f"{statistics.median(hit_times[key]) * 1e9:,.0f}",
                "-" if floor else ratio(cost / ttl_get),
                "-" if floor else ratio(cost / lru_get),
                "-" if floor else by_async_lru,
                target,
                met,
            ]
        )
    hit_table = table(
        [
            "where",
            "contender",
            "ns/hit (best)",
            "ns/hit (median)",
            "÷ TTLCache.get",
            "÷ LRUCache.get",
            "÷ async-lru",
            "target",
            "met",
        ],
        rows,
        "llrrrrrll",
    )

    miss_contenders = {
        f"{bench_cache.where(c.backend)}/{c.name}": c for c in bench_cache.miss_contenders(list(backends))
    }
    for miss in miss_contenders.values():  # warm-up
        bench_cache.time_miss(miss, max(misses // 20, 100))
    miss_times = _interleaved(
        list(miss_contenders), lambda key: bench_cache.time_miss(miss_contenders[key], misses), repeats, "cache misses"
    )
    per_miss = {key: min(runs) / misses for key, runs in miss_times.items()}
    cachetools_miss = per_miss[f"sync code/{bench_cache.CACHETOOLS_MISS}"]
    rows = []
    for key, miss in miss_contenders.items():
        cost = per_miss[key]
        async_lru = per_miss.get(f"{miss.backend}/{bench_cache.ASYNC_LRU_MISS}")
        figures["misses"][key] = {
            "ns_per_miss_best": cost * 1e9,
            "ns_per_miss_median": statistics.median(miss_times[key]) / misses * 1e9,
            "ratio_to_cachetools": cost / cachetools_miss,
        }
        rows.append(
            [
                bench_cache.where(miss.backend),
                miss.name,
                f"{cost * 1e9:,.0f}",
                f"{statistics.median(miss_times[key]) / misses * 1e9:,.0f}",
                ratio(cost / cachetools_miss),
                "-" if async_lru is None or miss.timed is None else ratio(cost / async_lru),
            ]
        )
    miss_table = table(
        ["where", "contender", "ns/miss (best)", "ns/miss (median)", "÷ cachetools get+set", "÷ async-lru"],
        rows,
        "llrrrr",
    )
    text = (
        f"## 5. `EphemeralLruCache`: hits and misses against cachetools and async-lru, best and median of {repeats}\n\n"
        f"Hits: {n:,} lookups per run in {rounds} passes over {bench_cache.KEYS:,} cached keys (max_size="
        f"{bench_cache.MAX_SIZE:,}, ttl={bench_cache.TTL:g} s; EphemeralLruCache keys are hot after 3 accesses); "
        "a run's figure is its fastest pass, so that other processes taking the CPU count as little as possible. "
        "Ratios are ns per hit ÷ the contender's (below 1: faster). The target, judged with signals sampled "
        f"(sample_rate={bench_cache.SAMPLED}, so a hit emits nothing 99 times in 100): a hit costs at most 2x "
        "cachetools' TTLCache.get and LRUCache.get. With the default sample_rate=1 every hit also emits a signal.\n\n"
        + hit_table
        + f"\n\nMisses: {misses:,} new keys per run (the mean), each loaded (or set) and stored; the caches fill up to "
        f"{bench_cache.MAX_SIZE:,} entries and then evict one per miss.\n\n" + miss_table
    )
    return text, figures


# -- main -------------------------------------------------------------------------------------------------


# -- 6. keyed ----------------------------------------------------------------------------------------------


def keyed(backends: Sequence[str], rounds: int, repeats: int, targets: Targets) -> tuple[str, dict[str, Any]]:
    """When the fast keys finish while one key is slow: the keyed coordinator against FIFO semaphores."""
    contenders = {
        "EphemeralKeyedWorkCoordinator": bench_keyed.run_ephemeral,
        "FIFO dispatcher, global + per-key semaphores": bench_keyed.run_fifo_semaphores,
    }
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    for backend in backends:
        best: dict[str, dict[str, float]] = {}
        for _ in range(repeats):
            for name, run in contenders.items():
                result = anyio.run(run, rounds, backend=backend)
                if name not in best or result["fast"] < best[name]["fast"]:
                    best[name] = result
        ours = best["EphemeralKeyedWorkCoordinator"]["fast"]
        for name, result in best.items():
            rows.append(
                [
                    backend,
                    name,
                    f"{result['fast'] * 1000:,.0f}",
                    f"{result['slow'] * 1000:,.0f}",
                    ratio(result["fast"] / ours),
                ]
            )
        baseline = best["FIFO dispatcher, global + per-key semaphores"]["fast"]
        targets.add(f"keyed, {backend}: fast keys done, FIFO semaphores / coordinator", baseline / ours, ">", 1)
        figures[backend] = best
    text = (
        f"## 6. Keyed work with one slow key: best of {repeats}\n\n"
        f"{len(bench_keyed.KEYS)} keys, {rounds} items each, arriving interleaved; the slow key's items take "
        f"{bench_keyed.SLOW * 1000:g} ms, the others' {bench_keyed.FAST * 1000:g} ms; one item per key at a time, "
        f"{bench_keyed.CONCURRENCY} at once. Lower is better.\n\n"
        + table(["backend", "contender", "fast keys done (ms)", "slow key done (ms)", "÷ coordinator"], rows)
    )
    return text, figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10x fewer items and calls (a smoke run)")
    parser.add_argument("--backend", choices=("asyncio", "trio", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 5, 3 with --quick)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also save every figure as JSON")
    parser.add_argument(
        "--only",
        default="throughput,emit,sense,detect,patterns,memory,cache,keyed",
        help="comma-separated sections to run (default: all of them)",
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be >= 1")
    unknown = set(args.only.split(",")) - {
        "throughput",
        "emit",
        "sense",
        "detect",
        "patterns",
        "memory",
        "cache",
        "keyed",
    }
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    scale = 10 if args.quick else 1
    repeats = args.repeat or (3 if args.quick else 5)
    sections = set(args.only.split(","))
    config = {
        "quick": args.quick,
        "backends": backends,
        "repeats": repeats,
        "throughput_items": 100_000 // scale,
        "emit_calls": 1_000_000 // scale,
        "sense_window": 10_000,
        "sense_calls": 50 // scale,
        "detect_windows": [1_000, 10_000, 100_000],
        "detect_calls": 200 // scale,
        "pattern_calls": 100_000 // scale,
        "memory_items": 1_000_000 // scale,
        "memory_checkpoints": [c // scale for c in (10_000, 100_000, 500_000, 1_000_000)],
        "concurrency": CONCURRENCY,
        "cache_hit_rounds": 500 // scale,
        "cache_misses": 100_000 // scale,
        "keyed_rounds": 20 // (2 if args.quick else 1),
    }
    info = machine_info()
    print("# ephemeral-core benchmarks\n")
    print(f"- Python {info['python']} ({info['implementation']})")
    print(f"- {info['platform']}; CPU: {info['cpu']}; cpu_count={info['cpu_count']}, usable={info['cpus_usable']}")
    print("- " + ", ".join(f"{name} {version}" for name, version in info["versions"].items()))
    source = info["ephemeral_core_source"]
    where = f"git {source['commit']}" if source["commit"] else "an installed copy, not a git checkout"
    if source["modified_files"]:
        where += ", uncommitted edits in " + ", ".join(source["modified_files"])
    print(f"- ephemeral.core from {source['path']} ({where})")
    print(f"- run: {'--quick, ' if args.quick else ''}backends {', '.join(backends)}, {repeats} runs per measurement")
    print(flush=True)

    targets = Targets()
    texts: dict[str, str] = {}
    figures: dict[str, Any] = {"machine": info, "config": config}
    # Memory runs first, on a fresh heap: after the other sections, RSS could stay flat only because
    # freed arenas get reused. The report still prints the sections in order.
    if "memory" in sections:
        log("memory ...")
        texts["memory"], figures["memory"] = memory(backends, config["memory_items"], config["memory_checkpoints"])
    if "throughput" in sections:
        log("throughput ...")
        texts["throughput"], figures["throughput"] = throughput(backends, config["throughput_items"], repeats, targets)
    if "emit" in sections:
        log("emit ...")
        texts["emit"], figures["emit"] = emit_rate(config["emit_calls"], repeats, targets)
    if "sense" in sections:
        log("sense ...")
        texts["sense"], figures["sense"] = sense_time(config["sense_window"], config["sense_calls"], repeats, targets)
    if "detect" in sections:
        log("detect ...")
        texts["detect"], figures["detect"] = detect_scaling(
            config["detect_windows"], config["detect_calls"], repeats, targets
        )
    if "patterns" in sections:
        log("patterns ...")
        texts["patterns"], figures["patterns"] = patterns(config["pattern_calls"], repeats, targets)
    if "cache" in sections:
        log("cache ...")
        texts["cache"], figures["cache"] = cache(
            backends, config["cache_hit_rounds"], config["cache_misses"], repeats, targets
        )

    if "keyed" in sections:
        log("keyed ...")
        texts["keyed"], figures["keyed"] = keyed(backends, config["keyed_rounds"], repeats, targets)

    for section in ("throughput", "emit", "sense", "detect", "patterns", "memory", "cache", "keyed"):
        if section in texts:
            print(texts[section] + "\n")
    if targets.rows:
        print("## Targets\n")
        print(table(["target", "measured", "wanted", "met"], [[*row[:3], verdict(row[3])] for row in targets.rows]))
        print()
    elapsed = time.perf_counter() - started
    print(f"Total time: {elapsed:.0f} s")
    figures["targets"] = [{"what": w, "measured": m, "wanted": t, "met": ok} for w, m, t, ok in targets.rows]
    figures["elapsed_s"] = elapsed
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        log(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
