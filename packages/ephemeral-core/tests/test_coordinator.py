"""The work coordinator: intake, bounded concurrency, the window, counters and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralOperationSnapshot,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    OperationStatus,
    SignalSink,
    current_operation,
    ephemeral_for_each,
)
from ephemeral.core.testing import ConcurrencyProbe, Gate, Recorder


def accounted(c: EphemeralWorkCoordinator[Any]) -> int:
    return c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled


async def test_processes_every_item() -> None:
    """Every enqueued item runs once and the counters add up after leaving the block."""
    seen: Recorder[int] = Recorder(delay=0.01)

    async with EphemeralWorkCoordinator(seen, EphemeralOptions(max_concurrency=2)) as c:
        for i in (1, 2, 3):
            await c.enqueue(i)
    assert sorted(seen) == [1, 2, 3]
    assert c.total_enqueued == 3 == c.total_completed
    assert c.is_drained and c.pending_count == 0 and c.active_count == 0


async def test_concurrency_never_exceeds_the_limit() -> None:
    """At most max_concurrency bodies run at once, and the limit is actually reached."""
    probe = ConcurrencyProbe()

    async def body(item: int) -> None:
        with probe:
            await anyio.sleep(0.05)

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=3)) as c:
        for i in range(20):
            await c.enqueue(i)
    assert probe.peak == 3
    assert c.total_completed == 20


async def test_running_operations_are_visible_in_the_window() -> None:
    """Operations appear in get_snapshot()/get_running() while their body runs."""
    release = Gate()

    async with EphemeralWorkCoordinator(release, EphemeralOptions(max_concurrency=2)) as c:
        ids = [await c.enqueue_with_id(i) for i in (1, 2, 3)]
        await anyio.sleep(0.05)
        running = c.get_running()
        assert [s.operation_id for s in running] == ids[:2]
        assert all(s.status is OperationStatus.RUNNING and s.completed is None for s in running)
        assert c.pending_count == 1 and c.active_count == 2
        release.set()
    assert [s.operation_id for s in c.get_completed()] == ids


async def test_failures_are_recorded_not_raised() -> None:
    """A raising body is counted as failed, keeps its exception, and does not stop other items."""

    async def body(item: int) -> None:
        if item % 2:
            raise ValueError(f"bad {item}")

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=2)) as c:
        for i in range(6):
            await c.enqueue(i)
    assert (c.total_completed, c.total_failed) == (3, 3)
    failed = c.get_failed()
    assert len(failed) == 3
    assert all(isinstance(s.error, ValueError) and s.is_faulted for s in failed)
    assert all(s.status is OperationStatus.FAILED for s in failed)


async def test_dynamic_concurrency() -> None:
    """set_max_concurrency raises the number of bodies running at once, and lowers it."""
    probe = ConcurrencyProbe()
    gate = anyio.Event()

    async def body(item: int) -> None:
        with probe:
            await gate.wait()

    options = EphemeralOptions(max_concurrency=1, enable_dynamic_concurrency=True)
    async with EphemeralWorkCoordinator(body, options) as c:
        for i in range(10):
            await c.enqueue(i)
        await anyio.sleep(0.01)
        assert c.current_max_concurrency == 1 and probe.running == 1
        c.set_max_concurrency(4)
        await anyio.sleep(0.01)
        assert c.current_max_concurrency == 4 and probe.running == 4
        c.set_max_concurrency(2)
        gate.set()
        await anyio.lowlevel.checkpoint()
    assert probe.peak == 4 and c.total_completed == 10


async def test_dynamic_concurrency_lower_limit_holds_under_load() -> None:
    """After lowering the limit, no more than the new limit run once the running ones finish."""
    running = 0
    after: list[int] = []
    lowered = False

    async def body(item: int) -> None:
        nonlocal running
        running += 1
        if lowered:
            after.append(running)
        await anyio.sleep(1)
        running -= 1

    options = EphemeralOptions(max_concurrency=8, enable_dynamic_concurrency=True)
    async with EphemeralWorkCoordinator(body, options) as c:
        for i in range(40):
            await c.enqueue(i)
        await anyio.sleep(0.5)
        c.set_max_concurrency(2)
        lowered = True
    assert after and max(after) <= 2 + 0  # the first starts after the 8 running ones left
    assert c.total_completed == 40


def test_set_max_concurrency_needs_dynamic_option() -> None:
    """set_max_concurrency refuses when dynamic concurrency is off, and bad values are rejected."""

    async def body(item: int) -> None:
        pass

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1))
    with pytest.raises(RuntimeError, match="enable_dynamic_concurrency"):
        c.set_max_concurrency(2)
    d = EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1, enable_dynamic_concurrency=True))
    with pytest.raises(ValueError, match="max concurrency"):
        d.set_max_concurrency(0)


async def test_pause_and_resume() -> None:
    """A paused coordinator starts nothing new; resume() carries on; both emit coordinator signals."""
    started: list[int] = []
    sink = SignalSink()

    async def body(item: int) -> None:
        started.append(item)
        await anyio.sleep(1)

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1, signals=sink)) as c:
        await c.enqueue(1)
        await c.enqueue(2)
        await anyio.sleep(0.1)
        c.pause()
        assert c.is_paused
        await anyio.sleep(5)
        assert started == [1]
        assert c.pending_count == 1
        c.resume()
        assert not c.is_paused
    assert started == [1, 2]
    assert [e.signal for e in sink.sense("coordinator.*")] == ["coordinator.paused", "coordinator.resumed"]


async def test_enqueue_waits_when_full_and_try_enqueue_refuses() -> None:
    """Intake is bounded by max_tracked_operations: enqueue waits for room, try_enqueue returns False."""
    gate = Gate()

    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=3)
    async with EphemeralWorkCoordinator(gate, options) as c:
        for i in range(4):  # one runs, three wait
            await c.enqueue(i)
        await anyio.sleep(0.01)
        assert c.pending_count == 3
        assert c.try_enqueue(99) is False
        accepted = anyio.Event()

        async def producer() -> None:
            await c.enqueue(4)
            accepted.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(producer)
            await anyio.sleep(1)
            assert not accepted.is_set()
            gate.set()
            await accepted.wait()
    assert c.total_enqueued == 5 == c.total_completed


async def test_enqueue_after_complete_raises_and_complete_is_idempotent() -> None:
    """Once completed, enqueue raises CoordinatorClosedError and try_enqueue returns False."""

    async def body(item: int) -> None:
        pass

    async with EphemeralWorkCoordinator(body) as c:
        await c.enqueue(1)
        c.complete()
        c.complete()
        assert c.is_completed
        with pytest.raises(CoordinatorClosedError):
            await c.enqueue(2)
        assert c.try_enqueue(3) is False
        await c.drain()
        await c.drain()
    assert c.total_enqueued == 1 == c.total_completed


async def test_enqueue_before_entering_is_an_error() -> None:
    """Using a coordinator outside `async with` says how to use it."""

    async def body(item: int) -> None:
        pass

    c = EphemeralWorkCoordinator(body)
    with pytest.raises(RuntimeError, match="async with"):
        await c.enqueue(1)
    with pytest.raises(RuntimeError, match="async with"):
        c.try_enqueue(1)


async def test_enqueue_blocked_on_a_full_queue_fails_when_completed() -> None:
    """A producer waiting for room is told the coordinator closed; its item was not accepted."""
    gate = Gate()

    outcome: list[str] = []
    async with EphemeralWorkCoordinator(gate, EphemeralOptions(max_concurrency=1, max_tracked_operations=1)) as c:
        await c.enqueue(1)
        await c.enqueue(2)

        async def producer() -> None:
            try:
                await c.enqueue(3)
            except CoordinatorClosedError:
                outcome.append("closed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(producer)
            await anyio.sleep(0.1)
            c.complete()
        gate.set()
    assert outcome == ["closed"]
    assert c.total_enqueued == 2 == c.total_completed


async def test_cancel_accounts_for_every_item() -> None:
    """cancel() interrupts running bodies and drops waiting items, each counted as cancelled."""
    interrupted: list[int] = []

    async def body(item: int) -> None:
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            interrupted.append(item)
            raise

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=2)) as c:
        for i in range(5):
            await c.enqueue(i)
        await anyio.sleep(1)
        c.cancel()
        c.cancel()
        await c.drain()
    assert sorted(interrupted) == [0, 1]
    assert c.total_cancelled == 5 and c.total_enqueued == 5 == accounted(c)
    statuses = [s.status for s in c.get_snapshot()]
    assert statuses == [OperationStatus.CANCELLED] * 5
    assert c.signals.detect("coordinator.cancelled")


async def test_exception_in_block_cancels_and_propagates() -> None:
    """An exception inside `async with` cancels the coordinator (counted) and propagates unchanged."""

    async def body(item: int) -> None:
        await anyio.sleep(10)

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1))
    with pytest.raises(KeyError):
        async with c:
            await c.enqueue(1)
            await c.enqueue(2)
            await anyio.sleep(1)
            raise KeyError("boom")
    assert c.total_cancelled == 2 == c.total_enqueued


async def test_outer_cancellation_cancels_the_work() -> None:
    """A cancelled enclosing scope cancels the coordinator; nothing is silently lost."""

    async def body(item: int) -> None:
        await anyio.sleep(10)

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1))
    with anyio.move_on_after(5):
        async with c:
            for i in range(3):
                await c.enqueue(i)
    assert c.total_cancelled == 3 == accounted(c)


async def test_window_is_bounded_and_finalizes_evicted_operations() -> None:
    """Finished operations beyond max_tracked_operations leave the window, oldest first, each finalised once."""
    finalized: list[int] = []

    async def body(item: int) -> None:
        current_operation().emit(f"item.{item}")

    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=2)
    c = EphemeralWorkCoordinator(body, options)
    c.operation_finalized.connect(lambda s: finalized.append(s.operation_id))
    async with c:
        ids = [await c.enqueue_with_id(i) for i in range(5)]
        await anyio.sleep(0.1)
        assert [s.operation_id for s in c.get_snapshot()] == ids[-2:]
        assert finalized == ids[:3]
        assert {e.operation_id for e in c.get_signals()} == set(ids[-2:])
    # leaving the block finalises what is still in the window (last words on shutdown)
    assert finalized == ids
    assert [s.operation_id for s in c.get_snapshot()] == ids[-2:]


async def test_first_operation_finalised_when_window_overflows() -> None:
    """With a window of one, the first operation is finalised when the second enters (reference test 6)."""
    finalized: list[EphemeralOperationSnapshot[Any]] = []

    async def body(item: int) -> None:
        pass

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_tracked_operations=1))
    c.operation_finalized.connect(finalized.append)
    async with c:
        first = await c.enqueue_with_id(1)
        await c.enqueue(2)
        await anyio.sleep(0.1)
        assert [s.operation_id for s in finalized] == [first]


async def test_lifetime_ages_out_idle_windows() -> None:
    """Finished operations leave after max_operation_lifetime even when nothing else happens."""
    finalized: list[int] = []

    async def body(item: int) -> None:
        pass

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_operation_lifetime=timedelta(seconds=30)))
    c.operation_finalized.connect(lambda s: finalized.append(s.operation_id))
    async with c:
        first = await c.enqueue_with_id(1)
        await anyio.sleep(20)
        second = await c.enqueue_with_id(2)
        await anyio.sleep(15)  # first is 35 s old, second 15 s
        assert finalized == [first]
        assert [s.operation_id for s in c.get_snapshot()] == [second]
        await anyio.sleep(3600)
        assert finalized == [first, second]
        assert c.get_snapshot() == []


async def test_pin_unpin_evict_and_try_kill() -> None:
    """Pinned operations survive trimming; unpin lets them go; evict and try_kill remove and finalise."""
    finalized: list[int] = []

    async def body(item: int) -> None:
        pass

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1, max_tracked_operations=2))
    c.operation_finalized.connect(lambda s: finalized.append(s.operation_id))
    async with c:
        first = await c.enqueue_with_id(0)
        await anyio.sleep(0.01)
        assert c.pin(first)
        for i in range(1, 5):
            await c.enqueue(i)
        await anyio.sleep(0.01)
        snapshot = c.get_snapshot()
        assert snapshot[0].operation_id == first and snapshot[0].is_pinned
        assert first not in finalized
        assert c.unpin(first) and not c.unpin(first)
        assert first in finalized  # it was the oldest, so it left at once
        # The pin counted toward the window (2), so one finished operation stays; add one more.
        await c.enqueue(5)
        await anyio.sleep(0.01)
        ids = [s.operation_id for s in c.get_snapshot()]
        assert c.evict(ids[0]) and not c.evict(ids[0])
        assert c.try_kill(ids[1])
        assert not c.try_kill(0) and not c.try_kill(-5)
        assert c.get_snapshot() == []
        assert not c.pin(123456789)
    assert finalized.count(ids[0]) == 1


async def test_failing_finalized_handler_and_subscriber_never_hang_drain() -> None:
    """Handlers and subscribers that raise are isolated: work carries on and drain returns."""
    sink = SignalSink()
    sink.subscribe(lambda event: 1 / 0)
    calls: list[int] = []

    def broken(snapshot: EphemeralOperationSnapshot[Any]) -> None:
        calls.append(snapshot.operation_id)
        raise RuntimeError("handler bug")

    async def body(item: int) -> None:
        current_operation().emit("tick")

    c = EphemeralWorkCoordinator(body, EphemeralOptions(max_tracked_operations=1, signals=sink))
    c.operation_finalized.connect(broken)
    async with c:
        for i in range(10):
            await c.enqueue(i)
    assert c.total_completed == 10
    assert len(calls) == 10
    assert sink.subscriber_errors >= 10


async def test_operation_signals_and_queries() -> None:
    """Signals emitted by bodies are queryable on the coordinator and through the shared sink, once each."""
    sink = SignalSink()

    async def body(item: str) -> None:
        operation = current_operation()
        operation.emit(f"order.{item}")
        if item == "b":
            operation.emit("error.db")

    async with EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink, max_concurrency=1)) as c:
        for item in "abc":
            await c.enqueue(item)
        await anyio.sleep(0.01)
        assert c.has_signal("error.db") and not c.has_signal("error")
        assert c.has_signal_matching("error.*")
        assert c.count_signals() == 4
        assert c.count_signals("order.a") == 1
        assert c.count_signals_matching("order.*") == 3
        assert [e.signal for e in c.get_signals_by_pattern("order.*")] == ["order.a", "order.b", "order.c"]
        assert len(c.get_signals_by_name("error.db")) == 1
        assert [e.signal for e in sink.sense("order.*")] == ["order.a", "order.b", "order.c"]
        assert sink.count("error.*") == 1
        assert sink.coordinator_count == 1
        start = c.get_signals()[0].timestamp
        assert len(c.get_signals_since(start)) == 4
        assert len(c.get_signals_by_time_range(start, start)) >= 1


async def test_signal_timestamps_follow_the_loop_clock() -> None:
    """Operation timestamps and durations are on the (virtual) loop clock."""

    async def body(item: int) -> None:
        await anyio.sleep(90)
        current_operation().emit("done")

    async with EphemeralWorkCoordinator(body) as c:
        await c.enqueue(1)
    (snapshot,) = c.get_snapshot()
    assert snapshot.duration == timedelta(seconds=90)
    assert snapshot.completed is not None and snapshot.started.tzinfo is not None
    assert snapshot.signals[0].timestamp == snapshot.completed


async def test_keyed_view_of_signals_by_key() -> None:
    """get_signals_by_key filters on the operation key (None for the plain work coordinator)."""

    async def body(item: int) -> None:
        current_operation().emit("x")

    async with EphemeralWorkCoordinator(body) as c:
        await c.enqueue(1)
    assert c.get_signals_by_key("k") == []


async def test_echoes_keep_the_last_words() -> None:
    """Operations that leave the window leave an echo of their signals, filterable by pattern."""

    async def body(item: int) -> None:
        current_operation().emit("error.io" if item == 1 else "ok")

    options = EphemeralOptions(max_tracked_operations=1, max_concurrency=1, operation_echo_retention=60)
    async with EphemeralWorkCoordinator(body, options) as c:
        ids = [await c.enqueue_with_id(i) for i in range(3)]
        await anyio.sleep(0.01)
        echoes = c.get_echoes()
        assert [e.operation_id for e in echoes] == ids[:2]
        errors = c.get_echoes(pattern="error.*")
        assert [e.operation_id for e in errors] == [ids[1]]
        assert errors[0].signals[0].signal == "error.io" and errors[0].timestamp is not None
        await anyio.sleep(61)
        assert c.get_echoes() == []


async def test_echo_can_be_disabled() -> None:
    """enable_operation_echo=False keeps no echoes."""

    async def body(item: int) -> None:
        current_operation().emit("x")

    async with EphemeralWorkCoordinator(
        body, EphemeralOptions(enable_operation_echo=False, max_tracked_operations=1)
    ) as c:
        for i in range(3):
            await c.enqueue(i)
    assert c.get_echoes() == []


def test_current_operation_outside_a_body() -> None:
    """current_operation() outside a body raises a clear error."""
    with pytest.raises(RuntimeError, match="inside a coordinator's body"):
        current_operation()


async def test_body_must_be_callable_and_options_typed() -> None:
    """Bad constructor arguments are rejected at the call."""
    with pytest.raises(TypeError, match="body"):
        EphemeralWorkCoordinator(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options"):
        EphemeralWorkCoordinator(anyio.sleep, {"max_concurrency": 2})  # type: ignore[arg-type]


async def test_coordinator_enters_once() -> None:
    """A coordinator is single-use."""

    async def body(item: int) -> None:
        pass

    c = EphemeralWorkCoordinator(body)
    async with c:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with c:
            pass


async def test_for_each_processes_sync_and_async_iterables_lazily() -> None:
    """ephemeral_for_each pulls lazily, bounds concurrency, and returns counters."""
    pulled = 0
    probe = ConcurrencyProbe()

    def source() -> Any:
        nonlocal pulled
        for i in range(50):
            pulled += 1
            yield i

    async def body(item: int) -> None:
        with probe:
            await anyio.sleep(0.01)
        if item == 7:
            raise ValueError("seven")

    options = EphemeralOptions(max_concurrency=3, max_tracked_operations=5)
    metrics = await ephemeral_for_each(source(), body, options)
    assert metrics.total_enqueued == 50 and metrics.total_completed == 49 and metrics.total_failed == 1
    assert probe.peak == 3

    async def asource() -> AsyncIterator[int]:
        for i in range(10):
            await anyio.lowlevel.checkpoint()
            yield i

    seen: list[int] = []

    async def record(item: int) -> None:
        seen.append(item)

    metrics = await ephemeral_for_each(asource(), record, EphemeralOptions(max_concurrency=2))
    assert sorted(seen) == list(range(10)) and metrics.total_completed == 10


async def test_for_each_lazy_pull_respects_the_bound() -> None:
    """The source is not read ahead of the intake bound."""
    pulled = 0
    gate = anyio.Event()

    def source() -> Any:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield i

    async def body(item: int) -> None:
        await gate.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ephemeral_for_each, source(), body, EphemeralOptions(max_concurrency=2, max_tracked_operations=4))
        await anyio.sleep(1)
        assert pulled <= 2 + 4 + 1
        gate.set()
    assert pulled == 1000


async def test_for_each_source_error_propagates_after_accepted_work() -> None:
    """A failing source raises, but the items it already yielded still run."""
    done: list[int] = []

    def source() -> Any:
        yield 1
        yield 2
        raise LookupError("source broke")

    async def body(item: int) -> None:
        await anyio.sleep(1)
        done.append(item)

    with pytest.raises(LookupError, match="source broke"):
        await ephemeral_for_each(source(), body)
    assert sorted(done) == [1, 2]
