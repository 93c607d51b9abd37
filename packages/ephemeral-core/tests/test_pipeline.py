"""Dependency graphs of operations and staged pipelines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from ephemeral.core import (
    DependencyCoordinator,
    DependencyExecutionError,
    SignalSink,
    StagedPipelineBuilder,
    StageTriggerTimeoutError,
    current_operation,
)
from ephemeral.core.testing import ConcurrencyProbe

# ------------------------------------------------------------------------------------ dependencies


def recorder(
    log: list[str], name: str, delay: float = 1.0, error: Exception | None = None
) -> Callable[[], Awaitable[str]]:
    async def action() -> str:
        log.append(f"start:{name}")
        await anyio.sleep(delay)
        if error is not None:
            raise error
        log.append(f"end:{name}")
        return name.lower()

    return action


async def test_diamond_runs_the_dependent_once_and_last() -> None:
    """A; B and C after A; D after B and C: A runs first, D last and once, even when B and C end together."""
    log: list[str] = []
    deps = DependencyCoordinator(max_concurrency=4)
    deps.add("A", recorder(log, "A"))
    deps.add("B", recorder(log, "B"), depends_on="A")
    deps.add("C", recorder(log, "C"), depends_on=["A"])
    deps.add("D", recorder(log, "D"), depends_on=("B", "C"))
    result = await deps.execute()
    assert log[0] == "start:A" and log[-1] == "end:D"
    assert log.count("start:D") == 1
    assert result.completed[0] == "A" and result.completed[-1] == "D" and len(result.completed) == 4
    assert result.results == {"A": "a", "B": "b", "C": "c", "D": "d"}
    assert result.succeeded and not result.failed and not result.skipped


async def test_operations_start_as_soon_as_their_dependencies_succeeded() -> None:
    """An operation does not wait for unrelated slow operations, only for its own dependencies."""
    started: dict[str, float] = {}

    def timed(name: str, delay: float) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            started[name] = anyio.current_time()
            await anyio.sleep(delay)

        return action

    origin = anyio.current_time()
    deps = DependencyCoordinator(max_concurrency=4)
    deps.add("fast", timed("fast", 1)).add("slow", timed("slow", 10)).add("next", timed("next", 1), "fast")
    await deps.execute()
    assert started["next"] - origin == pytest.approx(1)
    assert anyio.current_time() - origin == pytest.approx(10)


async def test_max_concurrency_is_honoured() -> None:
    """No more than max_concurrency operations run at once."""
    probe = ConcurrencyProbe()

    async def action() -> None:
        with probe:
            await anyio.sleep(1)

    deps = DependencyCoordinator(max_concurrency=2)
    for i in range(6):
        deps.add(f"op{i}", action)
    result = await deps.execute()
    assert probe.peak == 2 and len(result.completed) == 6


async def test_cycle_raises_naming_it() -> None:
    """A <- C, B <- A, C <- B is a cycle: execute raises ValueError naming it and runs nothing."""
    ran: list[str] = []
    deps = DependencyCoordinator()
    deps.add("A", recorder(ran, "A"), depends_on="C")
    deps.add("B", recorder(ran, "B"), depends_on="A")
    deps.add("C", recorder(ran, "C"), depends_on="B")
    with pytest.raises(ValueError, match="circular dependency: A -> C -> B -> A"):
        await deps.execute()
    assert ran == []


async def test_unknown_dependency_raises_naming_it() -> None:
    """A dependency that was never added raises ValueError naming both operations."""
    deps = DependencyCoordinator().add("A", recorder([], "A"), depends_on="ghost")
    with pytest.raises(ValueError, match="'A' depends on unknown operation 'ghost'"):
        await deps.execute()


def test_add_rejects_bad_operations() -> None:
    """Duplicate names, self-dependencies, blank names and bad bounds raise ValueError at add time."""
    deps = DependencyCoordinator().add("A", recorder([], "A"))
    with pytest.raises(ValueError, match="'A' is already"):
        deps.add("A", recorder([], "A"))
    with pytest.raises(ValueError, match="itself"):
        deps.add("B", recorder([], "B"), depends_on="B")
    with pytest.raises(ValueError, match="name"):
        deps.add("", recorder([], "C"))
    with pytest.raises(ValueError, match="max_concurrency"):
        DependencyCoordinator(max_concurrency=0)
    assert deps.names == ("A",)


async def test_signals_for_each_operation() -> None:
    """operation.start:{name} and operation.done:{name} are emitted on the sink, keyed by the name."""
    sink = SignalSink()
    await DependencyCoordinator(sink=sink).add("test", recorder([], "test")).execute()
    assert [(e.signal, e.key) for e in sink.sense("operation.*")] == [
        ("operation.start:test", "test"),
        ("operation.done:test", "test"),
    ]


async def test_failure_skips_dependents_and_the_rest_carries_on() -> None:
    """B fails: C (after B) and E (after C) are skipped with signals, independent D completes, execute raises."""
    sink = SignalSink()
    log: list[str] = []
    boom = RuntimeError("B broke")
    deps = DependencyCoordinator(sink=sink, max_concurrency=4)
    deps.add("A", recorder(log, "A"))
    deps.add("B", recorder(log, "B", error=boom), depends_on="A")
    deps.add("C", recorder(log, "C"), depends_on="B")
    deps.add("E", recorder(log, "E"), depends_on=["C", "A"])
    deps.add("D", recorder(log, "D", delay=5))
    with pytest.raises(DependencyExecutionError, match="B \\(RuntimeError: B broke\\)") as caught:
        await deps.execute()
    error = caught.value
    assert error.failures == {"B": boom} and error.exceptions == (boom,)
    assert error.__cause__ is boom
    assert set(error.result.completed) == {"A", "D"}
    assert set(error.result.skipped) == {"C", "E"}
    assert "start:C" not in log and "start:E" not in log and "end:D" in log
    assert sink.detect("operation.failed:B")
    assert {e.key for e in sink.sense("operation.skipped:*")} == {"C", "E"}


async def test_every_failure_is_reported() -> None:
    """Two failing operations are both held by the error; raise_on_failure=False returns the result instead."""
    deps = DependencyCoordinator()
    deps.add("x", recorder([], "x", error=ValueError("x")))
    deps.add("y", recorder([], "y", error=KeyError("y")))
    deps.add("z", recorder([], "z"), depends_on=["x", "y"])
    with pytest.raises(DependencyExecutionError) as caught:
        await deps.execute()
    assert set(caught.value.failures) == {"x", "y"}
    assert caught.value.result.skipped == ("z",)
    result = await deps.execute(raise_on_failure=False)
    assert set(result.failed) == {"x", "y"} and result.skipped == ("z",) and not result.succeeded


async def test_empty_graph_and_reruns() -> None:
    """An empty coordinator completes nothing; execute may run the graph again."""
    assert (await DependencyCoordinator().execute()).completed == ()
    log: list[str] = []
    deps = DependencyCoordinator().add("A", recorder(log, "A"))
    await deps.execute()
    await deps.execute()
    assert log.count("end:A") == 2


# -------------------------------------------------------------------------------- staged pipeline


async def test_stages_run_in_order_over_every_item() -> None:
    """Stages "init" (0) and "process" (1) both run over every item, and their signals are emitted."""
    sink = SignalSink()
    seen: list[tuple[str, int]] = []

    def stage(name: str) -> Callable[[int], Awaitable[None]]:
        async def work(item: int) -> None:
            await anyio.sleep(0.01)
            seen.append((name, item))

        return work

    pipeline = (
        StagedPipelineBuilder[int](sink)
        .add_stage(1, stage("process"), name="process")
        .add_stage(0, stage("init"), name="init")
    ).build()
    result = await pipeline.run(iter([1, 2, 3]))
    assert [name for name, _ in seen] == ["init"] * 3 + ["process"] * 3
    assert sorted(item for name, item in seen if name == "process") == [1, 2, 3]
    assert [(s.name, s.order, s.completed, s.failed) for s in result.stages] == [
        ("init", 0, 3, 0),
        ("process", 1, 3, 0),
    ]
    assert [e.signal for e in sink.sense("stage.*")] == [
        "stage.start:init",
        "stage.complete:init",
        "stage.start:process",
        "stage.complete:process",
    ]


async def test_stage_default_names_and_failures() -> None:
    """A stage without a name is stage-{order}; failing items are counted and the pipeline carries on."""

    async def flaky(item: int) -> None:
        if item % 2:
            raise ValueError(item)

    async def fine(item: int) -> None:
        pass

    result = await StagedPipelineBuilder[int]().add_stage(5, flaky).add_stage(7, fine).build().run(range(4))
    assert [(s.name, s.completed, s.failed) for s in result.stages] == [("stage-5", 2, 2), ("stage-7", 4, 0)]
    assert result.total_failed == 2


async def test_stage_waits_for_its_trigger_from_an_earlier_stage() -> None:
    """A stage triggered by a signal that an operation of the earlier stage emitted runs after it."""
    sink = SignalSink()
    ran: list[str] = []

    async def load(item: str) -> None:
        current_operation().emit("data.ready")

    async def index(item: str) -> None:
        ran.append(item)

    builder = StagedPipelineBuilder[str](sink, trigger_timeout=1.0)
    pipeline = builder.add_stage(0, load).add_stage(1, index, when_any="data.*").build()
    await pipeline.run(["doc"])
    assert ran == ["doc"]


async def test_stage_waits_for_a_later_trigger() -> None:
    """A stage waits for its trigger, emitted later by someone else, then runs."""
    sink = SignalSink()
    started: list[float] = []

    async def work(item: int) -> None:
        started.append(anyio.current_time())

    pipeline = StagedPipelineBuilder[int](sink).add_stage(0, work, when_any=["go", "start.*"]).build()
    origin = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run, [1])
        await anyio.sleep(5)
        assert not started
        sink.emit("start.now")
    assert started[0] - origin == pytest.approx(5)


async def test_missing_trigger_times_out_instead_of_hanging() -> None:
    """A trigger that never comes fails the run with StageTriggerTimeoutError after the timeout."""
    sink = SignalSink()
    ran: list[str] = []

    async def work(item: str) -> None:
        ran.append(item)

    pipeline = (
        StagedPipelineBuilder[str](sink)
        .add_stage(0, work, name="first")
        .add_stage(1, work, name="second", when_any="never", trigger_timeout=30)
        .add_stage(2, work, name="third")
        .build()
    )
    origin = anyio.current_time()
    with pytest.raises(StageTriggerTimeoutError, match=r"'second'.*never.*30s") as caught:
        await pipeline.run(["x"])
    assert isinstance(caught.value, TimeoutError) and caught.value.stage == "second"
    assert anyio.current_time() - origin == pytest.approx(30)
    assert ran == ["x"]
    assert sink.detect("stage.timeout:second") and not sink.detect("stage.start:third")


def test_builder_rejects_bad_stages() -> None:
    """Duplicate names, an empty pipeline and a bad timeout raise ValueError naming the problem."""

    async def work(item: int) -> None:
        pass

    builder = StagedPipelineBuilder[int]().add_stage(0, work, name="a")
    with pytest.raises(ValueError, match="'a' is already"):
        builder.add_stage(1, work, name="a")
    with pytest.raises(ValueError, match="at least one stage"):
        StagedPipelineBuilder[int]().build()
    with pytest.raises(ValueError, match="trigger_timeout"):
        StagedPipelineBuilder[int](trigger_timeout=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        StagedPipelineBuilder[int](max_concurrency=0)
