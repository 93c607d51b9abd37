"""Random schedules through the work coordinator never break its accounting or its bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import CoordinatorClosedError, EphemeralOptions, EphemeralWorkCoordinator, SignalSink

durations = st.sampled_from([0.0, 0.0, 0.01, 0.5, 3.0])
steps = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 6), durations, st.booleans()),
    st.tuples(st.just("try_enqueue"), st.integers(1, 3), durations, st.booleans()),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.005, 0.2, 1.0, 5.0])),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("emit"), st.sampled_from(["stop", "hold"])),
    st.tuples(st.just("retract"), st.sampled_from(["stop", "hold"])),
    st.tuples(st.just("limit"), st.integers(1, 5)),
    st.tuples(st.just("complete")),
    st.tuples(st.just("cancel")),
)


@dataclass
class Trace:
    """What the bodies saw, independently of the coordinator's own counters."""

    running: int = 0
    over_limit: list[tuple[int, int]] = field(default_factory=list)
    started: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    interrupted: set[int] = field(default_factory=set)


def check_invariants(c: EphemeralWorkCoordinator[Any], trace: Trace, window: int) -> None:
    """The counters, the snapshots and the memory held agree with each other and with the trace."""
    in_flight = c.pending_count + c.active_count
    finished = c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled
    assert finished + in_flight == c.total_enqueued
    assert c.active_count == trace.running
    assert not trace.over_limit, trace.over_limit
    snapshot = c.get_snapshot()
    assert len(snapshot) == len({s.operation_id for s in snapshot})
    assert len(c.get_running()) == c.active_count
    assert len(c.get_completed()) <= window
    assert c.total_completed == len(trace.done)
    assert c.total_failed == len(trace.failed)


@pytest.mark.parametrize("ending", ["drain", "cancel", "raise"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schedule=st.lists(steps, max_size=25),
    max_concurrency=st.integers(1, 4),
    window=st.integers(1, 5),
)
async def test_random_schedules_keep_every_item_accounted(
    ending: str, schedule: list[tuple[Any, ...]], max_concurrency: int, window: int
) -> None:
    """Enqueues, failures, slow bodies, pauses, signals, limit changes and shutdowns account for each item once."""
    sink = SignalSink(clock=anyio.current_time)
    trace = Trace()
    specs: dict[int, tuple[float, bool]] = {}
    counter = 0

    async def body(item: int) -> None:
        duration, fails = specs[item]
        if trace.running >= c.current_max_concurrency:
            trace.over_limit.append((trace.running, c.current_max_concurrency))
        trace.running += 1
        trace.started.add(item)
        try:
            await anyio.sleep(duration)
            if fails:
                trace.failed.add(item)
                raise ValueError(item)
            trace.done.add(item)
        except anyio.get_cancelled_exc_class():
            trace.interrupted.add(item)
            raise
        finally:
            trace.running -= 1

    options = EphemeralOptions(
        max_concurrency=max_concurrency,
        max_tracked_operations=window,
        enable_dynamic_concurrency=True,
        signals=sink,
        cancel_on_signals={"stop"},
        defer_on_signals={"hold"},
        defer_check_interval=0.1,
        max_defer_attempts=5,
        operation_echo_capacity=4,
    )
    c = EphemeralWorkCoordinator(body, options)

    async def run() -> None:
        nonlocal counter
        async with c:
            for step in schedule:
                kind = step[0]
                if kind in ("enqueue", "try_enqueue"):
                    for _ in range(step[1]):
                        counter += 1
                        specs[counter] = (step[2], step[3])
                        if kind == "try_enqueue":
                            c.try_enqueue(counter)
                        else:
                            try:
                                with anyio.fail_after(30):
                                    await c.enqueue(counter)
                            except (CoordinatorClosedError, TimeoutError):
                                break
                elif kind == "sleep":
                    await anyio.sleep(step[1])
                elif kind == "pause":
                    c.pause()
                elif kind == "resume":
                    c.resume()
                elif kind == "emit":
                    sink.emit(step[1])
                elif kind == "retract":
                    sink.retract(step[1])
                elif kind == "limit":
                    c.set_max_concurrency(step[1])
                elif kind == "complete":
                    c.complete()
                elif kind == "cancel":
                    c.cancel()
                check_invariants(c, trace, window)
            c.resume()
            if ending == "cancel":
                c.cancel()
            elif ending == "raise":
                raise LookupError("the block failed")

    if ending == "raise":
        with pytest.raises(LookupError):
            await run()
    else:
        await run()

    check_invariants(c, trace, window)
    assert c.pending_count == 0
    assert c.active_count == 0
    enqueued = c.total_enqueued
    assert c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled == enqueued
    # bodies that started either finished or were interrupted by cancellation; the rest never ran
    assert len(trace.started) == len(trace.done) + len(trace.failed) + len(trace.interrupted)
    never_started = enqueued - len(trace.started)
    assert never_started + len(trace.interrupted) == c.total_skipped + c.total_cancelled
    if ending == "drain" and not c.is_cancelled:
        assert c.is_drained
        assert not trace.interrupted
    # memory held is bounded by configuration, not by the amount of work
    assert len(c._window.finished) <= window
    assert len(c.get_echoes()) <= 4
