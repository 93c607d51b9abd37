"""ephemeral in one minute: the seed README's first example, end to end, with what happened printed.

Run it with `python -m nox -s demo` (or `python examples/demo.py` with the packages installed).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import anyio

from ephemeral.core import (
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalSink,
    current_operation,
    ephemeral_for_each,
)


@dataclass(frozen=True)
class WorkItem:
    name: str


async def process(item: WorkItem) -> None:
    """Pretend to do some I/O; every fifth item fails; each success leaves a signal."""
    await anyio.sleep(random.uniform(0.01, 0.05))
    if item.name.endswith(("4", "9")):
        raise ConnectionError(f"upstream refused {item.name}")
    current_operation().emit(f"work.done.{item.name}")


async def main() -> None:
    random.seed(7)
    sink = SignalSink()
    print("== Long-lived work coordinator (max_concurrency=8, window of 200) ==")
    options = EphemeralOptions(max_concurrency=8, max_tracked_operations=200, signals=sink)
    async with EphemeralWorkCoordinator(process, options) as coordinator:
        await coordinator.enqueue(WorkItem("data"))
        for i in range(20):
            await coordinator.enqueue(WorkItem(f"item-{i}"))
        await anyio.sleep(0.02)
        print(
            f"while running: {len(coordinator.get_running())} running, {coordinator.pending_count} pending, "
            f"{coordinator.total_completed} completed"
        )
        sink.emit("system.busy")  # a signal every coordinator sharing the sink sees
    # leaving the block completed intake and drained: every accepted item is accounted for
    metrics = coordinator.get_metrics()
    print(
        f"after drain: enqueued={metrics.total_enqueued} completed={metrics.total_completed} "
        f"failed={metrics.total_failed} pending={metrics.pending_count} active={metrics.active_count}"
    )
    for failed in coordinator.get_failed():
        print(f"  failed op {failed.operation_id}: {type(failed.error).__name__}: {failed.error}")
    print(f"signals in the window: {coordinator.count_signals_matching('work.done.*')} x work.done.*")
    print(f"the sink saw system.busy: {sink.detect('system.busy')}")

    print("\n== One-shot parallel processing (ephemeral_for_each) ==")
    items = [WorkItem(f"batch-{i}") for i in range(12)]
    result = await ephemeral_for_each(items, process, EphemeralOptions(max_concurrency=4))
    print(f"processed {result.total_enqueued}: {result.total_completed} completed, {result.total_failed} failed")

    accounted = metrics.total_completed + metrics.total_failed + metrics.total_skipped + metrics.total_cancelled
    if accounted != metrics.total_enqueued:
        sys.exit("accounting broken")


if __name__ == "__main__":
    anyio.run(main)
