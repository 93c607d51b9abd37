"""Memory of a coordinator over a long run: readings after 10k, 100k, 500k and 1M no-op items.

The claim checked (docs/design.md, "Performance rules"): memory is bounded by the window (``max_tracked_operations``
finished operations, ``max_concurrency`` running ones, the pending bound), not by the amount of work.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from typing import Any

import anyio

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator


@dataclass(frozen=True)
class Reading:
    items: int
    #: tracemalloc: bytes allocated since tracing started and still alive, and the peak since the previous reading.
    traced_current: int
    traced_peak: int
    #: Resident set size now (VmRSS) and the process's high-water mark (VmHWM), in bytes.
    rss: int | None
    rss_peak: int
    gc_objects: int
    window: int
    pending: int
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status in bytes (Linux only)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_now() -> int | None:
    """Current resident set size in bytes, where /proc is available."""
    return _status_bytes("VmRSS")


def rss_peak() -> int:
    """The process's peak resident set size in bytes."""
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


async def _long_run(total: int, checkpoints: list[int], concurrency: int) -> tuple[Reading, list[Reading]]:
    async def body(item: int) -> None:
        pass

    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()

    def read(items: int, window: int, pending: int) -> Reading:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        return Reading(
            items=items,
            traced_current=current,
            traced_peak=peak,
            rss=rss_now(),
            rss_peak=rss_peak(),
            gc_objects=len(gc.get_objects()),
            window=window,
            pending=pending,
            elapsed=time.perf_counter() - start,
        )

    baseline = read(0, 0, 0)
    readings: list[Reading] = []
    marks = set(checkpoints)
    try:
        async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=concurrency)) as c:
            enqueue = c.enqueue
            for i in range(1, total + 1):
                await enqueue(i)
                if i in marks:
                    readings.append(read(i, len(c.get_snapshot()), c.pending_count))
    finally:
        tracemalloc.stop()
    if c.total_completed != total:
        raise RuntimeError(f"coordinator completed {c.total_completed} of {total} items")
    return baseline, readings


def run(backend: str, total: int, checkpoints: list[int], concurrency: int = 64) -> tuple[Reading, list[Reading]]:
    """Push `total` no-op items through one coordinator, reading memory after each checkpoint's enqueue."""
    return anyio.run(_long_run, total, checkpoints, concurrency, backend=backend)
