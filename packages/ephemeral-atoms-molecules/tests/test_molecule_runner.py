"""MoleculeRunner: steps in order per trigger, hooks and signals, failure isolation, bounded concurrency, shutdown."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from ephemeral.atoms.molecules import (
    AtomTrigger,
    MoleculeBlueprint,
    MoleculeBlueprintBuilder,
    MoleculeContext,
    MoleculeFailure,
    MoleculeRunner,
)
from ephemeral.core import BlockReason, SignalConstraints, SignalEvent, SignalSink
from ephemeral.core.testing import ConcurrencyProbe, assert_lifecycle_faults


def sink() -> SignalSink:
    return SignalSink(max_age=3600.0, clock=anyio.current_time)


def names(signals: SignalSink, pattern: str = "molecule.*") -> list[tuple[str, str | None, Any]]:
    return [(e.signal, e.key, e.payload) for e in signals.sense(pattern)]


# -- reference tests (core-semantics 39) -----------------------------------------------------------


async def test_executes_blueprint_when_signal_matches() -> None:
    """Reference 39: a step added after build() runs too; molecule_completed fires within 1 s; order kept."""
    steps: list[str] = []

    async def payment(ctx: MoleculeContext) -> None:
        await anyio.sleep(0.001)
        steps.append("payment")

    async def inventory(ctx: MoleculeContext) -> None:
        steps.append("inventory")

    blueprint = MoleculeBlueprintBuilder("order", "order.*").add_atom(payment).build()
    blueprint.add_atom(inventory)
    signals = sink()
    completed = anyio.Event()
    async with MoleculeRunner(signals, [blueprint]) as runner:
        runner.molecule_completed.connect(lambda ctx: completed.set())
        signals.emit("order.placed", key="order-1")
        with anyio.fail_after(1):
            await completed.wait()
        assert steps == ["payment", "inventory"]


async def test_removes_atom_step_before_execution() -> None:
    """Reference 39: remove_atoms(step is inventory) before the trigger leaves only payment to run."""
    steps: list[str] = []

    async def payment(ctx: MoleculeContext) -> None:
        steps.append("payment")

    async def inventory(ctx: MoleculeContext) -> None:
        steps.append("inventory")

    blueprint = MoleculeBlueprintBuilder("order", "order.*").add_atom(payment).add_atom(inventory).build()
    assert blueprint.remove_atoms(lambda step: step is inventory) == 1
    signals = sink()
    async with MoleculeRunner(signals, [blueprint]) as runner:
        signals.emit("order.placed", key="order-1")
    assert steps == ["payment"]
    assert runner.completed_count == 1


# -- one run ---------------------------------------------------------------------------------------


async def test_steps_run_in_order_and_share_one_context() -> None:
    """Steps run one after another (each waits for the previous) and share state, trigger and services."""
    seen: list[tuple[str, float]] = []
    services = {"db": "fake-db"}

    async def first(ctx: MoleculeContext) -> None:
        await anyio.sleep(5)
        ctx.state["total"] = 42
        seen.append(("first", anyio.current_time()))

    def second(ctx: MoleculeContext) -> None:  # a plain function is a step too
        seen.append(("second", anyio.current_time()))

    async def third(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)
        assert ctx.state["total"] == 42
        assert ctx.services is services and ctx.signals is signals
        assert (ctx.trigger_signal.signal, ctx.trigger_signal.key) == ("order.placed", "o-7")
        assert ctx.blueprint.name == "order"
        seen.append(("third", anyio.current_time()))

    blueprint = MoleculeBlueprintBuilder("order", "order.placed").add_atom(first).add_atom(second).add_atom(third)
    signals = sink()
    start = anyio.current_time()
    async with MoleculeRunner(signals, [blueprint.build()], services) as runner:
        signals.emit("order.placed", key="o-7")
    assert [(name, at - start) for name, at in seen] == [("first", 5), ("second", 5), ("third", 6)]
    assert runner.services is services


async def test_each_run_gets_its_own_state() -> None:
    """Two triggers of one blueprint get two contexts with separate state dicts."""
    states: list[dict[str, Any]] = []

    async def remember(ctx: MoleculeContext) -> None:
        ctx.state["key"] = ctx.trigger_signal.key
        await anyio.sleep(1)
        states.append(dict(ctx.state))

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("m", "go", [remember])]):
        signals.emit("go", key="a")
        signals.emit("go", key="b")
    assert sorted(s["key"] for s in states) == ["a", "b"]


async def test_hooks_and_signals_carry_the_trigger_key_and_blueprint_name() -> None:
    """molecule_started/completed fire with the context; molecule.started/completed carry key and name."""
    started: list[MoleculeContext] = []
    completed: list[MoleculeContext] = []

    async def step(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("order", "order.placed", [step])]) as runner:
        runner.molecule_started.connect(started.append)
        runner.molecule_completed.connect(completed.append)
        signals.emit("order.placed", key="order-9")
    assert len(started) == 1 and completed == started
    assert started[0].trigger_signal.key == "order-9"
    assert names(signals) == [("molecule.started", "order-9", "order"), ("molecule.completed", "order-9", "order")]
    done = signals.sense("molecule.completed")[0]
    assert done.propagation is not None and done.propagation.path == ("order.placed", "molecule.completed")
    assert (runner.started_count, runner.completed_count, runner.failed_count, runner.active_count) == (1, 1, 0, 0)


async def test_ctx_emit_uses_the_sink_and_records_the_cause() -> None:
    """ctx.emit puts the signal on the sink with its key, caused by the trigger signal."""

    async def pay(ctx: MoleculeContext) -> None:
        assert ctx.emit("order.payment.complete", ctx.trigger_signal.key)
        assert ctx.emit("order.shipping.start")

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("order", "order.placed", [pay])]):
        signals.emit("order.placed", key="order-42")
    paid = signals.sense("order.payment.complete")
    assert [(e.key, e.propagation.path if e.propagation else None) for e in paid] == [
        ("order-42", ("order.placed", "order.payment.complete"))
    ]
    assert [e.key for e in signals.sense("order.shipping.start")] == [None]


# -- failures --------------------------------------------------------------------------------------


async def test_a_failing_step_stops_its_molecule_and_is_reported() -> None:
    """The first step that raises ends that run: later steps skipped, molecule_failed and molecule.failed."""
    steps: list[str] = []
    failures: list[MoleculeFailure] = []

    async def ok(ctx: MoleculeContext) -> None:
        steps.append("ok")

    async def broken(ctx: MoleculeContext) -> None:
        steps.append("broken")
        raise RuntimeError("card declined")

    async def never(ctx: MoleculeContext) -> None:
        steps.append("never")

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("order", "order.placed", [ok, broken, never])]) as runner:
        runner.molecule_failed.connect(failures.append)
        runner.molecule_completed.connect(lambda ctx: steps.append("completed?"))
        signals.emit("order.placed", key="o-1")
    assert steps == ["ok", "broken"]
    [failure] = failures
    blueprint, context, error, step_index = failure
    assert blueprint.name == "order" and context.trigger_signal.key == "o-1"
    assert isinstance(error, RuntimeError) and str(error) == "card declined"
    assert step_index == 1
    assert names(signals) == [("molecule.started", "o-1", "order"), ("molecule.failed", "o-1", "order")]
    assert (runner.started_count, runner.completed_count, runner.failed_count) == (1, 0, 1)


async def test_a_failure_leaves_other_runs_and_blueprints_going() -> None:
    """One run failing neither stops concurrent runs of its blueprint, later triggers, nor other blueprints."""
    done: list[str] = []

    async def step(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)
        if ctx.trigger_signal.key == "bad":
            raise ValueError("bad order")
        done.append(f"{ctx.blueprint.name}:{ctx.trigger_signal.key}")

    signals = sink()
    blueprints = [MoleculeBlueprint("order", "order.*", [step]), MoleculeBlueprint("audit", "order.placed", [step])]
    async with MoleculeRunner(signals, blueprints) as runner:
        signals.emit("order.placed", key="bad")
        signals.emit("order.placed", key="good")
        await runner.wait_idle()
        signals.emit("order.updated", key="later")
    assert sorted(done) == ["audit:good", "order:good", "order:later"]
    assert (runner.completed_count, runner.failed_count) == (3, 2)


async def test_a_raising_hook_handler_is_isolated() -> None:
    """A molecule_started handler that raises does not fail the molecule or stop other handlers."""
    calls: list[str] = []

    def broken(ctx: MoleculeContext) -> None:
        raise RuntimeError("handler bug")

    async def step(ctx: MoleculeContext) -> None:
        calls.append("step")

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("m", "go", [step])]) as runner:
        runner.molecule_started.connect(broken)
        runner.molecule_started.connect(lambda ctx: calls.append("second handler"))
        signals.emit("go")
    assert calls == ["second handler", "step"]
    assert runner.completed_count == 1 and runner.molecule_started.errors == 1


async def test_condition_filters_and_a_raising_condition_does_not_start() -> None:
    """with_condition skips signals failing it; a condition that raises counts as not matching."""
    keys: list[str | None] = []

    async def step(ctx: MoleculeContext) -> None:
        keys.append(ctx.trigger_signal.key)

    def vip_only(signal: SignalEvent[Any]) -> bool:
        if signal.key == "boom":
            raise KeyError(signal.key)
        return signal.key is not None and signal.key.startswith("vip")

    blueprint = MoleculeBlueprintBuilder("vip", "order.*").add_atom(step).with_condition(vip_only).build()
    signals = sink()
    async with MoleculeRunner(signals, [blueprint]) as runner:
        for key in ("vip-1", "regular", "boom", "vip-2"):
            signals.emit("order.placed", key=key)
    assert sorted(k for k in keys if k) == ["vip-1", "vip-2"]
    assert runner.started_count == 2


# -- concurrency -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("bound", "expected_elapsed"), [(5, 10), (2, 30), (1, 50)])
async def test_concurrent_triggers_run_at_most_max_concurrency_at_once(bound: int, expected_elapsed: float) -> None:
    """Five 10 s molecules take 10 s with a bound of 5, 30 s with 2 and 50 s with 1 (virtual time)."""
    probe = ConcurrencyProbe()

    async def slow(ctx: MoleculeContext) -> None:
        with probe:
            await anyio.sleep(10)

    signals = sink()
    start = anyio.current_time()
    async with MoleculeRunner(signals, [MoleculeBlueprint("slow", "job.*", [slow])], max_concurrency=bound) as runner:
        for n in range(5):
            signals.emit(f"job.{n}", key=str(n))
    assert anyio.current_time() - start == pytest.approx(expected_elapsed)
    assert probe.peak == bound
    assert runner.completed_count == 5


async def test_blueprints_on_the_same_signal_do_not_wait_for_each_other() -> None:
    """Two blueprints matching one signal run side by side, each with its own concurrency bound."""
    finished: dict[str, float] = {}

    def sleeper(name: str, seconds: float) -> Any:
        async def step(ctx: MoleculeContext) -> None:
            await anyio.sleep(seconds)
            finished[name] = anyio.current_time()

        return step

    signals = sink()
    start = anyio.current_time()
    blueprints = [MoleculeBlueprint("slow", "order.placed", [sleeper("slow", 10)])]
    blueprints.append(MoleculeBlueprint("fast", "order.*", [sleeper("fast", 1)]))
    async with MoleculeRunner(signals, blueprints, max_concurrency=1):
        signals.emit("order.placed")
    assert {name: at - start for name, at in finished.items()} == {"fast": 1, "slow": 10}


async def test_a_full_backlog_drops_the_oldest_waiting_trigger() -> None:
    """With one run going and two waiting (the bound), a further trigger pushes out the oldest waiting one."""
    keys: list[str | None] = []

    async def step(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)
        keys.append(ctx.trigger_signal.key)

    signals = sink()
    async with MoleculeRunner(
        signals, [MoleculeBlueprint("m", "go", [step])], max_concurrency=1, max_queued=2
    ) as runner:
        signals.emit("go", key="a")
        await anyio.sleep(0.5)  # "a" is running
        for key in "bcd":
            signals.emit("go", key=key)
    assert keys == ["a", "c", "d"]
    assert runner.dropped_count == 1


# -- cascades and loops ----------------------------------------------------------------------------


async def test_leaving_the_block_waits_for_cascades() -> None:
    """Exit waits for molecules started by other molecules' signals and by attached trigger actions."""
    log: list[str] = []

    async def place(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)
        log.append("placed")
        ctx.emit("order.paid", ctx.trigger_signal.key)

    async def ship(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)
        log.append("shipped")
        ctx.emit("order.shipped", ctx.trigger_signal.key)

    async def notify(signal: SignalEvent[Any]) -> None:
        await anyio.sleep(1)
        log.append(f"notified {signal.key}")
        signals.emit("audit.write", key=signal.key)

    async def audit(ctx: MoleculeContext) -> None:
        await anyio.sleep(1)
        log.append("audited")

    signals = sink()
    blueprints = [
        MoleculeBlueprint("place", "order.placed", [place]),
        MoleculeBlueprint("ship", "order.paid", [ship]),
        MoleculeBlueprint("audit", "audit.*", [audit]),
    ]
    async with MoleculeRunner(signals, blueprints) as runner:
        AtomTrigger(signals, "order.shipped", notify, runner=runner)
        signals.emit("order.placed", key="o-1")
    assert log == ["placed", "shipped", "notified o-1", "audited"]
    assert runner.completed_count == 3


async def test_a_molecule_cannot_retrigger_itself_by_default() -> None:
    """ctx.emit of a signal already in the causal chain is blocked (returns False), so no endless loop."""
    blocked: list[tuple[str, BlockReason]] = []
    results: list[bool] = []

    async def again(ctx: MoleculeContext) -> None:
        results.append(ctx.emit("loop.go", key="k"))

    signals = sink()
    constraints = SignalConstraints(on_blocked=lambda event, reason: blocked.append((event.signal, reason)))
    async with MoleculeRunner(
        signals, [MoleculeBlueprint("loop", "loop.*", [again])], signal_constraints=constraints
    ) as r:
        signals.emit("loop.go")
    assert results == [False]
    assert blocked == [("loop.go", BlockReason.CYCLE_DETECTED)]
    assert r.started_count == 1


async def test_a_listener_on_molecule_signals_does_not_loop() -> None:
    """A blueprint listening to molecule.* runs for the others' signals but its own never loop forever."""
    triggers: list[str] = []

    async def watch(ctx: MoleculeContext) -> None:
        triggers.append(ctx.trigger_signal.signal)

    async def work(ctx: MoleculeContext) -> None:
        pass

    signals = sink()
    blueprints = [MoleculeBlueprint("work", "job", [work]), MoleculeBlueprint("watch", "molecule.*", [watch])]
    with anyio.fail_after(60):
        async with MoleculeRunner(signals, blueprints) as runner:
            signals.emit("job")
    assert triggers.count("molecule.started") >= 1 and triggers.count("molecule.completed") >= 1
    assert runner.active_count == 0


async def test_without_constraints_a_deliberate_loop_runs_until_it_stops() -> None:
    """signal_constraints=None lets a molecule re-emit its own trigger; the loop ends when the step says so."""
    rounds: list[str | None] = []

    async def countdown(ctx: MoleculeContext) -> None:
        n = int(ctx.trigger_signal.key or "0")
        rounds.append(ctx.trigger_signal.key)
        if n > 0:
            assert ctx.emit("tick", key=str(n - 1))

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("c", "tick", [countdown])], signal_constraints=None):
        signals.emit("tick", key="12")
    assert rounds == [str(n) for n in range(12, -1, -1)]


# -- shutdown --------------------------------------------------------------------------------------


async def test_an_exception_in_the_block_cancels_runs_in_flight() -> None:
    """An error in the block cancels running molecules (counted, molecule.cancelled) and propagates as is."""
    finished: list[str] = []

    async def slow(ctx: MoleculeContext) -> None:
        await anyio.sleep(100)
        finished.append("slow")

    signals = sink()
    with pytest.raises(LookupError, match="boom"):
        async with MoleculeRunner(signals, [MoleculeBlueprint("slow", "go", [slow])]) as runner:
            signals.emit("go", key="a")
            signals.emit("go", key="b")
            await anyio.sleep(1)
            raise LookupError("boom")
    assert finished == []
    assert (runner.started_count, runner.cancelled_count, runner.active_count) == (2, 2, 0)
    assert sorted(e.key or "" for e in signals.sense("molecule.cancelled")) == ["a", "b"]
    signals.emit("go", key="after")
    assert runner.started_count == 2 and not runner.is_running


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline in the block cancels the molecules in flight; a runner is entered once."""
    made: list[MoleculeRunner] = []

    async def slow(ctx: MoleculeContext) -> None:
        await anyio.sleep(100)

    def make() -> MoleculeRunner:
        made.append(MoleculeRunner(sink(), [MoleculeBlueprint("slow", "go", [slow])], max_concurrency=2))
        return made[-1]

    async def use(runner: MoleculeRunner) -> None:
        for key in "abcd":
            runner.signals.emit("go", key=key)
        await anyio.sleep(1)

    await assert_lifecycle_faults(make, use)
    for runner in made[:2]:
        assert (runner.started_count, runner.cancelled_count, runner.active_count) == (2, 2, 0)
        assert not runner.is_running


async def test_signals_before_entering_and_after_leaving_start_nothing() -> None:
    """The runner listens only between entering and leaving its block."""
    keys: list[str | None] = []

    async def step(ctx: MoleculeContext) -> None:
        keys.append(ctx.trigger_signal.key)

    signals = sink()
    runner = MoleculeRunner(signals, [MoleculeBlueprint("m", "go", [step])])
    signals.emit("go", key="before")
    await runner.wait_idle()
    async with runner:
        assert runner.is_running
        signals.emit("go", key="during")
    signals.emit("go", key="after")
    assert keys == ["during"]
    with pytest.raises(RuntimeError, match="once"):
        async with runner:
            pass


@pytest.mark.real_time
async def test_signals_emitted_from_another_thread_start_molecules() -> None:
    """A signal emitted on a worker thread runs its molecule in the runner's event loop."""
    loop_thread = threading.get_ident()
    threads: list[int] = []

    async def step(ctx: MoleculeContext) -> None:
        threads.append(threading.get_ident())

    signals = SignalSink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("m", "go", [step])]) as runner:
        await anyio.to_thread.run_sync(lambda: signals.emit("go", key="from-thread"))
    assert threads == [loop_thread]
    assert runner.completed_count == 1


# -- arguments -------------------------------------------------------------------------------------


async def step_noop(ctx: MoleculeContext) -> None:
    pass


def test_bad_runner_arguments_raise_naming_the_argument() -> None:
    """Wrong sink, blueprints or options raise TypeError or ValueError naming the argument."""
    blueprint = MoleculeBlueprint("m", "go", [step_noop])
    with pytest.raises(TypeError, match="sink"):
        MoleculeRunner(None, [blueprint])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="blueprints"):
        MoleculeRunner(SignalSink(), [])
    with pytest.raises(TypeError, match="blueprints"):
        MoleculeRunner(SignalSink(), blueprint)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="blueprints"):
        MoleculeRunner(SignalSink(), [blueprint, "other"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_concurrency"):
        MoleculeRunner(SignalSink(), [blueprint], max_concurrency=0)
    with pytest.raises(TypeError, match="max_concurrency"):
        MoleculeRunner(SignalSink(), [blueprint], max_concurrency=True)
    with pytest.raises(ValueError, match="max_queued"):
        MoleculeRunner(SignalSink(), [blueprint], max_queued=0)
    with pytest.raises(TypeError, match="signal_constraints"):
        MoleculeRunner(SignalSink(), [blueprint], signal_constraints=10)  # type: ignore[arg-type]


async def test_ctx_emit_rejects_a_blank_signal() -> None:
    """ctx.emit with a blank or non-string signal raises, failing that molecule only."""
    failures: list[MoleculeFailure] = []

    async def bad(ctx: MoleculeContext) -> None:
        ctx.emit("")

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("m", "go", [bad])]) as runner:
        runner.molecule_failed.connect(failures.append)
        signals.emit("go")
    assert [type(f.error) for f in failures] == [ValueError]
    assert "signal" in str(failures[0].error)
