"""KeyedSequentialAtom: the seed example, then per-key order, parallelism, fairness, stats and arguments."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from ephemeral.atoms.keyedsequential import KeyedSequentialAtom
from ephemeral.core import AtomStats, CoordinatorClosedError, SignalSink, current_operation
from ephemeral.core.testing import ConcurrencyProbe, Gate

Item = tuple[str, int]


def key_of(item: Item) -> str:
    return item[0]


@dataclass(frozen=True)
class Order:
    customer_id: str
    number: int


async def test_seed_example() -> None:
    """The seed README's example: order 2 of customer A waits for order 1, customer B runs alongside."""
    started: dict[int, float] = {}
    finished: dict[int, float] = {}

    async def process_order(order: Order) -> None:
        started[order.number] = anyio.current_time()
        await anyio.sleep(1)
        finished[order.number] = anyio.current_time()

    order1, order2, order3 = Order("A", 1), Order("A", 2), Order("B", 3)
    async with KeyedSequentialAtom(
        key_selector=lambda order: order.customer_id,
        body=process_order,
        max_concurrency=16,
        per_key_concurrency=1,  # Sequential per key
        enable_fair_scheduling=True,  # Prevent hot key starvation
    ) as atom:
        await atom.enqueue(order1)  # Customer A
        await atom.enqueue(order2)  # Customer A - waits for order1
        await atom.enqueue(order3)  # Customer B - parallel with A

        pending, active, completed, failed = atom.stats()
        assert (pending + active, completed, failed) == (3, 0, 0)

        await atom.drain()
    assert started[2] == pytest.approx(finished[1])
    assert started[3] == pytest.approx(started[1])
    assert atom.stats() == AtomStats(0, 0, 3, 0)


async def test_items_of_a_key_run_in_enqueue_order() -> None:
    """With per_key_concurrency=1 each key's items run one after another, in enqueue order."""
    done: dict[str, list[int]] = {}

    async def body(item: Item) -> None:
        await anyio.sleep(0.01)
        done.setdefault(item[0], []).append(item[1])

    async with KeyedSequentialAtom(key_of, body, max_concurrency=4) as atom:
        for item in [("A", 1), ("A", 2), ("B", 1), ("A", 3)]:
            await atom.enqueue(item)
        await atom.drain()
    assert done == {"A": [1, 2, 3], "B": [1]}


async def test_per_key_order_holds_with_many_interleaved_keys() -> None:
    """Many keys interleaved at intake each keep their own order while they run in parallel."""
    done: dict[str, list[int]] = {}
    running: dict[str, int] = {}

    async def body(item: Item) -> None:
        running[item[0]] = running.get(item[0], 0) + 1
        assert running[item[0]] == 1
        await anyio.sleep(0.01 * (1 + item[1] % 3))
        done.setdefault(item[0], []).append(item[1])
        running[item[0]] -= 1

    async with KeyedSequentialAtom(key_of, body, max_concurrency=3) as atom:
        for number in range(20):
            for key in "ABCDE":
                await atom.enqueue((key, number))
    assert done == {key: list(range(20)) for key in "ABCDE"}


async def test_different_keys_run_in_parallel() -> None:
    """Items of different keys run at the same time, up to max_concurrency."""
    active: set[str] = set()
    peak = 0

    async def body(item: Item) -> None:
        nonlocal peak
        active.add(item[0])
        peak = max(peak, len(active))
        await anyio.sleep(0.05)
        active.discard(item[0])

    async with KeyedSequentialAtom(key_of, body, max_concurrency=4) as atom:
        start = anyio.current_time()
        for key in "ABCD":
            await atom.enqueue((key, 1))
        await atom.drain()
    assert peak == 4
    assert anyio.current_time() - start == pytest.approx(0.05)


async def test_a_slow_key_never_blocks_the_others() -> None:
    """While one key works through a long backlog, other keys' items all finish."""
    finished: list[Item] = []

    async def body(item: Item) -> None:
        await anyio.sleep(100 if item[0] == "slow" else 1)
        finished.append(item)

    async with KeyedSequentialAtom(key_of, body, max_concurrency=2) as atom:
        for number in range(3):
            await atom.enqueue(("slow", number))
        for number in range(5):
            await atom.enqueue(("fast", number))
        await anyio.sleep(10)
        assert finished == [("fast", number) for number in range(5)]
        assert atom.stats() == AtomStats(pending=2, active=1, completed=5, failed=0)


async def test_per_key_concurrency_and_max_concurrency_both_hold() -> None:
    """At most per_key_concurrency items of a key and max_concurrency in all run at once."""
    per_key: defaultdict[str, ConcurrencyProbe] = defaultdict(ConcurrencyProbe)
    total = ConcurrencyProbe()

    async def body(item: Item) -> None:
        with total, per_key[item[0]]:
            await anyio.sleep(1)

    async with KeyedSequentialAtom(key_of, body, max_concurrency=5, per_key_concurrency=2) as atom:
        for number in range(6):
            for key in "ABC":
                await atom.enqueue((key, number))
    peaks, peak_total = {key: probe.peak for key, probe in per_key.items()}, total.peak
    assert peaks == {"A": 2, "B": 2, "C": 2}
    assert peak_total == 5


async def test_without_fair_scheduling_keys_are_served_by_arrival() -> None:
    """Unfair: a hot key's earlier backlog goes first while it has free slots; the cold key waits."""
    order: list[Item] = []

    async def body(item: Item) -> None:
        order.append(item)
        await anyio.sleep(0.005)

    async with KeyedSequentialAtom(key_of, body, max_concurrency=2, per_key_concurrency=2) as atom:
        for number in range(10):
            await atom.enqueue(("A", number))
        for number in range(3):
            await atom.enqueue(("B", number))
    assert [key for key, _ in order] == ["A"] * 10 + ["B"] * 3


async def test_fair_scheduling_prevents_starvation() -> None:
    """Fair: ready keys take turns, so a cold key's items interleave with a hot key's backlog."""
    order: list[Item] = []

    async def body(item: Item) -> None:
        order.append(item)
        await anyio.sleep(0.005)

    async with KeyedSequentialAtom(
        key_of, body, max_concurrency=2, per_key_concurrency=2, enable_fair_scheduling=True
    ) as atom:
        for number in range(10):
            await atom.enqueue(("A", number))
        for number in range(3):
            await atom.enqueue(("B", number))
    assert [item for item in order if item[0] == "B"] == [("B", 0), ("B", 1), ("B", 2)]
    assert [item for item in order if item[0] == "A"] == [("A", number) for number in range(10)]
    # Every B item has started before A's backlog is half done.
    assert max(order.index(("B", number)) for number in range(3)) < 7


async def test_enqueue_returns_the_operation_id() -> None:
    """enqueue returns the operation id (not a counter), with the key on the operation."""

    async def body(item: Item) -> None:
        await anyio.sleep(0.01)

    async with KeyedSequentialAtom(key_of, body, max_concurrency=2) as atom:
        ids = [await atom.enqueue(item) for item in [("A", 1), ("B", 1), ("A", 2)]]
        await atom.drain()
    assert all(operation_id > 0 for operation_id in ids) and len(set(ids)) == 3
    assert {(s.operation_id, s.key) for s in atom.snapshot()} == {(ids[0], "A"), (ids[1], "B"), (ids[2], "A")}


async def test_stats_while_a_key_is_blocked() -> None:
    """With one key blocked, its running item is active and the next one pending."""
    gate = Gate()

    async with KeyedSequentialAtom(key_of, gate, max_concurrency=4) as atom:
        await atom.enqueue(("A", 1))
        await atom.enqueue(("A", 2))
        await anyio.sleep(0.05)
        assert atom.stats() == AtomStats(pending=1, active=1, completed=0, failed=0)
        gate.set()


async def test_snapshot_shows_running_operations_with_their_keys() -> None:
    """snapshot lists the running operation of a blocked item, keyed by str(key)."""
    gate = Gate()

    def first(item: tuple[int, str]) -> int:
        return item[0]

    async with KeyedSequentialAtom(first, gate) as atom:
        operation_id = await atom.enqueue((42, "x"))
        await anyio.sleep(0.05)
        (snapshot,) = atom.snapshot()
        assert (snapshot.operation_id, snapshot.key, snapshot.completed) == (operation_id, "42", None)
        gate.set()


async def test_stats_after_drain_and_failures() -> None:
    """A failing item is counted and its key's later items still run; after drain the counts add up."""
    done: list[Item] = []

    async def body(item: Item) -> None:
        await anyio.sleep(0.01)
        if item[1] == 1:
            raise ValueError(item)
        done.append(item)

    async with KeyedSequentialAtom(key_of, body, max_concurrency=2) as atom:
        for number in range(3):
            for key in "AB":
                await atom.enqueue((key, number))
        await atom.drain()
        assert atom.stats() == AtomStats(0, 0, 4, 2)
        assert atom.coordinator.key_count == 0
    assert [item for item in done if item[0] == "A"] == [("A", 0), ("A", 2)]
    assert sum(1 for s in atom.snapshot() if s.is_faulted) == 2


async def test_enqueue_after_drain_is_refused() -> None:
    """Once drained, enqueue raises CoordinatorClosedError."""

    async def body(item: Item) -> None:
        pass

    async with KeyedSequentialAtom(key_of, body) as atom:
        await atom.drain()
        with pytest.raises(CoordinatorClosedError):
            await atom.enqueue(("A", 1))


async def test_body_signals_carry_the_key() -> None:
    """A signal a body emits carries its item's key and shows on the shared sink."""
    sink = SignalSink()

    async def body(item: Item) -> None:
        current_operation().emit("order.processed")

    async with KeyedSequentialAtom(key_of, body, signals=sink) as atom:
        await atom.enqueue(("customer-7", 1))
        await atom.drain()
        assert [(e.signal, e.key) for e in sink.sense("order.*")] == [("order.processed", "customer-7")]


async def test_default_concurrency_is_the_cpu_count() -> None:
    """Without max_concurrency the atom runs up to one item per CPU."""

    async def body(item: Item) -> None:
        pass

    async with KeyedSequentialAtom(key_of, body) as atom:
        await atom.enqueue(("A", 1))
    assert atom.coordinator.current_max_concurrency == (os.cpu_count() or 1)
    assert atom.stats().completed == 1


async def _noop(item: Item) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": "4"}, TypeError, "max_concurrency"),
        ({"per_key_concurrency": 0}, ValueError, "per_key_concurrency"),
        ({"per_key_concurrency": 1.0}, TypeError, "per_key_concurrency"),
        ({"per_key_concurrency": True}, TypeError, "per_key_concurrency"),
        ({"enable_fair_scheduling": "yes"}, TypeError, "enable_fair_scheduling"),
        ({"signals": "sink"}, TypeError, "signals"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    """An out-of-range or mistyped argument raises at construction, naming that argument."""
    with pytest.raises(error, match=name):
        KeyedSequentialAtom(key_of, _noop, **kwargs)


def test_key_selector_and_body_must_be_callable() -> None:
    """A key_selector or body that is not callable raises TypeError naming it."""
    with pytest.raises(TypeError, match="key_selector"):
        KeyedSequentialAtom("customer_id", _noop)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        KeyedSequentialAtom(key_of, None)  # type: ignore[arg-type]
