"""ephemeral in one minute: the seed README's first example, end to end, with what happened printed.

Run it with `python -m nox -s demo` (or `python examples/demo.py` with the packages installed).
"""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import anyio

from ephemeral.atoms.data import DataStorageConfig
from ephemeral.atoms.data_sqlite import SqliteDataStorageAtom
from ephemeral.core import (
    EphemeralKeyedWorkCoordinator,
    EphemeralOptions,
    EphemeralResultCoordinator,
    EphemeralWorkCoordinator,
    PriorityLane,
    PriorityWorkCoordinator,
    PriorityWorkCoordinatorOptions,
    SignalSink,
    current_operation,
    ephemeral_for_each,
)
from ephemeral.patterns.persistentwindow import PersistentSignalWindow


@dataclass(frozen=True)
class WorkItem:
    name: str


@dataclass
class Order:
    id: str
    total: Decimal


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

    print("\n== Keyed: per-customer order, and a slow customer does not hold up the others ==")
    finished: list[str] = []

    async def process_order(order: tuple[str, int]) -> None:
        await anyio.sleep(0.2 if order[0] == "slow-customer" else 0.01)
        finished.append(f"{order[0]}#{order[1]}")

    keyed_options = EphemeralOptions(max_concurrency=4, max_concurrency_per_key=1)
    async with EphemeralKeyedWorkCoordinator(lambda order: order[0], process_order, keyed_options) as keyed:
        for n in range(3):
            for customer in ("slow-customer", "alice", "bob"):
                await keyed.enqueue((customer, n))
        await anyio.sleep(0.1)
        print(f"after 0.1 s: {finished}")
    print(f"all done, each customer in order: {finished}")

    print("\n== Priority lanes: high goes first at every dispatch ==")
    order: list[str] = []

    async def handle(job: str) -> None:
        await anyio.sleep(0.01)
        order.append(job)

    lanes = PriorityWorkCoordinatorOptions(
        lanes=[PriorityLane("high"), PriorityLane("normal"), PriorityLane("low")],
        ephemeral_options=EphemeralOptions(max_concurrency=1),
    )
    async with PriorityWorkCoordinator(handle, lanes) as prioritised:
        for n in range(2):
            await prioritised.enqueue(f"low-{n}", "low")
            await prioritised.enqueue(f"normal-{n}", "normal")
            await prioritised.enqueue(f"high-{n}", "high")
    print(f"ran in this order: {order}")

    print("\n== Results by operation id ==")

    async def fetch(n: int) -> int:
        await anyio.sleep(0.01)
        return n * n

    async with EphemeralResultCoordinator(fetch, EphemeralOptions(max_concurrency=4)) as results:
        operation_id = await results.enqueue(12)
        snapshot = await results.wait_for_result(operation_id)
        if snapshot.has_result:
            print(f"operation {operation_id} returned {snapshot.result}")

    print("\n== Storage: SQLite saves, batched, and a signal window that survives a restart ==")
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "demo.db"
        sink = SignalSink()
        config = DataStorageConfig(database_name="orders")
        async with SqliteDataStorageAtom[str, Order](sink, config, db, value_type=Order) as storage:
            for n in range(1_000):
                storage.enqueue_save(f"order-{n}", Order(f"order-{n}", Decimal(n) / 4))
            print(f"order-7 before it is written: {await storage.load('order-7')}")
            await storage.flush()
            stats = storage.storage_stats()
            print(f"{stats.written} saves in {stats.batches} transactions; {sink.count('saved.data.orders')} signals")
        for run in (1, 2):
            async with PersistentSignalWindow(db, flush_interval=30.0) as window:
                restored = await window.load_from_disk()
                window.emit(f"app.started.run{run}")
                print(f"run {run}: restored {restored}, sensed {[e.signal for e in window.sense('app.*')]}")

    accounted = metrics.total_completed + metrics.total_failed + metrics.total_skipped + metrics.total_cancelled
    if accounted != metrics.total_enqueued:
        sys.exit("accounting broken")


if __name__ == "__main__":
    anyio.run(main)
