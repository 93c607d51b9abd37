"""Priority lanes: ordering, per-lane limits, depth, lane signal rules, and the keyed variant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralOptions,
    OperationStatus,
    PriorityKeyedWorkCoordinator,
    PriorityLane,
    PriorityWorkCoordinator,
    PriorityWorkCoordinatorOptions,
    SignalSink,
)
from ephemeral.core.testing import Gate


def lanes(*names: str | PriorityLane, **options: object) -> PriorityWorkCoordinatorOptions:
    return PriorityWorkCoordinatorOptions(lanes=list(names), ephemeral_options=EphemeralOptions(**options))  # type: ignore[arg-type]


async def test_highest_lane_first_at_every_dispatch() -> None:
    """With a backlog in every lane, high items all run before normal ones, and normal before low."""
    order: list[str] = []
    gate = anyio.Event()

    async def body(item: str) -> None:
        if item == "first":
            await gate.wait()
        order.append(item)

    options = lanes(PriorityLane("high"), PriorityLane("normal"), PriorityLane("low"), max_concurrency=1)
    async with PriorityWorkCoordinator(body, options) as c:
        assert await c.enqueue("first", "low")
        await anyio.sleep(0.01)
        for i in range(3):
            assert await c.enqueue(f"low{i}", "low")
            assert await c.enqueue(f"normal{i}")
            assert await c.enqueue(f"high{i}", "high")
        assert c.pending_counts == {"high": 3, "normal": 3, "low": 3}
        gate.set()
        # a late high item still overtakes the waiting normal and low ones
        await c.enqueue("late-high", "high")
    assert order[0] == "first"
    assert order[1:5] == ["high0", "high1", "high2", "late-high"]
    assert order[5:8] == ["normal0", "normal1", "normal2"]
    assert order[8:] == ["low0", "low1", "low2"]


async def test_per_lane_concurrency_from_name_and_field() -> None:
    """'hot:2' and max_concurrency=1 cap their lanes while the global limit holds overall."""
    running: dict[str, int] = {"hot": 0, "cold": 0}
    peaks: dict[str, int] = {"hot": 0, "cold": 0}

    async def body(item: str) -> None:
        running[item] += 1
        peaks[item] = max(peaks[item], running[item])
        await anyio.sleep(1)
        running[item] -= 1

    options = lanes("hot:2", PriorityLane("cold", max_concurrency=1), max_concurrency=8)
    async with PriorityWorkCoordinator(body, options) as c:
        assert c.lanes == ["hot", "cold"]
        for _ in range(6):
            await c.enqueue("hot", "hot")
            await c.enqueue("cold", "cold")
    assert peaks == {"hot": 2, "cold": 1}
    assert c.total_completed == 12


async def test_a_capped_lane_does_not_block_lower_lanes() -> None:
    """When the high lane is at its own limit, lower lanes use the free global slots."""
    started: list[str] = []

    async def body(item: str) -> None:
        started.append(item)
        await anyio.sleep(10)

    options = lanes("high:1", "low", max_concurrency=3)
    async with PriorityWorkCoordinator(body, options) as c:
        for _ in range(3):
            await c.enqueue("high", "high")
        await c.enqueue("low", "low")
        await c.enqueue("low", "low")
        await anyio.sleep(1)
        assert sorted(started) == ["high", "low", "low"]


async def test_max_depth_refuses_and_unknown_lane_raises() -> None:
    """A full lane returns False; an unknown lane raises ValueError naming the lanes."""
    gate = Gate()

    options = lanes(PriorityLane("high", max_depth=2), "normal", max_concurrency=1)
    async with PriorityWorkCoordinator(gate, options) as c:
        assert await c.enqueue(0, "normal")
        await anyio.sleep(0.01)
        assert await c.enqueue(1, "high")
        assert await c.enqueue(2, "high")
        assert not await c.enqueue(3, "high")
        assert not c.try_enqueue(4, "high")
        assert c.try_enqueue(5)
        with pytest.raises(ValueError, match=r"unknown lane 'urgent'.*\['high', 'normal'\]"):
            await c.enqueue(6, "urgent")
        gate.set()
    assert c.total_enqueued == 4 == c.total_completed
    with pytest.raises(CoordinatorClosedError):
        await c.enqueue(7, "high")


async def test_lane_cancel_rule_skips_that_lane_only() -> None:
    """A lane's cancel signal skips its waiting items (counted), other lanes run."""
    sink = SignalSink(clock=anyio.current_time)
    ran: list[str] = []
    gate = anyio.Event()

    async def body(item: str) -> None:
        if item == "blocker":
            await gate.wait()
        ran.append(item)

    options = lanes(PriorityLane("bulk", cancel_on_signals="bulk.stop"), "normal", max_concurrency=1, signals=sink)
    async with PriorityWorkCoordinator(body, options) as c:
        await c.enqueue("blocker")
        await anyio.sleep(0.01)
        for i in range(3):
            await c.enqueue(f"bulk{i}", "bulk")
            await c.enqueue(f"normal{i}")
        sink.emit("bulk.stop")
        gate.set()
    assert ran == ["blocker", "normal0", "normal1", "normal2"]
    assert c.total_skipped == 3
    assert c.total_enqueued == c.total_completed + c.total_skipped
    assert sum(1 for s in c.get_snapshot() if s.status is OperationStatus.SKIPPED) == 3


async def test_lane_defer_rule_holds_that_lane_until_retracted() -> None:
    """A lane's defer signal holds only that lane; its items run once the signal is retracted."""
    sink = SignalSink(clock=anyio.current_time)
    ran: list[tuple[str, float]] = []

    async def body(item: str) -> None:
        ran.append((item, anyio.current_time()))

    options = lanes(
        PriorityLane("reports", defer_on_signals="db.busy", max_defer_attempts=1000),
        "normal",
        max_concurrency=2,
        signals=sink,
    )
    async with PriorityWorkCoordinator(body, options) as c:
        sink.emit("db.busy")
        start = anyio.current_time()
        await c.enqueue("report", "reports")
        await c.enqueue("job")
        await anyio.sleep(5)
        assert [name for name, _ in ran] == ["job"]
        sink.retract("db.busy")
    assert [name for name, _ in ran] == ["job", "report"]
    assert ran[1][1] - start == pytest.approx(5, abs=0.2)


async def test_lane_validation() -> None:
    """Bad lanes are rejected where they are built, naming what is wrong."""
    with pytest.raises(ValueError, match="non-empty"):
        PriorityLane(" ")
    with pytest.raises(ValueError, match="concurrency >= 1"):
        PriorityLane("hot:x")
    with pytest.raises(ValueError, match="also sets max_concurrency"):
        PriorityLane("hot:4", max_concurrency=2)
    with pytest.raises(ValueError, match="max_depth"):
        PriorityLane("a", max_depth=0)
    with pytest.raises(ValueError, match="repeated"):
        PriorityWorkCoordinatorOptions(lanes=["a", "a:2"])
    with pytest.raises(ValueError, match="at least one"):
        PriorityWorkCoordinatorOptions(lanes=[])
    assert PriorityLane("hot:4") == PriorityLane("hot", max_concurrency=4)


async def test_default_single_lane() -> None:
    """Without lanes there is one lane, 'normal', and it is the default."""
    done: list[int] = []

    async def body(item: int) -> None:
        done.append(item)

    async with PriorityWorkCoordinator(body) as c:
        assert c.lanes == ["normal"]
        for i in range(3):
            assert await c.enqueue(i)
        operation_id = await c.enqueue_with_id(3)
        assert operation_id is not None
    assert done == [0, 1, 2, 3]


def recorder(order: list[str], gate: anyio.Event) -> Callable[[tuple[str, str]], Awaitable[None]]:
    """A body recording ``key:name``; the item named ``blocker`` waits for ``gate`` first."""

    async def body(item: tuple[str, str]) -> None:
        if item[1] == "blocker":
            await gate.wait()
        order.append(f"{item[0]}:{item[1]}")

    return body


async def test_keyed_priority_keeps_per_key_order_across_lanes() -> None:
    """An item never overtakes an earlier item of its key; across keys the higher lane goes first."""
    order: list[str] = []
    gate = anyio.Event()
    body = recorder(order, gate)
    options = lanes("high", "low", max_concurrency=1)
    async with PriorityKeyedWorkCoordinator(lambda item: item[0], body, options) as c:
        await c.enqueue(("z", "blocker"), "low")
        await anyio.sleep(0.01)
        await c.enqueue(("a", "a1"), "low")
        await c.enqueue(("a", "a2"), "high")  # must wait for a1
        await c.enqueue(("b", "b1"), "high")
        await c.enqueue(("c", "c1"), "low")
        gate.set()
    assert order == ["z:blocker", "b:b1", "a:a1", "a:a2", "c:c1"]


async def test_cancel_accounts_for_lanes() -> None:
    """Cancelling a priority coordinator counts every waiting item of every lane."""

    async def body(item: int) -> None:
        await anyio.sleep(100)

    async with PriorityWorkCoordinator(body, lanes("a", "b", max_concurrency=1)) as c:
        for i in range(3):
            await c.enqueue(i, "a")
            await c.enqueue(i, "b")
        await anyio.sleep(1)
        c.cancel()
    assert c.total_cancelled == 6 == c.total_enqueued
    assert c.pending_counts == {"a": 0, "b": 0}


async def test_keyed_priority_lanes_within_key_reorder_only_each_keys_queue() -> None:
    """lanes_within_key: keys take turns by arrival; a key's turn starts its item of the highest lane."""
    order: list[str] = []
    gate = anyio.Event()
    body = recorder(order, gate)
    options = lanes("high", "low", max_concurrency=1)
    async with PriorityKeyedWorkCoordinator(lambda item: item[0], body, options, lanes_within_key=True) as c:
        await c.enqueue(("z", "blocker"), "low")
        await anyio.sleep(0.01)
        await c.enqueue(("a", "a1"), "low")
        await c.enqueue(("b", "b1"), "low")
        await c.enqueue(("a", "a2"), "low")
        await c.enqueue(("b", "b2"), "low")
        urgent = await c.enqueue(("b", "b-urgent"), "high")  # takes b's turn, not a's
        assert c.get_pending_counts_for_key("b") == {"high": 1, "low": 2}
        assert c.get_pending_counts_for_key("nobody") == {"high": 0, "low": 0}
        assert c.get_active_count_for_key("z") == 1
        gate.set()
    assert order == ["z:blocker", "a:a1", "b:b-urgent", "a:a2", "b:b1", "b:b2"]
    operation = c.get_operation(urgent)
    assert operation is not None and operation.status is OperationStatus.COMPLETED


async def test_keyed_priority_lanes_within_key_a_held_lane_lets_the_keys_next_lane_go() -> None:
    """A deferred high lane holds only its items: the key's low items take its turns meanwhile."""
    sink = SignalSink(clock=anyio.current_time)
    order: list[str] = []

    async def body(item: tuple[str, str]) -> None:
        order.append(item[1])
        await anyio.sleep(1)

    options = lanes(
        PriorityLane("high", defer_on_signals="db.busy", max_defer_attempts=1000),
        "low",
        max_concurrency=1,
        signals=sink,
    )
    async with PriorityKeyedWorkCoordinator(lambda item: item[0], body, options, lanes_within_key=True) as c:
        sink.emit("db.busy")
        await c.enqueue(("k", "low-1"), "low")
        await c.enqueue(("k", "high-1"), "high")
        await c.enqueue(("k", "low-2"), "low")
        await anyio.sleep(5)
        assert order == ["low-1", "low-2"]
        sink.retract("db.busy")
    assert order == ["low-1", "low-2", "high-1"]


def test_keyed_priority_lanes_within_key_is_a_bool() -> None:
    async def body(item: int) -> None:
        pass

    with pytest.raises(TypeError, match="lanes_within_key"):
        PriorityKeyedWorkCoordinator(str, body, lanes_within_key=1)  # type: ignore[arg-type]
