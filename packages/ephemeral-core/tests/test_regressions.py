"""Regressions found in review: each test pins a bug that once hung, lost work or miscounted."""

from __future__ import annotations

import anyio
import pytest

from ephemeral.core import (
    EphemeralKeyedWorkCoordinator,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    PriorityLane,
    PriorityWorkCoordinator,
    PriorityWorkCoordinatorOptions,
    SignalSink,
)
from ephemeral.core.testing import Gate


async def test_cancel_signal_with_only_a_busy_key_waiting_does_not_spin() -> None:
    """A live cancel signal while the only waiting item's key is busy parks the worker instead of spinning."""
    sink = SignalSink(clock=anyio.current_time)
    gate = anyio.Event()

    async def body(item: tuple[str, int]) -> None:
        if item == ("a", 1):
            await gate.wait()

    options = EphemeralOptions(max_concurrency=2, cancel_on_signals="stop", signals=sink)
    async with EphemeralKeyedWorkCoordinator(lambda item: item[0], body, options) as c:
        await c.enqueue(("a", 1))
        await c.enqueue(("a", 2))
        await anyio.sleep(0.1)
        sink.emit("stop")
        await c.enqueue(("b", 1))
        await anyio.sleep(1)  # would never return if a worker spun
        gate.set()
    assert c.total_completed + c.total_skipped == 3


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_foreign_cancelled_error_is_a_failure_not_the_end() -> None:
    """A body letting out a CancelledError it did not cause fails alone; the coordinator carries on."""
    import asyncio

    async def body(item: int) -> None:
        if item == 0:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.cancel()
            await future
        await anyio.sleep(1)

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=2)) as c:
        await c.enqueue(0)
        await c.enqueue(1)
        await anyio.sleep(0.1)
        await c.enqueue(2)
    assert (c.total_failed, c.total_completed, c.total_cancelled) == (1, 2, 0)


async def test_lowering_the_limit_then_enqueueing_at_once_still_runs_the_item() -> None:
    """Workers leaving over a lowered limit hand their place on: an item accepted meanwhile runs."""
    ran: list[str] = []

    async def body(item: str) -> None:
        ran.append(item)

    options = EphemeralOptions(max_concurrency=4, enable_dynamic_concurrency=True)
    async with EphemeralWorkCoordinator(body, options) as c:
        for i in range(4):
            await c.enqueue(str(i))
        await anyio.sleep(0.1)
        c.set_max_concurrency(2)
        assert c.try_enqueue("x")
        await anyio.sleep(0.1)
        assert "x" in ran


async def test_lane_without_a_limit_follows_the_coordinators_limit() -> None:
    """A lane with no max_concurrency uses the coordinator's current limit, also after it is raised."""
    gate = Gate()

    options = PriorityWorkCoordinatorOptions(
        lanes=["normal"], ephemeral_options=EphemeralOptions(max_concurrency=2, enable_dynamic_concurrency=True)
    )
    async with PriorityWorkCoordinator(gate, options) as c:
        c.set_max_concurrency(8)
        for i in range(8):
            await c.enqueue(i)
        await anyio.sleep(0.1)
        assert c.active_count == 8
        gate.set()


async def test_enqueue_many_counts_only_accepted_items() -> None:
    """enqueue_many on a priority coordinator does not count items a full lane refused."""
    gate = Gate()

    options = PriorityWorkCoordinatorOptions(
        lanes=[PriorityLane("normal", max_depth=1)], ephemeral_options=EphemeralOptions(max_concurrency=1)
    )
    async with PriorityWorkCoordinator(gate, options) as c:
        await c.enqueue(0)
        await anyio.sleep(0.1)
        assert await c.enqueue_many(range(1, 10)) == 1
        assert c.total_enqueued == 2
        gate.set()


def test_lanes_given_as_a_string_are_rejected() -> None:
    """lanes="hot" would have been three lanes h, o, t: it raises, saying how to write it."""
    with pytest.raises(TypeError, match=r"lanes=\['hot'\]"):
        PriorityWorkCoordinatorOptions(lanes="hot")
