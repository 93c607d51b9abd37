"""The keyed work coordinator: per-key order, no head-of-line blocking, fairness, bounded key state."""

from __future__ import annotations

from collections import defaultdict

import anyio
import pytest

from ephemeral.core import EphemeralKeyedWorkCoordinator, EphemeralOptions
from ephemeral.core.testing import ConcurrencyProbe, Gate

Item = tuple[str, int]


def key_of(item: Item) -> str:
    return item[0]


async def test_items_of_a_key_run_in_order() -> None:
    """With one slot per key, each key's items run one after another in enqueue order (reference test 14)."""
    done: dict[str, list[int]] = {}

    async def body(item: Item) -> None:
        await anyio.sleep(0.02)
        done.setdefault(item[0], []).append(item[1])

    async with EphemeralKeyedWorkCoordinator(key_of, body, EphemeralOptions(max_concurrency=4)) as c:
        for item in [("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3), ("B", 3)]:
            await c.enqueue(item)
    assert done == {"A": [1, 2, 3], "B": [1, 2, 3]}
    assert c.total_completed == 6


async def test_different_keys_run_in_parallel() -> None:
    """Different keys run at the same time (reference test 15)."""
    active: set[str] = set()
    peak = 0

    async def body(item: Item) -> None:
        nonlocal peak
        active.add(item[0])
        peak = max(peak, len(active))
        await anyio.sleep(0.05)
        active.discard(item[0])

    async with EphemeralKeyedWorkCoordinator(key_of, body, EphemeralOptions(max_concurrency=4)) as c:
        for key in "ABCD":
            await c.enqueue((key, 1))
    assert peak == 4


async def test_a_slow_key_never_blocks_the_others() -> None:
    """While one key is busy for a long time, the other keys' items all finish (no head-of-line blocking)."""
    finished: dict[str, float] = {}

    async def body(item: Item) -> None:
        await anyio.sleep(100 if item[0] == "slow" else 1)
        finished[f"{item[0]}{item[1]}"] = anyio.current_time()

    async with EphemeralKeyedWorkCoordinator(key_of, body, EphemeralOptions(max_concurrency=2)) as c:
        start = anyio.current_time()
        for i in range(3):
            await c.enqueue(("slow", i))
        for i in range(10):
            await c.enqueue(("fast", i))
        await anyio.sleep(20)
        assert sum(1 for name in finished if name.startswith("fast")) == 10
        assert not any(name.startswith("slow") for name in finished)
        assert c.get_active_count_for_key("slow") == 1
        assert c.get_pending_count_for_key("slow") == 2
    assert finished["slow2"] - start == pytest.approx(300)


async def test_per_key_and_global_limits() -> None:
    """max_concurrency_per_key and max_concurrency both hold."""
    per_key: defaultdict[str, ConcurrencyProbe] = defaultdict(ConcurrencyProbe)
    total = ConcurrencyProbe()

    async def body(item: Item) -> None:
        with total, per_key[item[0]]:
            await anyio.sleep(1)

    options = EphemeralOptions(max_concurrency=5, max_concurrency_per_key=2)
    async with EphemeralKeyedWorkCoordinator(key_of, body, options) as c:
        for i in range(6):
            for key in "ABC":
                await c.enqueue((key, i))
    peaks, peak_total = {key: probe.peak for key, probe in per_key.items()}, total.peak
    assert peaks == {"A": 2, "B": 2, "C": 2}
    assert peak_total == 5


async def test_fair_scheduling_interleaves_keys() -> None:
    """With fair scheduling a hot key's backlog does not delay a cold key queued after it."""
    order: list[str] = []

    async def body(item: Item) -> None:
        order.append(item[0])
        await anyio.sleep(1)

    for fair in (False, True):
        order.clear()
        options = EphemeralOptions(max_concurrency=1, enable_fair_scheduling=fair, fair_scheduling_threshold=100)
        async with EphemeralKeyedWorkCoordinator(key_of, body, options) as c:
            for i in range(5):
                await c.enqueue(("hot", i))
            await c.enqueue(("cold", 0))
        if fair:
            assert order.index("cold") <= 2
        else:
            assert order == ["hot"] * 5 + ["cold"]


async def test_fair_scheduling_threshold_refuses_try_enqueue() -> None:
    """try_enqueue refuses an item whose key already has fair_scheduling_threshold items waiting."""
    gate = Gate()

    options = EphemeralOptions(max_concurrency=1, enable_fair_scheduling=True, fair_scheduling_threshold=2)
    async with EphemeralKeyedWorkCoordinator(key_of, gate, options) as c:
        assert c.try_enqueue(("A", 0))
        await anyio.sleep(0.01)
        assert c.try_enqueue(("A", 1))
        assert c.try_enqueue(("A", 2))
        assert not c.try_enqueue(("A", 3))
        assert c.try_enqueue(("B", 0))
        await c.enqueue(("A", 4))  # enqueue waits only for global room
        gate.set()
    assert c.total_completed == 5


async def test_key_state_is_released_when_idle() -> None:
    """Per-key state disappears when a key has nothing waiting or running: memory follows active keys."""

    async def body(item: Item) -> None:
        pass

    async with EphemeralKeyedWorkCoordinator(key_of, body, EphemeralOptions(max_concurrency=8)) as c:
        for i in range(5000):
            await c.enqueue((f"key-{i}", i))
        await anyio.sleep(0.1)
        assert c.key_count == 0
        assert c.pending_count == 0
    assert c.total_completed == 5000


async def test_snapshots_and_signals_by_key() -> None:
    """Operations carry str(key); snapshots and signals can be read per key."""
    from ephemeral.core import current_operation

    async def body(item: tuple[int, str]) -> None:
        current_operation().emit(f"done.{item[1]}")

    async with EphemeralKeyedWorkCoordinator(lambda item: item[0], body, EphemeralOptions()) as c:
        for item in [(1, "a"), (2, "b"), (1, "c")]:
            await c.enqueue(item)
    assert [s.key for s in c.get_snapshot_for_key(1)] == ["1", "1"]
    assert [e.signal for e in c.get_signals_by_key(1)] == ["done.a", "done.c"]


async def test_cancel_accounts_for_waiting_keyed_items() -> None:
    """Cancelling a keyed coordinator counts every waiting and running item once."""

    async def body(item: Item) -> None:
        await anyio.sleep(100)

    async with EphemeralKeyedWorkCoordinator(key_of, body, EphemeralOptions(max_concurrency=2)) as c:
        for i in range(4):
            for key in "AB":
                await c.enqueue((key, i))
        await anyio.sleep(1)
        c.cancel()
    assert c.total_cancelled == 8 == c.total_enqueued
    assert c.key_count == 0


def test_key_selector_must_be_callable() -> None:
    """A non-callable key selector is rejected at construction."""

    async def body(item: Item) -> None:
        pass

    with pytest.raises(TypeError, match="key_selector"):
        EphemeralKeyedWorkCoordinator("key", body)  # type: ignore[arg-type]
