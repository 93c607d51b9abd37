"""The original's public shapes, beside the Pythonic ones: code ported from it runs unchanged."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral.core import (
    ContributorTracker,
    DependencyCoordinator,
    EarlyExitOptions,
    EarlyExitResultCoordinator,
    EphemeralOptions,
    SignalAggregationWindow,
    SignalDispatcher,
    SignalEvent,
    SignalSink,
    StagedPipelineBuilder,
    TypedSignalSink,
)
from ephemeral.core.testing import ConcurrencyProbe

# ------------------------------------------------------------------------------ DependencyCoordinator


async def test_dependency_coordinator_with_a_body_and_add_operation() -> None:
    """``DependencyCoordinator(body, max_concurrency, sink)``: A; B<-A; C<-A; D<-B,C runs A first and D last."""
    sink = SignalSink()
    order: list[str] = []

    async def body(item: str) -> str:
        order.append(item)
        await anyio.sleep(0.01)
        return item.upper()

    deps = DependencyCoordinator(body, 4, sink)
    deps.add_operation("A", "a")
    deps.add_operation("B", "b", "A")
    deps.add_operation("C", "c", "A")
    deps.add_operation("D", "d", "B", "C")
    result = await deps.execute()
    assert order[0] == "a" and order[-1] == "d" and sorted(order[1:3]) == ["b", "c"]
    assert result.results == {"A": "A", "B": "B", "C": "C", "D": "D"}
    assert sink.detect("operation.start:A") and sink.detect("operation.done:D")


async def test_dependency_coordinator_original_failure_and_cycle() -> None:
    """A failing operation raises (an Exception) and its dependents never start; a cycle is refused."""
    ran: list[str] = []

    async def body(item: str) -> None:
        ran.append(item)
        if item == "B":
            raise RuntimeError("B broke")

    deps = DependencyCoordinator(body)
    deps.add_operation("A", "A").add_operation("B", "B", "A").add_operation("C", "C", "B")
    with pytest.raises(Exception, match="B broke"):
        await deps.execute()
    assert ran == ["A", "B"]
    cyclic = DependencyCoordinator(body, None)  # None, not the original's 0, means "the number of CPUs"
    cyclic.add_operation("A", 1, "C").add_operation("B", 2, "A").add_operation("C", 3, "B")
    with pytest.raises(ValueError, match="circular"):
        await cyclic.execute()


def test_add_operation_needs_a_body_and_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="body"):
        DependencyCoordinator().add_operation("A", 1)
    with pytest.raises(TypeError, match="body"):
        DependencyCoordinator("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        DependencyCoordinator(None, 0)
    with pytest.raises(TypeError, match=r"body must be an async function \(async def\)"):
        DependencyCoordinator(lambda item: anyio.lowlevel.checkpoint())  # a plain function returning an awaitable

    async def body(item: int) -> None:
        await anyio.lowlevel.checkpoint()

    deps = DependencyCoordinator(body)
    with pytest.raises(ValueError, match="already"):
        deps.add_operation("A", 1).add_operation("A", 2)


# ---------------------------------------------------------------------------------------- EarlyExit


async def test_early_exit_options_aggregate_and_drain_returns_the_result() -> None:
    """``EarlyExitOptions(early_exit_signals=, on_early_exit=)``; ``drain()`` returns the result."""
    sink = SignalSink()
    seen: list[tuple[str, list[int]]] = []

    async def body(item: int) -> int:
        if item == 3:
            sink.emit("verdict.confirmed", key="bot")
        await anyio.sleep(0.05)
        return item * 10

    def on_early_exit(signal: str, partial: list[int]) -> int:
        seen.append((signal, list(partial)))
        return sum(partial)

    exit_options: EarlyExitOptions[int] = EarlyExitOptions(
        early_exit_signals={"verdict.*"}, on_early_exit=on_early_exit
    )
    async with EarlyExitResultCoordinator(body, exit_options, EphemeralOptions(max_concurrency=1, signals=sink)) as c:
        for i in range(1, 11):
            await c.enqueue(i)
        result = await c.drain()
    assert result.exited and result.exit_signal == "verdict.confirmed"
    assert result.partial_results == (10, 20) == result.results
    assert result.aggregated == 30
    assert seen == [("verdict.confirmed", [10, 20])]


async def test_early_exit_without_exit_gives_every_result_and_no_aggregate() -> None:
    async def body(item: int) -> int:
        return item

    options: EarlyExitOptions[int] = EarlyExitOptions(early_exit_signals="stop", on_early_exit=lambda s, r: -1)
    async with EarlyExitResultCoordinator(body, options) as c:
        for i in range(3):
            await c.enqueue(i)
        result = await c.drain()
    assert not result.exited and result.partial_results == (0, 1, 2) and result.aggregated is None


def test_early_exit_options_are_checked() -> None:
    with pytest.raises(ValueError, match="early_exit_signals"):
        EarlyExitOptions(early_exit_signals=[])
    with pytest.raises(TypeError, match="on_early_exit"):
        EarlyExitOptions(early_exit_signals="x", on_early_exit=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EarlyExitOptions("x")  # type: ignore[call-arg]


async def test_an_on_early_exit_that_raises_fails_drain() -> None:
    sink = SignalSink()

    async def body(item: int) -> int:
        sink.emit("stop")
        await anyio.sleep(1)
        return item

    def broken(signal: str, partial: list[int]) -> int:
        raise ArithmeticError("cannot aggregate")

    options: EarlyExitOptions[int] = EarlyExitOptions(early_exit_signals="stop", on_early_exit=broken)
    async with EarlyExitResultCoordinator(body, options, EphemeralOptions(signals=sink)) as c:
        await c.enqueue(1)
        with pytest.raises(ArithmeticError, match="cannot aggregate"):
            await c.drain()


# ---------------------------------------------------------------------------------- StagedPipeline


async def test_staged_pipeline_builder_execute_runs_every_stage() -> None:
    """``StagedPipelineBuilder(sink).add_stage(...).execute(items)``; both stages' signals are detectable."""
    sink = SignalSink()
    seen: list[tuple[str, int]] = []

    async def init(item: int) -> None:
        seen.append(("init", item))

    async def process(item: int) -> None:
        seen.append(("process", item))

    builder = StagedPipelineBuilder[int](sink).add_stage(0, init, name="init").add_stage(1, process, name="process")
    result = await builder.execute([1, 2])
    assert sorted(seen) == [("init", 1), ("init", 2), ("process", 1), ("process", 2)]
    assert [s.name for s in result.stages] == ["init", "process"]
    for name in ("init", "process"):
        assert sink.detect(f"stage.start:{name}") and sink.detect(f"stage.complete:{name}")


# -------------------------------------------------------------------------------- SignalDispatcher


async def test_signal_dispatcher_takes_the_originals_options() -> None:
    """``SignalDispatcher(options)``: max_concurrency and the backlog (max_tracked_operations) come from it."""
    handled: list[str] = []
    probe = ConcurrencyProbe()

    async def handler(event: SignalEvent[Any]) -> None:
        with probe:
            await anyio.sleep(0.1)
            handled.append(event.signal)

    options = EphemeralOptions(max_concurrency=2, max_tracked_operations=3)
    async with SignalDispatcher(options) as dispatcher:
        dispatcher.register("order.*", handler)
        for i in range(10):
            dispatcher.dispatch(SignalEvent(f"order.{i}", i, None, datetime.now(timezone.utc)))
        await dispatcher.flush()
    assert probe.peak == 2
    assert sorted(handled) == ["order.7", "order.8", "order.9"]  # 3 may wait: the oldest waiting were dropped
    assert dispatcher.dropped_count == 7


def test_signal_dispatcher_options_must_be_alone() -> None:
    with pytest.raises(TypeError, match="options"):
        SignalDispatcher(EphemeralOptions(), max_concurrency=2)


# ------------------------------------------------------------------------------- aggregation window


def _scored_sink() -> TypedSignalSink[dict[str, float]]:
    typed: TypedSignalSink[dict[str, float]] = TypedSignalSink()
    typed.emit("score.ua", {"score": 0.5})
    typed.emit("score.ua", {"score": 0.6})
    typed.emit("score.ip", {"score": 0.3})
    typed.emit("other", {"score": 9.0})
    return typed


def test_aggregation_selectors_per_call() -> None:
    """``sum(selector, pattern)``, ``average(selector, pattern)``, ``group_by(key_selector, pattern)``."""
    window = SignalAggregationWindow(_scored_sink())

    def score(event: SignalEvent[Any]) -> float:
        return float(event.payload["score"]) if event.payload else 0.0

    assert window.sum(score, "score.*") == pytest.approx(1.4)
    assert window.average(score, "score.*") == pytest.approx(1.4 / 3)
    assert window.sum(score) == pytest.approx(10.4)
    assert window.min(score, "score.*") == pytest.approx(0.3) and window.max(score, "score.*") == pytest.approx(0.6)
    assert window.aggregate(score, "score.ua").values == (0.5, 0.6)
    groups = window.group_by(lambda e: e.signal, "score.*")
    assert list(groups) == ["score.ua", "score.ip"]
    assert len(groups["score.ua"]) == 2 and [e.payload for e in groups["score.ua"]] == [{"score": 0.5}, {"score": 0.6}]
    assert window.sum("score.*") == 0.0  # the Pythonic form: numbers from the default extractor (none here)
    assert window.group_by("score.*", key=lambda e: "all")["all"].count == 3  # and its key= form


def test_aggregation_selector_and_pattern_are_checked() -> None:
    window = SignalAggregationWindow(_scored_sink())
    with pytest.raises(TypeError, match="selector"):
        window.sum("score.*", "score.ua")
    with pytest.raises(TypeError, match="pattern"):
        window.sum(lambda e: 1.0, 5)  # type: ignore[arg-type]  # wrong on purpose


# ------------------------------------------------------------------------------------- contributors


async def test_contributor_result_pending_count() -> None:
    tracker: ContributorTracker[float] = ContributorTracker(["ua", "ip", "geo", "asn", "rdns"])
    for name in ("ua", "ip", "geo"):
        tracker.complete(name, 0.5)
    result = await tracker.wait_for_quorum(3, timeout=1)
    assert result.reached and result.completed_count == 3 and result.pending_count == 2 == result.pending
