"""AtomTrigger: an action per matching signal, on its own tasks or attached to a MoleculeRunner."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from ephemeral.atoms.molecules import AtomTrigger, MoleculeBlueprint, MoleculeContext, MoleculeRunner
from ephemeral.core import CoordinatorClosedError, SignalEvent, SignalSink
from ephemeral.core.testing import assert_lifecycle_faults


def sink() -> SignalSink:
    return SignalSink(max_age=3600.0, clock=anyio.current_time)


async def test_action_runs_when_signal_matches() -> None:
    """Reference 38: order.ready with key order-2 runs the order.* action exactly once within 50 ms."""
    calls: list[SignalEvent[Any]] = []

    async def action(signal: SignalEvent[Any]) -> None:
        calls.append(signal)

    signals = sink()
    async with AtomTrigger(signals, "order.*", action) as trigger:
        signals.emit("order.ready", key="order-2")
        await anyio.sleep(0.05)
        assert [(c.signal, c.key) for c in calls] == [("order.ready", "order-2")]
        assert trigger.completed_count == 1


async def test_only_matching_signals_run_the_action() -> None:
    """Signals whose names do not match the glob are ignored; commas in the pattern are literal."""
    seen: list[str] = []

    async def action(signal: SignalEvent[Any]) -> None:
        seen.append(signal.signal)

    signals = sink()
    async with AtomTrigger(signals, "order.*", action), AtomTrigger(signals, "a,b", action):
        for name in ("order.placed", "order", "payment.done", "order.x.y", "a", "a,b"):
            signals.emit(name)
    assert sorted(seen) == ["a,b", "order.placed", "order.x.y"]


async def test_leaving_the_block_waits_for_triggered_actions() -> None:
    """Exit waits until every action already triggered has finished."""
    done: list[str | None] = []

    async def slow(signal: SignalEvent[Any]) -> None:
        await anyio.sleep(30)
        done.append(signal.key)

    signals = sink()
    start = anyio.current_time()
    async with AtomTrigger(signals, "go", slow, max_concurrency=2):
        for key in "abc":
            signals.emit("go", key=key)
    assert sorted(k or "" for k in done) == ["a", "b", "c"]
    assert anyio.current_time() - start == pytest.approx(60)  # 2 at once: 30 s, then the third


async def test_a_failing_action_is_counted_and_later_signals_still_run() -> None:
    """An action that raises is logged and counted; the trigger keeps handling signals."""
    ok: list[str | None] = []

    async def action(signal: SignalEvent[Any]) -> None:
        if signal.key == "bad":
            raise RuntimeError("action bug")
        ok.append(signal.key)

    signals = sink()
    async with AtomTrigger(signals, "job", action, max_concurrency=1) as trigger:
        for key in ("one", "bad", "two"):
            signals.emit("job", key=key)
    assert ok == ["one", "two"]
    assert (trigger.completed_count, trigger.failed_count) == (2, 1)


async def test_a_plain_function_action_works() -> None:
    """A synchronous action is called as well."""
    seen: list[str] = []
    signals = sink()
    async with AtomTrigger(signals, "x", lambda signal: seen.append(signal.signal)) as trigger:
        signals.emit("x")
        await trigger.wait_idle()
        assert seen == ["x"]


async def test_close_stops_an_own_trigger() -> None:
    """After close() the trigger ignores new signals and its block exits at once."""
    seen: list[str | None] = []

    async def action(signal: SignalEvent[Any]) -> None:
        seen.append(signal.key)

    signals = sink()
    async with AtomTrigger(signals, "go", action) as trigger:
        signals.emit("go", key="first")
        await trigger.wait_idle()
        trigger.close()
        trigger.close()
        assert trigger.closed
        signals.emit("go", key="second")
    assert seen == ["first"]
    assert trigger.dropped_count == 0  # not listening any more, so nothing was refused


async def test_not_entered_own_trigger_hears_nothing() -> None:
    """Without `async with` an own trigger is not listening; sync `with` is refused with a clear error."""
    seen: list[str] = []
    signals = sink()
    trigger = AtomTrigger(signals, "go", lambda signal: seen.append(signal.signal))
    signals.emit("go")
    with pytest.raises(RuntimeError, match="async with"), trigger:
        pass
    assert seen == []


async def test_attached_to_a_runner_it_lives_until_closed() -> None:
    """With runner=, the trigger is active from construction until its `with` block ends (the seed's using var)."""
    seen: list[str | None] = []

    async def action(signal: SignalEvent[Any]) -> None:
        await anyio.sleep(1)
        seen.append(signal.key)

    async def step(ctx: MoleculeContext) -> None:
        ctx.emit("order.payment.complete", ctx.trigger_signal.key)

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("order", "order.placed", [step])]) as runner:
        with AtomTrigger(signals, "order.payment.complete", action, runner=runner) as trigger:
            signals.emit("order.placed", key="order-42")
            await trigger.wait_idle()
            assert seen == ["order-42"]
        assert trigger.closed
        signals.emit("order.placed", key="order-43")
    assert seen == ["order-42"]
    assert trigger.completed_count == 1


async def test_closing_an_attached_trigger_lets_started_actions_finish() -> None:
    """close() on an attached trigger stops new actions; the runner still waits for the one in flight."""
    seen: list[str | None] = []

    async def action(signal: SignalEvent[Any]) -> None:
        await anyio.sleep(5)
        seen.append(signal.key)

    signals = sink()
    async with MoleculeRunner(signals, [MoleculeBlueprint("m", "unused", [lambda ctx: None])]) as runner:
        trigger = AtomTrigger(signals, "go", action, runner=runner)
        signals.emit("go", key="in-flight")
        await anyio.sleep(1)
        trigger.close()
        signals.emit("go", key="ignored")
    assert seen == ["in-flight"]


async def test_attached_triggers_need_a_running_runner_on_the_same_sink() -> None:
    """runner= must be a running MoleculeRunner on the trigger's sink; own-dispatcher options are refused."""
    signals = sink()

    async def action(signal: SignalEvent[Any]) -> None:
        pass

    runner = MoleculeRunner(signals, [MoleculeBlueprint("m", "x", [lambda ctx: None])])
    with pytest.raises(RuntimeError, match="not running"):
        AtomTrigger(signals, "go", action, runner=runner)
    async with runner:
        with pytest.raises(ValueError, match="sink"):
            AtomTrigger(sink(), "go", action, runner=runner)
        with pytest.raises(ValueError, match="max_concurrency"):
            AtomTrigger(signals, "go", action, runner=runner, max_concurrency=2)
        with pytest.raises(TypeError, match="runner"):
            AtomTrigger(signals, "go", action, runner="runner")  # type: ignore[arg-type]
    with pytest.raises(CoordinatorClosedError, match="MoleculeRunner is closed"):
        AtomTrigger(signals, "go", action, runner=runner)


def test_bad_trigger_arguments_raise_naming_the_argument() -> None:
    """A missing sink, a blank pattern, a non-callable action or a bad bound raise errors naming them."""

    async def action(signal: SignalEvent[Any]) -> None:
        pass

    with pytest.raises(TypeError, match="sink"):
        AtomTrigger(None, "go", action)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        AtomTrigger(SignalSink(), "  ", action)
    with pytest.raises(TypeError, match="pattern"):
        AtomTrigger(SignalSink(), None, action)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="action"):
        AtomTrigger(SignalSink(), "go", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        AtomTrigger(SignalSink(), "go", action, max_concurrency=0)
    with pytest.raises(ValueError, match="max_queued"):
        AtomTrigger(SignalSink(), "go", action, max_queued=0)


async def test_an_own_trigger_is_entered_once() -> None:
    """Entering the same trigger twice raises RuntimeError."""
    trigger = AtomTrigger(sink(), "go", lambda signal: None)
    async with trigger:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with trigger:
            pass


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline in the block cancels the actions in flight; a trigger is entered once;
    close() again is a no-op (attached to a runner, the actions are the runner's: it waits for them)."""
    made: list[AtomTrigger] = []
    finished: list[str | None] = []

    async def action(signal: SignalEvent[Any]) -> None:
        await anyio.sleep(100)
        finished.append(signal.key)

    signals = sink()

    def make() -> AtomTrigger:
        made.append(AtomTrigger(signals, "go", action))
        return made[-1]

    async def use(trigger: AtomTrigger) -> None:
        for key in "ab":
            signals.emit("go", key=key)
        await anyio.sleep(1)

    await assert_lifecycle_faults(make, use)
    assert finished == []
    assert all(trigger.closed for trigger in made)

    async with MoleculeRunner(signals, [MoleculeBlueprint("noop", "never", [lambda ctx: None])]) as runner:
        await assert_lifecycle_faults(lambda: AtomTrigger(signals, "go", action, runner=runner))
