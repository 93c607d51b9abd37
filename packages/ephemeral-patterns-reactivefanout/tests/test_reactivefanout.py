"""ReactiveFanOutPipeline: throttling on stage 2's backlog, recovery, bounded memory, no item lost or run twice."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import CoordinatorClosedError, SignalEvent, SignalSink
from ephemeral.core.testing import assert_lifecycle_faults, output_blocks, run_readme_examples
from ephemeral.patterns.reactivefanout import ReactiveFanOutMetrics, ReactiveFanOutPipeline


def virtual_sink() -> SignalSink:
    return SignalSink(max_age=3600.0, clock=anyio.current_time)


class Stages:
    """Both stage bodies, recording what ran, how many at once, and stage 2's backlog at each start."""

    def __init__(self, pre_duration: float = 0.0, duration: float = 1.0) -> None:
        self.pre_duration = pre_duration
        self.duration = duration
        self.pre_running = 0
        self.pre_peak = 0
        self.running = 0
        self.peak = 0
        self.pre_done: list[Any] = []
        self.done: list[Any] = []
        self.backlogs: list[int] = []
        self.pipeline: ReactiveFanOutPipeline[Any] | None = None
        self.violations: list[str] = []

    async def pre(self, item: Any) -> None:
        assert self.pipeline is not None
        if self.pre_running >= self.pipeline.stage1_current_max_concurrency:
            self.violations.append(f"stage 1 started {item} over its limit")
        self.pre_running += 1
        self.pre_peak = max(self.pre_peak, self.pre_running)
        try:
            await anyio.sleep(self.pre_duration)
        finally:
            self.pre_running -= 1
        self.pre_done.append(item)

    async def work(self, item: Any) -> None:
        assert self.pipeline is not None
        self.backlogs.append(self.pipeline.stage2_pending)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await anyio.sleep(item[1] if isinstance(item, tuple) else self.duration)
            if isinstance(item, tuple) and item[2]:
                raise ValueError(item)
        finally:
            self.running -= 1
        self.done.append(item)


def pipeline_for(stages: Stages, **kwargs: Any) -> ReactiveFanOutPipeline[Any]:
    pipeline: ReactiveFanOutPipeline[Any] = ReactiveFanOutPipeline(
        stage2_work=stages.work, pre_stage_work=stages.pre, **kwargs
    )
    stages.pipeline = pipeline
    return pipeline


def accounted(metrics: ReactiveFanOutMetrics) -> int:
    stage1, stage2 = metrics
    return (
        stage1.total_failed
        + stage1.total_cancelled
        + stage2.total_completed
        + stage2.total_failed
        + stage2.total_cancelled
    )


async def test_seed_example() -> None:
    """Stage 1 throttles at 32 waiting in stage 2, emits stage2.backpressure, recovers below 8."""
    sink = virtual_sink()
    events: list[SignalEvent[Any]] = []
    sink.subscribe(lambda event: events.append(event) if event.signal.startswith("stage2.") else None)
    stages = Stages(pre_duration=0.01, duration=1.0)
    pipeline = pipeline_for(
        stages,
        stage1_max_concurrency=8,
        stage1_min_concurrency=1,
        stage2_max_concurrency=4,
        backpressure_threshold=32,
        relief_threshold=8,
        sink=sink,
    )
    async with pipeline:
        assert pipeline.stage1_current_max_concurrency == 8
        for item in range(100):
            await pipeline.enqueue(item)
        await anyio.sleep(0.1)
        assert pipeline.is_throttled
        assert pipeline.stage1_current_max_concurrency == 1
        assert pipeline.stage2_pending >= 32
        assert events[0].signal == "stage2.backpressure"
        assert events[0].key == "32"
        await pipeline.drain()
        assert pipeline.stage2_pending == 0
    assert sorted(stages.done) == list(range(100))
    assert stages.peak == 4
    assert max(stages.backlogs) < 64
    assert stages.violations == []
    names = [event.signal for event in events]
    assert names[:2] == ["stage2.backpressure", "stage2.relieved"]
    assert all(a != b for a, b in itertools.pairwise(names))  # one signal per change
    stage1, stage2 = pipeline.get_metrics()
    assert stage1.total_completed == stage2.total_enqueued == stage2.total_completed == 100


async def test_recovers_below_relief_after_the_cooldown() -> None:
    stages = Stages(duration=1.0)
    pipeline = pipeline_for(
        stages,
        stage1_max_concurrency=4,
        stage2_max_concurrency=1,
        backpressure_threshold=4,
        relief_threshold=2,
        adjust_cooldown_ms=500,
    )
    async with pipeline:
        for item in range(6):
            await pipeline.enqueue(item)
        await anyio.sleep(0.001)
        assert pipeline.is_throttled  # 5 waiting in stage 2 (one running)
        while pipeline.is_throttled:
            assert pipeline.stage1_current_max_concurrency == 1
            await anyio.sleep(0.25)
        # backlog 4 -> 3 -> 2 (still >= relief) -> 1: recovered as the fourth item starts
        assert pipeline.stage2_pending == 1
        assert pipeline.stage1_current_max_concurrency == 4
    assert sorted(stages.done) == list(range(6))
    sense = pipeline.signals.sense
    assert [e.key for e in sense("stage2.backpressure")] == ["4"]
    assert [e.key for e in sense("stage2.relieved")] == ["1"]


async def test_memory_is_bounded_by_the_thresholds() -> None:
    """A producer offering far more than fits waits: neither stage ever holds more than its bound."""
    stages = Stages(duration=0.5)
    pipeline = pipeline_for(stages, stage2_max_concurrency=2, backpressure_threshold=8, relief_threshold=2)
    peak_stage1 = peak_stage2 = 0
    async with pipeline, anyio.create_task_group() as tg:

        async def produce() -> None:
            for item in range(500):
                await pipeline.enqueue(item)

        tg.start_soon(produce)
        for _ in range(400):
            await anyio.sleep(0.1)
            peak_stage1 = max(peak_stage1, pipeline.stage1_pending)
            peak_stage2 = max(peak_stage2, pipeline.stage2_pending)
    assert peak_stage1 <= 16
    assert peak_stage2 <= 16
    assert max(stages.backlogs) <= 16
    assert sorted(stages.done) == list(range(500))


async def test_drain_loses_nothing_in_stage_one() -> None:
    """Items still in stage 1 when the pipeline drains reach stage 2 and run (the original lost them)."""
    stages = Stages(pre_duration=2.0, duration=0.1)
    pipeline = pipeline_for(stages, stage1_max_concurrency=2, backpressure_threshold=4, relief_threshold=1)
    async with pipeline:
        for item in range(10):
            await pipeline.enqueue(item)
    assert sorted(stages.done) == list(range(10))
    assert Counter(stages.done).most_common(1)[0][1] == 1
    metrics = pipeline.get_metrics()
    assert accounted(metrics) == metrics.stage1.total_enqueued == 10
    with pytest.raises(CoordinatorClosedError):
        await pipeline.enqueue(11)


async def test_failures_in_either_stage_are_counted_and_signalled() -> None:
    sink = virtual_sink()

    async def pre(item: int) -> None:
        if item == 3:
            raise KeyError(item)

    async def work(item: int) -> None:
        if item % 4 == 0:
            raise ValueError(item)

    pipeline: ReactiveFanOutPipeline[int] = ReactiveFanOutPipeline(stage2_work=work, pre_stage_work=pre, sink=sink)
    async with pipeline:
        for item in range(10):
            await pipeline.enqueue(item)
        await pipeline.drain()
        assert sink.count("stage2.failed") == 3
    stage1, stage2 = pipeline.get_metrics()
    assert stage1.total_failed == 1
    assert (stage2.total_completed, stage2.total_failed) == (6, 3)
    assert accounted(pipeline.get_metrics()) == 10


async def test_exception_in_block_cancels_both_stages_and_accounts() -> None:
    stages = Stages(pre_duration=0.5, duration=3.0)
    pipeline = pipeline_for(stages, stage2_max_concurrency=1, backpressure_threshold=4, relief_threshold=2)
    with pytest.raises(ArithmeticError):
        async with pipeline:
            for item in range(8):
                await pipeline.enqueue(item)
            await anyio.sleep(2)
            raise ArithmeticError
    metrics = pipeline.get_metrics()
    assert metrics.stage1.total_cancelled + metrics.stage2.total_cancelled > 0
    assert accounted(metrics) == metrics.stage1.total_enqueued == 8
    assert stages.done == []


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline in the block cancels both stages; the pipeline is entered once."""
    made: list[ReactiveFanOutPipeline[Any]] = []

    def make() -> ReactiveFanOutPipeline[Any]:
        made.append(pipeline_for(Stages(pre_duration=0.5, duration=3.0), backpressure_threshold=4, relief_threshold=2))
        return made[-1]

    async def use(pipeline: ReactiveFanOutPipeline[Any]) -> None:
        for item in range(6):
            await pipeline.enqueue(item)
        await anyio.sleep(1)

    await assert_lifecycle_faults(make, use)
    for pipeline in made[:2]:
        metrics = pipeline.get_metrics()
        assert metrics.stage1.total_cancelled + metrics.stage2.total_cancelled > 0
        assert accounted(metrics) == metrics.stage1.total_enqueued == 6


async def test_without_pre_stage_work() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        done.append(item)

    async with ReactiveFanOutPipeline(stage2_work=work) as pipeline:
        for item in range(50):
            await pipeline.enqueue(item)
    assert sorted(done) == list(range(50))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"stage1_max_concurrency": 0}, ValueError, "stage1_max_concurrency"),
        ({"stage1_min_concurrency": 0}, ValueError, "stage1_min_concurrency"),
        ({"stage1_min_concurrency": 9, "stage1_max_concurrency": 8}, ValueError, "stage1_min_concurrency"),
        ({"stage2_max_concurrency": 0}, ValueError, "stage2_max_concurrency"),
        ({"backpressure_threshold": 0}, ValueError, "backpressure_threshold"),
        ({"relief_threshold": 0}, ValueError, "relief_threshold"),
        ({"relief_threshold": 40, "backpressure_threshold": 32}, ValueError, "relief_threshold"),
        ({"adjust_cooldown_ms": -1}, ValueError, "adjust_cooldown_ms"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"backpressure_threshold": 3.5}, TypeError, "backpressure_threshold"),
        ({"pre_stage_work": 3}, TypeError, "pre_stage_work"),
        ({"sink": "sink"}, TypeError, "sink"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    async def work(item: int) -> None:
        pass

    with pytest.raises(error, match=name):
        ReactiveFanOutPipeline(stage2_work=work, **kwargs)


def test_bad_stage2_work() -> None:
    with pytest.raises(TypeError, match="stage2_work"):
        ReactiveFanOutPipeline(stage2_work=None)  # type: ignore[arg-type]


steps = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 12), st.sampled_from([0.0, 0.1, 1.0]), st.booleans()),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5, 3.0])),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schedule=st.lists(steps, max_size=15),
    threshold=st.integers(1, 6),
    relief=st.integers(1, 6),
    low=st.integers(1, 2),
    high=st.integers(2, 4),
    stage2_limit=st.integers(1, 3),
    cancel_at=st.one_of(st.none(), st.sampled_from([0.5, 2.0, 10.0])),
)
async def test_property_throttle_bounds_and_exactly_once(
    schedule: list[tuple[Any, ...]],
    threshold: int,
    relief: int,
    low: int,
    high: int,
    stage2_limit: int,
    cancel_at: float | None,
) -> None:
    """Random loads (and an outer deadline): stage 1 is at its minimum exactly while throttled and never
    starts over its limit, throttling follows the backlog, stage 2's backlog stays within 2 x threshold,
    stage 2 stays within its limit, no item runs twice, every item is accounted for."""
    relief = min(relief, threshold)
    stages = Stages(pre_duration=0.01)
    pipeline = pipeline_for(
        stages,
        stage1_max_concurrency=high,
        stage1_min_concurrency=low,
        stage2_max_concurrency=stage2_limit,
        backpressure_threshold=threshold,
        relief_threshold=relief,
        adjust_cooldown_ms=0,
    )
    counter = 0
    problems: list[str] = []

    def check() -> None:
        expected = low if pipeline.is_throttled else high
        if pipeline.stage1_current_max_concurrency != expected:
            problems.append("stage 1's limit does not follow the throttle")
        if pipeline.stage2_pending >= threshold and not pipeline.is_throttled:
            problems.append(f"backlog {pipeline.stage2_pending} >= {threshold} without throttling")

    with anyio.move_on_after(cancel_at if cancel_at is not None else 1e9):
        async with pipeline:
            for step in schedule:
                if step[0] == "enqueue":
                    for _ in range(step[1]):
                        counter += 1
                        await pipeline.enqueue((counter, step[2], step[3] and counter % 3 == 0))
                        check()
                else:
                    await anyio.sleep(step[1])
                    check()
    assert problems == []
    assert stages.violations == []
    assert max(stages.backlogs, default=0) <= 2 * threshold
    assert stages.peak <= stage2_limit
    assert Counter(item for item in stages.done).most_common(1)[0][1] == 1 if stages.done else True
    metrics = pipeline.get_metrics()
    assert metrics.stage1.total_enqueued == counter or cancel_at is not None
    assert accounted(metrics) == metrics.stage1.total_enqueued
    assert metrics.stage1.total_completed == metrics.stage2.total_enqueued
    assert metrics.stage2.total_completed == len(stages.done)


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what the README shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert run_readme_examples(readme) == output_blocks(readme)[0]
