"""Orchestration helpers: signal quorums, contributor tracking and progress signals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    ContributorTracker,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    ProgressSignals,
    SignalConsensus,
    SignalEvent,
    SignalSink,
    current_operation,
)

# ------------------------------------------------------------------------------------------ quorum


async def test_quorum_reached_by_new_votes() -> None:
    """Three votes emitted while waiting reach a quorum of three (reference quorum test)."""
    sink = SignalSink()
    outcome = []

    async def wait() -> None:
        outcome.append(await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, 2.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        for voter in "abc":
            sink.emit(f"vote.{voter}")
    result = outcome[0]
    assert result.reached and not result.timed_out
    assert result.count == 3
    assert [e.signal for e in result.signals] == ["vote.a", "vote.b", "vote.c"]
    assert result.cancel_signal is None


async def test_quorum_counts_live_signals_and_new_ones() -> None:
    """Votes already live in the window count together with votes emitted while waiting."""
    sink = SignalSink()
    sink.emit("vote.a")
    sink.emit("vote.b")
    sink.emit("other.c")
    outcome = []

    async def wait() -> None:
        outcome.append(await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, timedelta(seconds=2)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        assert not outcome
        sink.emit("vote.c")
    assert outcome[0].reached and outcome[0].count == 3


async def test_quorum_already_live_returns_at_once() -> None:
    """A quorum already present in the window returns without waiting, each emission counted once."""
    sink = SignalSink()
    sink.emit("vote.a")
    start = anyio.current_time()
    result = await SignalConsensus.wait_for_quorum(sink, "vote.*", 1, 10.0)
    assert result.reached and result.count == 1
    assert anyio.current_time() == start


async def test_quorum_ignores_live_signals_when_asked() -> None:
    """With include_live=False only signals emitted while waiting count."""
    sink = SignalSink()
    sink.emit("vote.a")
    result = await SignalConsensus.wait_for_quorum(sink, "vote.*", 1, 1.0, include_live=False)
    assert not result.reached and result.timed_out and result.count == 0


async def test_quorum_times_out_with_partial_count() -> None:
    """Too few votes before the timeout gives timed_out with the count seen, after exactly the timeout."""
    sink = SignalSink()
    sink.emit("vote.a")
    start = anyio.current_time()
    result = await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, 2.0)
    assert (result.reached, result.timed_out, result.count) == (False, True, 1)
    assert anyio.current_time() - start == pytest.approx(2.0)


async def test_quorum_distinct_by_key_and_by_signal() -> None:
    """distinct_by="key" counts voters (keyless signals ignored); distinct_by="signal" counts names."""
    sink = SignalSink()
    sink.emit("vote.yes", key="alice")
    sink.emit("vote.no", key="alice")
    sink.emit("vote.yes", key="bob")
    sink.emit("vote.yes")
    by_key = await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, 1.0, distinct_by="key")
    assert by_key.timed_out and by_key.count == 2
    by_signal = await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, 1.0, distinct_by="signal")
    assert by_signal.timed_out and by_signal.count == 2
    by_event = await SignalConsensus.wait_for_quorum(sink, "vote.*", 4, 1.0)
    assert by_event.reached and by_event.count == 4


async def test_quorum_cancel_signal_ends_the_wait() -> None:
    """A cancel signal ends the wait unsuccessfully, without a timeout."""
    sink = SignalSink()
    outcome = []

    async def wait() -> None:
        outcome.append(await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, 10.0, cancel_on="veto.*"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        sink.emit("vote.a")
        sink.emit("veto.admin", key="root")
    result = outcome[0]
    assert (result.reached, result.timed_out, result.count) == (False, False, 1)
    assert result.cancel_signal is not None and result.cancel_signal.signal == "veto.admin"
    assert result.cancel_signal.key == "root"


async def test_quorum_sees_signals_of_operations_on_the_sink() -> None:
    """Signals emitted by operations of a coordinator sharing the sink count towards the quorum."""
    sink = SignalSink()

    async def body(item: int) -> None:
        current_operation().emit(f"vote.{item}")

    outcome = []

    async def wait() -> None:
        outcome.append(await SignalConsensus.wait_for_quorum(sink, "vote.*", 3, 5.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        async with EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink)) as c:
            for i in range(3):
                await c.enqueue(i)
    assert outcome[0].reached and outcome[0].count == 3


async def test_quorum_rejects_bad_arguments() -> None:
    """Bad arguments raise ValueError naming the argument."""
    sink = SignalSink()
    with pytest.raises(ValueError, match="required"):
        await SignalConsensus.wait_for_quorum(sink, "vote.*", 0, 1.0)
    with pytest.raises(ValueError, match="pattern"):
        await SignalConsensus.wait_for_quorum(sink, " , ", 1, 1.0)
    with pytest.raises(ValueError, match="timeout"):
        await SignalConsensus.wait_for_quorum(sink, "vote.*", 1, -1.0)
    with pytest.raises(ValueError, match="distinct_by"):
        await SignalConsensus.wait_for_quorum(sink, "vote.*", 1, 1.0, distinct_by="voter")  # type: ignore[arg-type]


@pytest.mark.real_time
async def test_quorum_counts_votes_from_other_threads() -> None:
    """Votes emitted on worker threads reach the waiting task on its loop."""
    sink = SignalSink()
    outcome = []

    async def wait() -> None:
        outcome.append(await SignalConsensus.wait_for_quorum(sink, "vote.*", 4, 10.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)

        def vote(name: str) -> None:
            sink.emit(name)

        for voter in "abcd":
            tg.start_soon(anyio.to_thread.run_sync, vote, f"vote.{voter}")
    assert outcome[0].reached and outcome[0].count == 4


# ------------------------------------------------------------------------------------ contributors


def test_contributors_count_completions() -> None:
    """Completing two of three expected contributors, then the third, is reflected in the counts."""
    tracker = ContributorTracker[float](["UA", "IP", "Header"])
    tracker.complete("UA", 0.5)
    tracker.complete("IP", 0.3)
    assert tracker.completed_count == 2
    assert tracker.expected_count == 3
    assert tracker.pending == 1
    assert tracker.pending_names == ("Header",)
    tracker.complete("Header", 0.7)
    assert tracker.get_completed_results() == {"UA": 0.5, "IP": 0.3, "Header": 0.7}
    assert tracker.quorum_reached


def test_contributors_try_get_result() -> None:
    """try_get_result returns (True, result) for a completed contributor and (False, None) otherwise."""
    tracker = ContributorTracker[float](["UA", "IP"])
    tracker.complete("UA", 0.5)
    assert tracker.try_get_result("UA") == (True, 0.5)
    assert tracker.try_get_result("IP") == (False, None)


async def test_contributors_quorum_of_three_out_of_five() -> None:
    """A quorum of 3 out of 5 with 3 completed is reached at once, with 2 pending."""
    tracker = ContributorTracker[int](["a", "b", "c", "d", "e"], quorum=3)
    for name in "abc":
        tracker.complete(name, 1)
    start = anyio.current_time()
    result = await tracker.wait_for_quorum(timeout=5.0)
    assert result.reached and not result.timed_out
    assert (result.completed_count, result.pending) == (3, 2)
    assert anyio.current_time() == start


async def test_contributors_quorum_times_out() -> None:
    """A quorum of 3 out of 3 with one completion times out after the timeout."""
    tracker = ContributorTracker[int](["a", "b", "c"])
    tracker.complete("a", 1)
    start = anyio.current_time()
    result = await tracker.wait_for_quorum(3, 0.1)
    assert (result.reached, result.timed_out, result.completed_count) == (False, True, 1)
    assert anyio.current_time() - start == pytest.approx(0.1)


async def test_contributors_quorum_wait_is_reusable() -> None:
    """A wait after a timed-out wait sees the current state, not a stale result (fix of the single-use future)."""
    tracker = ContributorTracker[int](["a", "b", "c"], quorum=2)
    tracker.complete("a", 1)
    assert (await tracker.wait_for_quorum(timeout=1.0)).timed_out
    tracker.complete("b", 2)
    second = await tracker.wait_for_quorum(timeout=1.0)
    assert second.reached and not second.timed_out and second.completed_count == 2
    assert dict(second.results) == {"a": 1, "b": 2}


async def test_contributors_wake_every_waiter() -> None:
    """Several tasks waiting for the quorum all return when later completions reach it."""
    tracker = ContributorTracker[str](4, quorum=2)
    outcomes = []

    async def wait() -> None:
        outcomes.append(await tracker.wait_for_quorum(timeout=60.0))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(wait)
        await anyio.sleep(1)
        tracker.complete("first", "x")
        await anyio.sleep(1)
        assert not outcomes
        tracker.complete("second", "y")
    assert len(outcomes) == 3
    assert all(o.reached and not o.timed_out for o in outcomes)


async def test_contributors_unreachable_quorum_returns_early() -> None:
    """When failures make the quorum unreachable the wait returns at once, neither reached nor timed out."""
    tracker = ContributorTracker[int](["a", "b", "c"])
    outcomes = []

    async def wait() -> None:
        outcomes.append(await tracker.wait_for_quorum(3, 60.0))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(1)
        tracker.complete("a", 1)
        tracker.fail("b", RuntimeError("down"))
    result = outcomes[0]
    assert (result.reached, result.timed_out, result.failed_count, result.pending) == (False, False, 1, 1)
    assert isinstance(result.errors["b"], RuntimeError)
    assert anyio.current_time() - start == pytest.approx(1.0)


async def test_contributors_wait_all() -> None:
    """wait_all returns once everyone reported; reached only when none failed; it times out otherwise."""
    tracker = ContributorTracker[int](["a", "b"])
    tracker.complete("a", 1)
    assert (await tracker.wait_all(0.5)).timed_out
    tracker.fail("b")
    result = await tracker.wait_all(0.5)
    assert not result.timed_out and not result.reached
    assert (result.completed_count, result.failed_count, result.pending) == (1, 1, 0)
    all_good = ContributorTracker[int](["a"])
    all_good.complete("a", 1)
    assert (await all_good.wait_all()).reached
    with pytest.raises(ValueError, match="expected"):
        await ContributorTracker[int]().wait_all(1.0)


def test_contributors_report_once_and_reject_strangers() -> None:
    """The first report of a name wins, repeats are ignored, and unknown names raise ValueError."""
    tracker = ContributorTracker[int](["a", "b"])
    assert tracker.complete("a", 1)
    assert not tracker.complete("a", 2)
    assert not tracker.fail("a")
    assert tracker.try_get_result("a") == (True, 1)
    assert tracker.fail("b", None)
    assert tracker.get_errors() == {"b": None}
    with pytest.raises(ValueError, match="'z'"):
        tracker.complete("z", 3)
    with pytest.raises(ValueError, match="'z'"):
        tracker.fail("z")


def test_contributors_by_count_and_open_set() -> None:
    """A count of expected contributors accepts any names up to it; an open set accepts any name."""
    counted = ContributorTracker[int](2)
    counted.complete("x", 1)
    counted.complete("y", 2)
    with pytest.raises(ValueError, match="exceed"):
        counted.complete("z", 3)
    open_set = ContributorTracker[int]()
    for i in range(5):
        open_set.complete(f"n{i}", i)
    assert open_set.completed_count == 5 and open_set.expected_count is None and open_set.pending == 0


def test_contributors_emit_signals() -> None:
    """complete and fail emit contributor.completed:{name} and contributor.failed:{name} keyed by the name."""
    sink = SignalSink()
    tracker = ContributorTracker[int](["UA", "IP"], sink=sink)
    tracker.complete("UA", 1)
    tracker.fail("IP", ValueError("x"))
    assert [(e.signal, e.key) for e in sink.sense("contributor.*")] == [
        ("contributor.completed:UA", "UA"),
        ("contributor.failed:IP", "IP"),
    ]


async def test_contributors_reject_bad_arguments() -> None:
    """Bad expected, quorum and required values raise ValueError naming them."""
    with pytest.raises(ValueError, match="quorum"):
        ContributorTracker[int](["a"], quorum=2)
    with pytest.raises(ValueError, match="quorum"):
        ContributorTracker[int](["a"], quorum=0)
    with pytest.raises(ValueError, match="distinct"):
        ContributorTracker[int](["a", "a"])
    with pytest.raises(ValueError, match="expected"):
        ContributorTracker[int](0)
    with pytest.raises(TypeError, match="single str"):
        ContributorTracker[int]("abc")
    tracker = ContributorTracker[int](["a", "b"])
    with pytest.raises(ValueError, match="required"):
        await tracker.wait_for_quorum(3)
    with pytest.raises(ValueError, match="required"):
        await ContributorTracker[int]().wait_for_quorum()


@pytest.mark.real_time
async def test_contributors_complete_from_other_threads() -> None:
    """Completions reported on worker threads wake a waiter on the loop."""
    tracker = ContributorTracker[int](["a", "b", "c"])
    outcomes = []

    async def wait() -> None:
        outcomes.append(await tracker.wait_for_quorum(3, 10.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        for i, name in enumerate("abc"):
            tg.start_soon(anyio.to_thread.run_sync, tracker.complete, name, i)
    assert outcomes[0].reached and dict(outcomes[0].results) == {"a": 0, "b": 1, "c": 2}


# ---------------------------------------------------------------------------------------- progress


def test_progress_emits_every_step_and_at_the_end() -> None:
    """For i = 1..5 of 5 with step 2, progress is emitted at 2, 4 and 5 (reference progress test)."""
    sink = SignalSink()
    seen: list[SignalEvent[Any]] = []
    sink.subscribe(seen.append)
    emitted = [ProgressSignals.emit(sink, "work", i, 5, 2) for i in range(1, 6)]
    assert emitted == [False, True, False, True, True]
    assert [e.signal for e in sink.sense("progress:*")] == [
        "progress:work:2/5",
        "progress:work:4/5",
        "progress:work:5/5",
    ]
    assert len(seen) == 3 and {e.key for e in seen} == {"work"}


def test_progress_keeps_no_state_between_calls() -> None:
    """The same calls give the same signals again, on any sink: there is no hidden per-name counter."""
    for _ in range(2):
        sink = SignalSink()
        for i in range(1, 6):
            ProgressSignals.emit(sink, "WORK", i, 5, 2)
        assert sink.count("progress:*") == 3
    sink = SignalSink()
    assert ProgressSignals.emit(sink, "batch", 0, 0)
    assert not ProgressSignals.emit(sink, "batch", 0, 10, 3)
    assert ProgressSignals.emit(sink, "batch", 3, 10, 3)


def test_progress_rejects_bad_arguments() -> None:
    """Bad arguments raise ValueError naming the argument."""
    sink = SignalSink()
    with pytest.raises(ValueError, match="step"):
        ProgressSignals.emit(sink, "w", 1, 5, 0)
    with pytest.raises(ValueError, match="current"):
        ProgressSignals.emit(sink, "w", -1, 5)
    with pytest.raises(ValueError, match="total"):
        ProgressSignals.emit(sink, "w", 1, -5)
    with pytest.raises(ValueError, match="name"):
        ProgressSignals.emit(sink, " ", 1, 5)
