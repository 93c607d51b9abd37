"""Random schedules through the keyed and priority coordinators keep order, limits and accounting."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralKeyedWorkCoordinator,
    EphemeralOptions,
    PriorityKeyedWorkCoordinator,
    PriorityLane,
    PriorityWorkCoordinatorOptions,
    SignalSink,
)
from ephemeral.core.lowlevel import CoordinatorBase

LANES = ("high", "normal", "low")
durations = st.sampled_from([0.0, 0.01, 0.5, 2.0])
steps = st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from("abcd"), st.sampled_from(LANES), durations, st.booleans()),
    st.tuples(st.just("burst"), st.sampled_from("abcd"), st.integers(1, 8), durations),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 1.0, 4.0])),
    st.tuples(st.just("emit"), st.sampled_from(["low.stop", "normal.hold"])),
    st.tuples(st.just("retract"), st.sampled_from(["low.stop", "normal.hold"])),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("cancel")),
)
settings_ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def accounted(c: CoordinatorBase[Any, Any]) -> int:
    return c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled


@pytest.mark.parametrize("kind", ["keyed", "keyed-fair", "priority-keyed"])
@settings_
@given(schedule=st.lists(steps, max_size=20), per_key=st.integers(1, 2), limit=st.integers(1, 4))
async def test_keyed_order_limits_and_accounting(
    kind: str, schedule: list[tuple[Any, ...]], per_key: int, limit: int
) -> None:
    """Per-key start order follows enqueue order, per-key and lane limits hold, and every item is counted once."""
    sink = SignalSink(clock=anyio.current_time)
    specs: dict[int, tuple[str, str, float, bool]] = {}
    started: dict[str, list[int]] = {}
    running_keys: dict[str, int] = {}
    running_lanes: dict[str, int] = {}
    violations: list[str] = []
    counter = 0

    async def body(item: int) -> None:
        key, lane, duration, fails = specs[item]
        started.setdefault(key, []).append(item)
        running_keys[key] = running_keys.get(key, 0) + 1
        running_lanes[lane] = running_lanes.get(lane, 0) + 1
        if running_keys[key] > per_key:
            violations.append(f"key {key} ran {running_keys[key]} at once")
        if lane == "high" and running_lanes[lane] > 1:
            violations.append("lane high over its limit of 1")
        try:
            await anyio.sleep(duration)
            if fails:
                raise ValueError(item)
        finally:
            running_keys[key] -= 1
            running_lanes[lane] -= 1

    options = EphemeralOptions(
        max_concurrency=limit,
        max_concurrency_per_key=per_key,
        max_tracked_operations=8,
        enable_fair_scheduling=kind == "keyed-fair",
        fair_scheduling_threshold=1000,
        signals=sink,
    )
    coordinator: CoordinatorBase[int, Any]
    if kind == "priority-keyed":
        lanes = [
            PriorityLane("high", max_concurrency=1),
            PriorityLane("normal", defer_on_signals="normal.hold", max_defer_attempts=10),
            PriorityLane("low", cancel_on_signals="low.stop"),
        ]
        coordinator = PriorityKeyedWorkCoordinator(
            lambda item: specs[item][0], body, PriorityWorkCoordinatorOptions(lanes=lanes, ephemeral_options=options)
        )
    else:
        coordinator = EphemeralKeyedWorkCoordinator(lambda item: specs[item][0], body, options)

    async def submit(key: str, lane: str, duration: float, fails: bool) -> None:
        nonlocal counter
        counter += 1
        specs[counter] = (key, lane if kind == "priority-keyed" else "normal", duration, fails)
        with anyio.fail_after(60):
            if isinstance(coordinator, PriorityKeyedWorkCoordinator):
                await coordinator.enqueue(counter, lane)
            else:
                await coordinator.enqueue(counter)

    async with coordinator:
        try:
            for step in schedule:
                if step[0] == "enqueue":
                    await submit(step[1], step[2], step[3], step[4])
                elif step[0] == "burst":
                    for _ in range(step[2]):
                        await submit(step[1], "normal", step[3], False)
                elif step[0] == "sleep":
                    await anyio.sleep(step[1])
                elif step[0] == "emit":
                    sink.emit(step[1])
                elif step[0] == "retract":
                    sink.retract(step[1])
                elif step[0] == "pause":
                    coordinator.pause()
                elif step[0] == "resume":
                    coordinator.resume()
                elif step[0] == "cancel":
                    coordinator.cancel()
                assert accounted(coordinator) + coordinator.pending_count + coordinator.active_count == (
                    coordinator.total_enqueued
                )
        except (CoordinatorClosedError, TimeoutError):
            pass
        coordinator.resume()
        sink.retract("normal.hold")

    assert not violations, violations
    assert accounted(coordinator) == coordinator.total_enqueued
    assert coordinator.pending_count == 0
    assert coordinator.active_count == 0
    for key, items in started.items():
        assert items == sorted(items), f"key {key} started out of order: {items}"
    if not coordinator.is_cancelled:
        # no key starved: every accepted item that was not skipped by a lane rule ran
        assert sum(len(items) for items in started.values()) == coordinator.total_enqueued - coordinator.total_skipped
