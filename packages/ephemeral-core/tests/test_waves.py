"""The signal wave executor: stages triggered by signals, early exit, and no runaway self-triggering."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from ephemeral.core import SignalEvent, SignalSink, SignalStage, SignalWaveExecutor, current_operation
from ephemeral.core.testing import ConcurrencyProbe, assert_lifecycle_faults


async def test_early_exit_cancels_running_stage_work() -> None:
    """An early-exit signal cancels the running stage's work and emits stage.exit (reference wave test)."""
    sink = SignalSink()
    cancelled = anyio.Event()
    finished: list[bool] = []

    async def detect(event: SignalEvent[Any]) -> None:
        try:
            await anyio.sleep(1)
            finished.append(True)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    stage = SignalStage("detect", "stage.start", detect)
    async with SignalWaveExecutor(sink, [stage], early_exit_signals="early.exit", max_concurrent_stages=1) as waves:
        sink.emit("stage.start")
        await anyio.sleep(0.05)
        sink.emit("early.exit", key="verdict")
        await anyio.sleep(0.15)
        assert cancelled.is_set() and not finished
        assert waves.exited and waves.exit_signal == "early.exit"
    assert [(e.signal, e.key) for e in sink.sense("stage.exit*")] == [("stage.exit:early.exit", "verdict")]
    assert sink.detect("stage.cancel:detect")
    assert waves.get_metrics().total_cancelled == 1


async def test_early_exit_drops_waiting_runs_and_stops_listening() -> None:
    """Runs waiting for a slot are cancelled on exit, and later triggers start nothing."""
    sink = SignalSink()
    runs: list[str] = []

    async def work(event: SignalEvent[Any]) -> None:
        runs.append(event.key or "")
        await anyio.sleep(10)

    origin = anyio.current_time()
    async with SignalWaveExecutor(sink, [SignalStage("s", "job", work)], early_exit_signals="stop") as waves:
        for i in range(6):
            sink.emit("job", key=str(i))
        await anyio.sleep(1)
        sink.emit("stop")
        sink.emit("job", key="late")
    assert anyio.current_time() - origin == pytest.approx(1)
    assert sorted(runs) == ["0", "1", "2", "3"]  # four slots by default
    metrics = waves.get_metrics()
    assert (metrics.total_enqueued, metrics.total_cancelled, metrics.total_completed) == (6, 6, 0)


async def test_waves_chain_through_stage_signals() -> None:
    """A stage's completion signal triggers the next stage, carrying the trigger's key along."""
    sink = SignalSink()
    log: list[tuple[str, str | None]] = []

    async def pay(event: SignalEvent[Any]) -> None:
        log.append(("pay", event.key))
        await anyio.sleep(1)

    async def ship(event: SignalEvent[Any]) -> None:
        log.append(("ship", event.key))

    stages = [
        SignalStage("pay", "order.placed", pay, emit_on_start="payment.started", emit_on_complete=["order.paid"]),
        SignalStage("ship", "order.paid", ship),
    ]
    async with SignalWaveExecutor(sink, stages):
        sink.emit("order.placed", key="order-1")
    assert log == [("pay", "order-1"), ("ship", "order-1")]
    assert [(e.signal, e.key) for e in sink.sense()] == [
        ("order.placed", "order-1"),
        ("stage.start:pay", "order-1"),
        ("payment.started", "order-1"),
        ("order.paid", "order-1"),
        ("stage.complete:pay", "order-1"),
        ("stage.start:ship", "order-1"),
        ("stage.complete:ship", "order-1"),
    ]
    paid = sink.sense("order.paid")[0]
    assert paid.propagation is not None and paid.propagation.path == ("order.placed", "stage.start:pay", "order.paid")


async def test_a_stage_never_triggers_itself() -> None:
    """A stage triggered by "*" runs once per outside signal, whatever it and its work emit (fix of the loop)."""
    sink = SignalSink()
    runs = 0

    async def work(event: SignalEvent[Any]) -> None:
        nonlocal runs
        runs += 1
        sink.emit("work.direct")
        current_operation().emit("work.operation")
        await anyio.sleep(0.1)
        sink.emit("work.after-sleep")

    stage = SignalStage("greedy", "*", work, emit_on_start="x.started", emit_on_complete="x.done")
    async with SignalWaveExecutor(sink, [stage]):
        sink.emit("go")
    assert runs == 1
    assert sink.count("stage.complete:greedy") == 1


async def test_broad_triggers_on_several_stages_settle() -> None:
    """Two stages triggered by "*" trigger each other a bounded number of times and the wave ends."""
    sink = SignalSink()
    runs: Counter[str] = Counter()

    def counting(name: str) -> Any:
        async def work(event: SignalEvent[Any]) -> None:
            runs[name] += 1

        return work

    stages = [SignalStage("A", "*", counting("A")), SignalStage("B", "*", counting("B"))]
    async with SignalWaveExecutor(sink, stages) as waves:
        sink.emit("go")
    # Each runs for "go" and for the start and completion signals of the other's run for "go".
    assert runs == {"A": 3, "B": 3}
    assert waves.get_metrics().total_completed == 6


async def test_stage_concurrency_is_bounded() -> None:
    """No more than max_concurrent_stages runs are active at once."""
    sink = SignalSink()
    probe = ConcurrencyProbe()

    async def work(event: SignalEvent[Any]) -> None:
        with probe:
            await anyio.sleep(1)

    async with SignalWaveExecutor(sink, [SignalStage("s", "tick", work)], max_concurrent_stages=2) as waves:
        for _ in range(5):
            sink.emit("tick")
    assert probe.peak == 2 and waves.get_metrics().total_completed == 5


async def test_stage_failure_is_signalled_and_the_executor_carries_on() -> None:
    """A failing stage emits its failure signals; later triggers still run."""
    sink = SignalSink()
    runs: list[str | None] = []

    async def work(event: SignalEvent[Any]) -> None:
        runs.append(event.key)
        if event.key == "bad":
            raise ValueError("bad input")

    stage = SignalStage("parse", "input", work, emit_on_failure="parse.rejected")
    async with SignalWaveExecutor(sink, [stage]) as waves:
        sink.emit("input", key="bad")
        await anyio.sleep(1)
        sink.emit("input", key="good")
    assert runs == ["bad", "good"]
    assert sink.detect("parse.rejected") and sink.detect("stage.fail:parse:ValueError")
    assert sink.count("stage.complete:parse") == 1
    metrics = waves.get_metrics()
    assert (metrics.total_failed, metrics.total_completed) == (1, 1)


async def test_leaving_waits_for_the_wave_and_an_error_cancels() -> None:
    """Leaving the block waits for triggered stages; an exception in the block cancels running work."""
    sink = SignalSink()
    done: list[str] = []

    async def slow(event: SignalEvent[Any]) -> None:
        await anyio.sleep(100)
        done.append(event.signal)

    origin = anyio.current_time()
    async with SignalWaveExecutor(sink, [SignalStage("slow", "go.*", slow)]):
        sink.emit("go.one")
    assert done == ["go.one"] and anyio.current_time() - origin == pytest.approx(100)
    with pytest.raises(KeyError):
        async with SignalWaveExecutor(sink, [SignalStage("slow", "go.*", slow)]) as waves:
            sink.emit("go.two")
            await anyio.sleep(1)
            raise KeyError("caller bug")
    assert done == ["go.one"] and waves.get_metrics().total_cancelled == 1
    sink.emit("go.three")  # the executor no longer listens
    await anyio.sleep(200)
    assert done == ["go.one"] and waves.get_metrics().total_enqueued == 1 and not waves.exited


@pytest.mark.real_time
async def test_triggers_from_other_threads() -> None:
    """Signals emitted on worker threads trigger stages on the loop."""
    sink = SignalSink()
    keys: list[str | None] = []

    async def work(event: SignalEvent[Any]) -> None:
        keys.append(event.key)

    def trigger(key: str) -> None:
        sink.emit("job", key=key)

    async with SignalWaveExecutor(sink, [SignalStage("s", "job", work)]), anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(anyio.to_thread.run_sync, trigger, str(i))
    assert sorted(k or "" for k in keys) == ["0", "1", "2", "3"]


def test_bad_stages_are_rejected() -> None:
    """Empty stage lists, duplicate names, empty triggers and blank names raise ValueError."""

    async def work(event: SignalEvent[Any]) -> None:
        pass

    sink = SignalSink()
    with pytest.raises(ValueError, match="stages"):
        SignalWaveExecutor(sink, [])
    with pytest.raises(ValueError, match="distinct names"):
        SignalWaveExecutor(sink, [SignalStage("a", "x", work), SignalStage("a", "y", work)])
    with pytest.raises(ValueError, match="trigger"):
        SignalStage("a", " , ", work)
    with pytest.raises(ValueError, match="name"):
        SignalStage("", "x", work)
    with pytest.raises(ValueError, match="max_concurrency"):
        SignalWaveExecutor(sink, [SignalStage("a", "x", work)], max_concurrent_stages=0)
    stage = SignalStage("a", "x, y", work, emit_on_start="s")
    assert stage.trigger == ("x", "y") and stage.emit_on_start == ("s",)


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline in the block cancels the running stages; an executor is entered once."""
    made: list[SignalWaveExecutor] = []

    async def work(event: SignalEvent[Any]) -> None:
        await anyio.sleep(10)

    def make() -> SignalWaveExecutor:
        made.append(SignalWaveExecutor(SignalSink(), [SignalStage("s", "job", work)]))
        return made[-1]

    async def use(waves: SignalWaveExecutor) -> None:
        for i in range(6):
            waves.signals.emit("job", key=str(i))
        await anyio.sleep(0.5)

    await assert_lifecycle_faults(make, use)
    for waves in made[:2]:
        metrics = waves.get_metrics()
        assert (metrics.total_enqueued, metrics.total_cancelled) == (6, 6)
        assert waves.signals.count("stage.cancel:s") == 4  # the four running; the waiting ones never started
