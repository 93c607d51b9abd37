"""SignalDrivenBackpressure: holding work back on signals, resuming on retract, the bounded hold, accounting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import CoordinatorClosedError, SignalEvent, SignalSink
from ephemeral.core.testing import ConcurrencyProbe, assert_accounted, output_blocks, run_readme_examples
from ephemeral.patterns.backpressure import DEFERRAL_EXPIRED, SignalDrivenBackpressure


def virtual_sink() -> SignalSink:
    return SignalSink(max_age=3600.0, clock=anyio.current_time)


class Recorder:
    """A body that records when each item started and finished, sleeping ``duration`` in between."""

    def __init__(self, duration: float = 0.0) -> None:
        self.duration = duration
        self.started: list[tuple[Any, float]] = []
        self.finished: list[Any] = []
        self.probe = ConcurrencyProbe()

    async def __call__(self, item: Any) -> None:
        self.started.append((item, anyio.current_time()))
        with self.probe:
            await anyio.sleep(self.duration)
        self.finished.append(item)


async def test_seed_example() -> None:
    """The original's example: work defers on backpressure.downstream and resumes on retract."""
    sink = virtual_sink()
    body = Recorder(0.01)
    async with SignalDrivenBackpressure.create(body, sink, max_concurrency=4) as coordinator:
        await coordinator.enqueue("first")
        await anyio.sleep(1)
        assert body.finished == ["first"]
        sink.emit("backpressure.downstream")
        for n in range(6):
            await coordinator.enqueue(n)
        await anyio.sleep(5)
        assert body.finished == ["first"]
        assert coordinator.pending_count == 6
        assert coordinator.is_backpressured
        sink.retract("backpressure.downstream")
        await anyio.sleep(0.2)  # at most one check interval, then every item runs
        assert [item for item, _ in body.started] == ["first", 0, 1, 2, 3, 4, 5]
        assert len(body.finished) == 7
        assert not coordinator.is_backpressured
    assert body.probe.peak <= 4
    assert coordinator.get_metrics().total_completed == coordinator.get_metrics().total_enqueued == 7


async def test_running_bodies_are_not_interrupted() -> None:
    sink = virtual_sink()
    body = Recorder(3.0)
    async with SignalDrivenBackpressure(body, sink, max_concurrency=2) as coordinator:
        await coordinator.enqueue("a")
        await coordinator.enqueue("b")
        await anyio.sleep(0.5)
        sink.emit("backpressure.db")
        await coordinator.enqueue("c")
        await anyio.sleep(3)
        assert sorted(body.finished) == ["a", "b"]
        assert coordinator.pending_count == 1
        sink.retract("backpressure.db")
    assert body.finished[-1] == "c"


async def test_nothing_dropped_intake_waits_when_full() -> None:
    """With max_pending items held back, enqueue waits and try_enqueue refuses; all of them run later."""
    sink = virtual_sink()
    body = Recorder()
    async with SignalDrivenBackpressure(body, sink, max_concurrency=1, max_pending=3) as coordinator:
        sink.emit("backpressure.full")
        for n in range(3):
            await coordinator.enqueue(n)
        assert not coordinator.try_enqueue(99)
        with anyio.move_on_after(1) as scope:
            await coordinator.enqueue(3)
        assert scope.cancelled_caught
        async with anyio.create_task_group() as tg:
            tg.start_soon(coordinator.enqueue, 3)
            await anyio.sleep(1)
            assert coordinator.get_metrics().total_enqueued == 3  # still waiting for room
            sink.retract("backpressure.full")
        assert coordinator.get_metrics().total_enqueued == 4
    assert body.finished == [0, 1, 2, 3]


async def test_the_hold_is_bounded_and_signalled() -> None:
    """A signal nobody retracts holds work for max_defer, then work goes ahead and deferral.expired says why."""
    sink = virtual_sink()
    seen: list[SignalEvent[Any]] = []
    sink.subscribe(lambda event: seen.append(event) if event.signal == DEFERRAL_EXPIRED else None)
    body = Recorder()
    async with SignalDrivenBackpressure(body, sink, max_concurrency=1, max_defer=2.0, check_interval=0.5) as c:
        sink.emit("backpressure.stuck")
        start = anyio.current_time()
        for n in range(4):
            await c.enqueue(n)
        await anyio.sleep(1.9)
        assert body.started == []
        await anyio.sleep(0.2)
        assert [item for item, _ in body.started] == [0, 1, 2, 3]
        assert all(at - start >= 2.0 for _, at in body.started)
        # The episode is spent: more work under the same signal is not held again.
        at = anyio.current_time()
        await c.enqueue(4)
        await anyio.sleep(0.01)
        assert body.started[-1] == (4, at)
    assert [(event.signal, event.key) for event in seen] == [(DEFERRAL_EXPIRED, "backpressure.stuck")]
    assert c.is_backpressured


async def test_a_new_episode_holds_again() -> None:
    sink = virtual_sink()
    body = Recorder()
    async with SignalDrivenBackpressure(body, sink, max_concurrency=1, max_defer=1.0, check_interval=0.25) as c:
        sink.emit("backpressure.x")
        await c.enqueue(1)
        await anyio.sleep(1.5)
        assert body.finished == [1]
        sink.retract("backpressure.x")
        await c.enqueue(2)
        await anyio.sleep(0.1)
        assert body.finished == [1, 2]
        sink.emit("backpressure.x")
        await c.enqueue(3)
        await anyio.sleep(0.5)
        assert body.finished == [1, 2]
        await anyio.sleep(1)
        assert body.finished == [1, 2, 3]
    assert len(sink.sense(DEFERRAL_EXPIRED)) == 2


async def test_resume_pattern_overrides() -> None:
    sink = virtual_sink()
    body = Recorder()
    async with SignalDrivenBackpressure(body, sink, max_concurrency=1, resume_pattern="recovered.*") as c:
        sink.emit("backpressure.x")
        await c.enqueue(1)
        await anyio.sleep(1)
        assert body.finished == []
        sink.emit("recovered.now")
        await anyio.sleep(0.1)
        assert body.finished == [1]
    assert not sink.sense(DEFERRAL_EXPIRED)


async def test_operation_signals_of_a_sharing_coordinator_hold_work() -> None:
    """A body (of this or another coordinator on the sink) that emits backpressure holds the next items."""
    from ephemeral.core import current_operation

    sink = virtual_sink()
    order: list[str] = []

    async def body(item: str) -> None:
        order.append(item)
        if item == "slow-down":
            current_operation().emit("backpressure.self")
            await anyio.sleep(0.1)

    async with SignalDrivenBackpressure(body, sink, max_concurrency=1, max_defer=3.0) as c:
        await c.enqueue("slow-down")
        await c.enqueue("next")
        await anyio.sleep(2)
        assert order == ["slow-down"]
        await anyio.sleep(2)
        assert order == ["slow-down", "next"]


async def test_exception_in_block_cancels_waiting_items_and_accounts() -> None:
    sink = virtual_sink()
    body = Recorder(1.0)
    with pytest.raises(KeyError):
        async with SignalDrivenBackpressure(body, sink, max_concurrency=1) as c:
            await c.enqueue(1)
            await anyio.sleep(0.5)
            sink.emit("backpressure.x")
            for n in range(2, 6):
                await c.enqueue(n)
            raise KeyError("boom")
    assert body.finished == []
    assert c.get_metrics().total_cancelled == 5
    assert (
        c.get_metrics().total_completed + c.get_metrics().total_failed + c.get_metrics().total_cancelled
        == c.get_metrics().total_enqueued
    )
    with pytest.raises(CoordinatorClosedError):
        await c.enqueue(9)


async def test_failures_are_counted_not_fatal() -> None:
    sink = virtual_sink()

    async def body(item: int) -> None:
        if item % 2:
            raise ValueError(item)

    async with SignalDrivenBackpressure(body, sink) as c:
        for n in range(6):
            await c.enqueue(n)
    assert (c.get_metrics().total_completed, c.get_metrics().total_failed) == (3, 3)


async def test_a_spent_episode_ends_even_when_nothing_waits_at_the_retract() -> None:
    """After a spent hold, the queue empties, the signal is retracted, and much later backpressure returns:
    the new signal should hold work again for max_defer."""
    sink = virtual_sink()
    body = Recorder()
    async with SignalDrivenBackpressure(body, sink, max_concurrency=1, max_defer=1.0, check_interval=0.25) as c:
        sink.emit("backpressure.x")
        await c.enqueue(1)
        await anyio.sleep(2)
        assert body.finished == [1]
        sink.retract("backpressure.x")  # nothing waits: no check sees the episode end
        await anyio.sleep(60)
        sink.emit("backpressure.x")
        await c.enqueue(2)
        await anyio.sleep(0.5)
        assert body.finished == [1]
        sink.retract("backpressure.x")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": 1.5}, TypeError, "max_concurrency"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"max_defer": 0}, ValueError, "max_defer"),
        ({"check_interval": -1}, ValueError, "check_interval"),
        ({"max_defer": 1, "check_interval": 2}, ValueError, "check_interval"),
        ({"backpressure_pattern": ()}, ValueError, "backpressure_pattern"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    async def body(item: int) -> None:
        pass

    with pytest.raises(error, match=name):
        SignalDrivenBackpressure(body, SignalSink(), **kwargs)


def test_bad_sink_and_body() -> None:
    async def body(item: int) -> None:
        pass

    with pytest.raises(TypeError, match="sink"):
        SignalDrivenBackpressure(body, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        SignalDrivenBackpressure(42, SignalSink())  # type: ignore[arg-type]


steps = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 5), st.sampled_from([0.0, 0.1, 1.0])),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5, 2.0, 5.0])),
    st.tuples(st.just("emit")),
    st.tuples(st.just("retract")),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, max_size=25), limit=st.integers(1, 3), fail_every=st.integers(2, 5))
async def test_property_holds_order_limit_and_accounting(
    schedule: list[tuple[Any, ...]], limit: int, fail_every: int
) -> None:
    """Under random loads and signal schedules: the limit holds, items start in order, nothing starts under
    a live signal before max_defer has passed since it was emitted unless deferral.expired said so, and
    every item is accounted for."""
    sink = virtual_sink()
    max_defer = 3.0
    live_since: list[float | None] = [None]
    since_wall = [sink.now()]
    violations: list[str] = []
    started: list[int] = []
    running = [0]
    durations: dict[int, float] = {}

    async def body(item: int) -> None:
        started.append(item)
        since = live_since[0]
        # Work may start under a live signal early only when the hold was spent and that was signalled.
        if (
            since is not None
            and anyio.current_time() - since < max_defer - 1e-9
            and not sink.sense(lambda e: e.signal == DEFERRAL_EXPIRED and e.timestamp >= since_wall[0])
        ):
            violations.append(f"item {item} started {anyio.current_time() - since:g}s into an episode")
        running[0] += 1
        if running[0] > limit:
            violations.append(f"{running[0]} running at once")
        try:
            await anyio.sleep(durations[item])
            if item % fail_every == 0:
                raise ValueError(item)
        finally:
            running[0] -= 1

    counter = 0
    async with SignalDrivenBackpressure(body, sink, max_concurrency=limit, max_defer=max_defer, max_pending=4) as c:
        for step in schedule:
            if step[0] == "enqueue":
                for _ in range(step[1]):
                    counter += 1
                    durations[counter] = step[2]
                    await c.enqueue(counter)
            elif step[0] == "sleep":
                await anyio.sleep(step[1])
            elif step[0] == "emit":
                if live_since[0] is None:
                    live_since[0] = anyio.current_time()
                    since_wall[0] = sink.now()
                sink.emit("backpressure.random")
            else:
                sink.retract("backpressure.random")
                live_since[0] = None
        sink.retract("backpressure.random")
        live_since[0] = None
    assert violations == []
    assert started == sorted(started) == list(range(1, counter + 1))
    assert c.get_metrics().total_completed + c.get_metrics().total_failed == c.get_metrics().total_enqueued == counter
    assert c.get_metrics().total_failed == counter // fail_every


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deadline=st.integers(0, 12000).map(lambda ms: ms / 1000), signal_at=st.integers(0, 3000).map(lambda ms: ms / 1000)
)
async def test_outer_cancel_at_a_random_deadline(deadline: float, signal_at: float) -> None:
    """An outer cancel scope firing at any moment (mid-hold included): nothing starts after it, all counted."""
    sink = virtual_sink()
    body = Recorder(0.7)
    c = SignalDrivenBackpressure(body, sink, max_concurrency=2, max_defer=4.0, max_pending=5)

    async def backpressure() -> None:
        await anyio.sleep(signal_at)
        sink.emit("backpressure.x")

    start = anyio.current_time()
    with anyio.move_on_after(deadline):
        async with c, anyio.create_task_group() as tg:
            tg.start_soon(backpressure)
            for n in range(12):
                await c.enqueue(n)
    assert all(at - start <= deadline + 1e-6 for _, at in body.started)
    assert_accounted(c)


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what the README shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert run_readme_examples(readme) == output_blocks(readme)[0]


def test_a_sync_body_is_refused_naming_it() -> None:
    def plain(item: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"body must be an async function \(async def\), got <function"):
        SignalDrivenBackpressure(plain, SignalSink())  # type: ignore[arg-type]
