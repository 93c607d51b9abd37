"""DynamicConcurrencyDemo: one step per signal, bounded both ways, running work never cancelled."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink, current_operation
from ephemeral.core.testing import assert_accounted, assert_lifecycle_faults, output_blocks, run_readme_examples
from ephemeral.patterns.dynamicconcurrency import DynamicConcurrencyDemo


def virtual_sink() -> SignalSink:
    return SignalSink(max_age=3600.0, clock=anyio.current_time)


class Gauge:
    """A body recording how many run at once and flagging any start at or above the demo's limit."""

    def __init__(self, duration: float = 1.0) -> None:
        self.duration = duration
        self.running = 0
        self.peak = 0
        self.finished = 0
        self.cancelled = 0
        self.violations: list[str] = []
        self.demo: DynamicConcurrencyDemo[Any] | None = None

    async def __call__(self, item: Any) -> None:
        assert self.demo is not None
        if self.running >= self.demo.current_max_concurrency:
            self.violations.append(f"started with {self.running} running, limit {self.demo.current_max_concurrency}")
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(self.duration if not isinstance(item, float) else item)
        except BaseException:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        self.finished += 1


def demo_for(body: Gauge, sink: SignalSink, **kwargs: Any) -> DynamicConcurrencyDemo[Any]:
    demo: DynamicConcurrencyDemo[Any] = DynamicConcurrencyDemo(body, sink, **kwargs)
    body.demo = demo
    return demo


async def test_seed_example() -> None:
    sink = virtual_sink()
    body = Gauge()
    async with demo_for(body, sink, min_concurrency=2, max_concurrency=32) as demo:
        for n in range(40):
            await demo.enqueue(n)
        await anyio.sleep(0.5)
        assert demo.current_max_concurrency == 2
        assert demo.active_count == 2
        sink.emit("load.high")
        assert demo.current_max_concurrency == 4
        await anyio.sleep(0.01)
        assert demo.active_count == 4  # raising the limit starts waiting work at once
        sink.emit("load.low")
        assert demo.current_max_concurrency == 2
        await demo.drain()
    assert body.violations == []
    assert body.finished == 40


async def test_one_change_per_signal_not_per_tick() -> None:
    sink = virtual_sink()
    body = Gauge()
    async with demo_for(body, sink, min_concurrency=1, max_concurrency=64) as demo:
        sink.emit("load.high")
        await anyio.sleep(60)  # the signal stays in the window
        assert demo.current_max_concurrency == 2
        sink.emit("load.high")
        sink.emit("load.high")
        assert demo.current_max_concurrency == 8


async def test_bounded_both_ways() -> None:
    sink = virtual_sink()
    body = Gauge()
    async with demo_for(body, sink, min_concurrency=3, max_concurrency=20) as demo:
        for _ in range(10):
            sink.emit("load.high")
        assert demo.current_max_concurrency == 20
        steps = []
        for _ in range(10):
            sink.emit("load.low")
            steps.append(demo.current_max_concurrency)
        assert steps == [10, 5, 3, 3, 3, 3, 3, 3, 3, 3]


async def test_scale_down_never_cancels_running_work() -> None:
    sink = virtual_sink()
    body = Gauge(duration=5.0)
    async with demo_for(body, sink, min_concurrency=1, max_concurrency=8) as demo:
        for _ in range(3):
            sink.emit("load.high")
        for n in range(12):
            await demo.enqueue(n)
        await anyio.sleep(1)
        assert demo.active_count == 8
        for _ in range(3):
            sink.emit("load.low")
        assert demo.current_max_concurrency == 1
        await anyio.sleep(4.5)
        assert body.finished == 8  # all eight ran to the end
        assert demo.active_count == 1  # and only one more started
    assert body.cancelled == 0
    assert body.violations == []
    assert demo.get_metrics().total_completed == 12


async def test_operation_signals_of_a_sharing_coordinator_scale_it() -> None:
    sink = virtual_sink()
    body = Gauge()

    async def monitor(item: str) -> None:
        current_operation().emit(item)

    async with (
        demo_for(body, sink, min_concurrency=2, max_concurrency=8) as demo,
        EphemeralWorkCoordinator(monitor, EphemeralOptions(signals=sink)) as other,
    ):
        await other.enqueue("load.high")
        await anyio.sleep(0.1)
        assert demo.current_max_concurrency == 4


@pytest.mark.real_time
async def test_signals_from_another_thread() -> None:
    sink = SignalSink()
    body = Gauge()
    async with demo_for(body, sink, min_concurrency=1, max_concurrency=8) as demo:
        thread_ids: list[int] = []

        def emit() -> None:
            thread_ids.append(threading.get_ident())
            sink.emit("load.high")

        await anyio.to_thread.run_sync(emit)
        assert demo.current_max_concurrency == 2
        assert thread_ids[0] != threading.get_ident()


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline in the block cancels the running bodies, every item accounted for;
    the demo is entered once."""
    made: list[DynamicConcurrencyDemo[Any]] = []

    def make() -> DynamicConcurrencyDemo[Any]:
        made.append(demo_for(Gauge(duration=10), SignalSink(), min_concurrency=2, max_concurrency=8))
        return made[-1]

    async def use(demo: DynamicConcurrencyDemo[Any]) -> None:
        for item in range(6):
            await demo.enqueue(item)
        demo.signals.emit("load.high")
        await anyio.sleep(1)

    await assert_lifecycle_faults(make, use)
    for demo in made[:2]:
        assert_accounted(demo)
        assert demo.get_metrics().total_cancelled == 6


async def test_not_listening_outside_the_block() -> None:
    sink = virtual_sink()
    demo = demo_for(Gauge(), sink, min_concurrency=2, max_concurrency=8)
    sink.emit("load.high")
    async with demo:
        assert demo.current_max_concurrency == 2
    sink.emit("load.high")
    assert demo.current_max_concurrency == 2


async def test_custom_patterns_and_a_name_matching_both() -> None:
    sink = virtual_sink()
    async with demo_for(
        Gauge(), sink, min_concurrency=1, max_concurrency=8, scale_up_pattern="cpu.*", scale_down_pattern="*.idle"
    ) as demo:
        sink.emit("cpu.idle")  # matches both: up
        assert demo.current_max_concurrency == 2
        sink.emit("disk.idle")
        assert demo.current_max_concurrency == 1
        sink.emit("load.high")
        assert demo.current_max_concurrency == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"min_concurrency": 0}, ValueError, "min_concurrency"),
        ({"min_concurrency": 4, "max_concurrency": 2}, ValueError, "max_concurrency"),
        ({"max_concurrency": 2.0}, TypeError, "max_concurrency"),
        ({"scale_up_pattern": " "}, ValueError, "scale_up_pattern"),
        ({"scale_down_pattern": None}, TypeError, "scale_down_pattern"),
        ({"max_pending": 0}, ValueError, "max_pending"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        DynamicConcurrencyDemo(Gauge(), SignalSink(), **kwargs)


def test_bad_sink() -> None:
    with pytest.raises(TypeError, match="sink"):
        DynamicConcurrencyDemo(Gauge(), "sink")  # type: ignore[arg-type]


steps = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 6), st.sampled_from([0.0, 0.1, 1.0, 3.0])),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5, 2.0])),
    st.tuples(st.just("emit"), st.sampled_from(["load.high", "load.low", "other"])),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, max_size=25), low=st.integers(1, 3), span=st.integers(0, 6))
async def test_property_steps_bounds_no_cancel_and_accounting(
    schedule: list[tuple[Any, ...]], low: int, span: int
) -> None:
    """Random loads and signal schedules: the limit follows a model (x2 / //2 within bounds, one step per
    signal), no item starts at or above the limit, nothing running is cancelled, every item completes."""
    high = low + span
    sink = virtual_sink()
    body = Gauge()
    model = low
    counter = 0
    async with demo_for(body, sink, min_concurrency=low, max_concurrency=high, max_pending=5) as demo:
        for step in schedule:
            if step[0] == "enqueue":
                for _ in range(step[1]):
                    counter += 1
                    await demo.enqueue(float(step[2]))
            elif step[0] == "sleep":
                await anyio.sleep(step[1])
            else:
                sink.emit(step[1])
                if step[1] == "load.high":
                    model = min(high, model * 2)
                elif step[1] == "load.low":
                    model = max(low, model // 2)
            assert demo.current_max_concurrency == model
    assert body.violations == []
    assert body.cancelled == 0
    metrics = demo.get_metrics()
    assert metrics.total_completed == metrics.total_enqueued == counter == body.finished


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deadline=st.integers(0, 8000).map(lambda ms: ms / 1000), scale_at=st.integers(0, 3000).map(lambda ms: ms / 1000))
async def test_outer_cancel_at_a_random_deadline(deadline: float, scale_at: float) -> None:
    """An outer cancel scope firing at any moment (around a scale-up): every item is counted, none left running."""
    sink = virtual_sink()
    body = Gauge(duration=0.8)
    demo = demo_for(body, sink, min_concurrency=1, max_concurrency=4, max_pending=5)

    async def scale() -> None:
        await anyio.sleep(scale_at)
        sink.emit("load.high")

    with anyio.move_on_after(deadline):
        async with demo, anyio.create_task_group() as tg:
            tg.start_soon(scale)
            for n in range(15):
                await demo.enqueue(n)
    assert body.violations == []
    assert body.running == 0
    assert_accounted(demo)


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what the README shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert run_readme_examples(readme) == output_blocks(readme)[0]
