"""Signal-driven control of the work coordinator: cancel, defer, resume, drain, callbacks."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    BlockReason,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    OperationStatus,
    SignalConstraints,
    SignalEvent,
    SignalRetractedEvent,
    SignalSink,
    current_operation,
)
from ephemeral.core.testing import ConcurrencyProbe, Gate, Recorder


def clocked_sink() -> SignalSink:
    """A sink on the event loop's (virtual) clock, so signal ages follow the test's time."""
    return SignalSink(clock=anyio.current_time)


def update_gated(sink: SignalSink, ran: list[int]) -> EphemeralWorkCoordinator[int]:
    """One item at a time into ``ran``, deferred by ``update.in-progress`` until ``update.done``."""

    async def body(item: int) -> None:
        ran.append(item)

    options = EphemeralOptions(
        signals=sink, defer_on_signals={"update.in-progress"}, resume_on_signals={"update.done"}, max_concurrency=1
    )
    return EphemeralWorkCoordinator(body, options)


def busy_deferred(sink: SignalSink, started: list[float], interval: float) -> EphemeralWorkCoordinator[int]:
    """One item at a time, its start time into ``started``, deferred by ``busy`` at most 4 x ``interval``."""

    async def body(item: int) -> None:
        started.append(anyio.current_time())

    options = EphemeralOptions(
        signals=sink, defer_on_signals={"busy"}, defer_check_interval=interval, max_defer_attempts=4, max_concurrency=1
    )
    return EphemeralWorkCoordinator(body, options)


async def test_cancel_on_signals_skips_items_while_the_signal_is_live() -> None:
    """Items reaching the front while a cancel signal is live are skipped and counted, then intake resumes."""
    sink = clocked_sink()
    ran: list[int] = []

    async def body(item: int) -> None:
        ran.append(item)

    options = EphemeralOptions(signals=sink, cancel_on_signals={"circuit-open"}, max_concurrency=1)
    async with EphemeralWorkCoordinator(body, options) as c:
        await c.enqueue(1)
        await anyio.sleep(0.1)
        sink.emit("circuit-open")
        await c.enqueue(2)
        await c.enqueue(3)
        await anyio.sleep(0.1)
        assert c.total_skipped == 2
        sink.retract("circuit-open")
        await c.enqueue(4)
    assert ran == [1, 4]
    assert (c.total_completed, c.total_skipped, c.total_enqueued) == (2, 2, 4)
    skipped = [s for s in c.get_snapshot() if s.status is OperationStatus.SKIPPED]
    assert len(skipped) == 2


async def test_cancel_on_signals_sees_operation_signals_of_the_coordinator() -> None:
    """A signal emitted by one of the coordinator's own operations also triggers cancel_on_signals."""

    async def body(item: int) -> None:
        if item == 0:
            current_operation().emit("circuit-open")

    options = EphemeralOptions(cancel_on_signals="circuit-*", max_concurrency=1)
    async with EphemeralWorkCoordinator(body, options) as c:
        for i in range(4):
            await c.enqueue(i)
    assert (c.total_completed, c.total_skipped) == (1, 3)


async def test_defer_until_retracted() -> None:
    """While a defer signal is live nothing starts; retracting it lets work resume."""
    sink = clocked_sink()
    ran: list[float] = []

    async def body(item: int) -> None:
        ran.append(anyio.current_time())

    options = EphemeralOptions(signals=sink, defer_on_signals={"backpressure.*"}, max_concurrency=2)
    async with EphemeralWorkCoordinator(body, options) as c:
        sink.emit("backpressure.downstream")
        start = anyio.current_time()
        for i in range(5):
            await c.enqueue(i)
        await anyio.sleep(2)
        assert ran == []
        assert c.pending_count == 5
        sink.retract("backpressure.downstream")
    assert len(ran) == 5
    assert min(ran) - start == pytest.approx(2, abs=0.15)


async def test_resume_signal_overrides_defer() -> None:
    """A live resume signal lets work run although a defer signal is live too."""
    sink = clocked_sink()
    ran: list[int] = []
    async with update_gated(sink, ran) as c:
        sink.emit("update.in-progress")
        await c.enqueue(1)
        await anyio.sleep(1)
        assert ran == []
        sink.emit("update.done")
        await anyio.sleep(0.2)
        assert ran == [1]


async def test_deferral_is_bounded_per_episode() -> None:
    """After max_defer_attempts x defer_check_interval, work goes ahead although the signal stays, all of it."""
    sink = clocked_sink()
    started: list[float] = []
    async with busy_deferred(sink, started, 0.5) as c:
        sink.emit("busy")
        t0 = anyio.current_time()
        for i in range(10):
            await c.enqueue(i)
    assert len(started) == 10
    # one episode of ~2 s, not 10 x 2 s (one budget per item)
    assert started[0] - t0 == pytest.approx(2, abs=0.6)
    assert started[-1] - t0 < 3


async def test_signals_expire_by_age_and_release_deferred_work() -> None:
    """A defer signal older than the sink's max_age no longer defers."""
    sink = SignalSink(max_age=5, clock=anyio.current_time)
    ran: list[float] = []

    async def body(item: int) -> None:
        ran.append(anyio.current_time())

    options = EphemeralOptions(signals=sink, defer_on_signals={"hold"}, max_defer_attempts=1000)
    async with EphemeralWorkCoordinator(body, options) as c:
        t0 = anyio.current_time()
        sink.emit("hold")
        await c.enqueue(1)
    assert ran[0] - t0 == pytest.approx(5, abs=0.2)


async def test_drain_all_signal_completes_the_coordinator() -> None:
    """coordinator.drain.all completes intake; accepted items still run."""
    sink = SignalSink()
    ran: Recorder[int] = Recorder(delay=1)

    async with EphemeralWorkCoordinator(ran, EphemeralOptions(signals=sink, max_concurrency=1)) as c:
        await c.enqueue(1)
        await c.enqueue(2)
        sink.request_drain_all()
        assert c.is_completed
        assert not c.try_enqueue(3)
    assert ran == [1, 2]


async def test_drain_by_id_and_pattern_only_reaches_matching_coordinators() -> None:
    """coordinator.drain.id and .pattern complete only coordinators whose coordinator_id matches."""
    sink = SignalSink()

    async def body(item: int) -> None:
        pass

    orders = EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink, coordinator_id="orders-eu"))
    billing = EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink, coordinator_id="billing"))
    anonymous = EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink))
    async with orders, billing, anonymous:
        assert sorted(sink.get_coordinator_ids()) == ["billing", "orders-eu"]
        sink.request_drain("billing")
        assert billing.is_completed and not orders.is_completed and not anonymous.is_completed
        sink.request_drain_pattern("orders-*")
        assert orders.is_completed and not anonymous.is_completed
        sink.emit("coordinator.drain.id")  # no key: reaches no one, not the unnamed coordinator
        assert not anonymous.is_completed


async def test_drain_signals_can_be_disabled_and_extended() -> None:
    """drain_on_signals=None ignores drain requests; a custom pattern drains on its own signals."""
    sink = SignalSink()

    async def body(item: int) -> None:
        pass

    deaf = EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink, drain_on_signals=None))
    custom = EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink, drain_on_signals="shutdown.*"))
    async with deaf, custom:
        sink.request_drain_all()
        assert not deaf.is_completed and not custom.is_completed
        sink.emit("shutdown.now")
        assert custom.is_completed and not deaf.is_completed


async def test_drain_signal_from_an_old_window_does_not_complete_new_coordinators() -> None:
    """A drain request emitted before a coordinator started does not complete it."""
    sink = SignalSink()
    sink.request_drain_all()

    async def body(item: int) -> None:
        pass

    async with EphemeralWorkCoordinator(body, EphemeralOptions(signals=sink)) as c:
        await c.enqueue(1)
        await anyio.sleep(0.1)
        assert not c.is_completed


@pytest.mark.real_time
async def test_drain_signal_from_another_thread() -> None:
    """A drain request emitted on another thread completes the coordinator on its loop."""
    sink = SignalSink()
    gate = Gate()

    async with EphemeralWorkCoordinator(gate, EphemeralOptions(signals=sink)) as c:
        await c.enqueue(1)
        await anyio.to_thread.run_sync(sink.request_drain_all)
        assert c.is_completed
        assert threading.active_count() >= 1
        gate.set()
    assert c.total_completed == 1


async def test_on_signal_callbacks_see_operation_signals() -> None:
    """on_signal and on_signal_retracted see every operation signal; a raising callback is isolated."""
    seen: list[str] = []
    retracted: list[str] = []

    def on_signal(event: SignalEvent[Any]) -> None:
        seen.append(event.signal)
        raise RuntimeError("callback bug")

    async def body(item: int) -> None:
        operation = current_operation()
        operation.emit("a")
        operation.emit("b")
        operation.emit("a")
        assert operation.retract("a")
        assert operation.retract_matching("*") == 2
        assert not operation.retract("zzz")

    options = EphemeralOptions(on_signal=on_signal, on_signal_retracted=lambda e: retracted.append(e.signal))
    async with EphemeralWorkCoordinator(body, options) as c:
        await c.enqueue(1)
    assert seen == ["a", "b", "a"]
    assert retracted == ["a", "a", "b"]
    assert c.total_completed == 1


async def test_async_signal_handlers_run_off_the_emitting_path() -> None:
    """on_signal_async handlers run concurrently up to the limit, after the body emitted, and finish before exit."""
    probe = ConcurrencyProbe()
    handled: list[str] = []
    retracted: list[str] = []

    async def handler(event: SignalEvent[Any]) -> None:
        with probe:
            await anyio.sleep(1)
            handled.append(event.signal)

    async def on_retracted(event: SignalRetractedEvent) -> None:
        retracted.append(event.signal)

    async def body(item: int) -> None:
        current_operation().emit(f"s.{item}")
        if item == 0:
            current_operation().retract(f"s.{item}")

    options = EphemeralOptions(
        on_signal_async=handler,
        on_signal_retracted_async=on_retracted,
        max_concurrent_signal_handlers=2,
        max_concurrency=4,
    )
    async with EphemeralWorkCoordinator(body, options) as c:
        for i in range(6):
            await c.enqueue(i)
    assert sorted(handled) == [f"s.{i}" for i in range(6)]
    assert retracted == ["s.0"]
    assert probe.peak == 2
    assert c.dropped_signal_count == 0


async def test_async_signal_queue_drops_the_oldest_when_full() -> None:
    """Beyond max_queued_signals the oldest waiting signal is dropped and counted."""
    handled: list[str] = []
    gate = anyio.Event()

    async def handler(event: SignalEvent[Any]) -> None:
        await gate.wait()
        handled.append(event.signal)

    async def body(item: int) -> None:
        for i in range(10):
            current_operation().emit(f"s.{i}")

    options = EphemeralOptions(on_signal_async=handler, max_concurrent_signal_handlers=1, max_queued_signals=3)
    async with EphemeralWorkCoordinator(body, options) as c:
        await c.enqueue(1)
        await anyio.sleep(0.1)
        # the body emitted all ten before the handler task first ran: three fit, seven were dropped
        assert c.dropped_signal_count == 7
        gate.set()
    assert handled == ["s.7", "s.8", "s.9"]


async def test_failing_async_handler_is_isolated() -> None:
    """An async handler that raises does not stop the others or the coordinator."""
    handled: list[str] = []

    async def handler(event: SignalEvent[Any]) -> None:
        if event.signal == "bad":
            raise RuntimeError("handler bug")
        handled.append(event.signal)

    async def body(item: str) -> None:
        current_operation().emit(item)

    async with EphemeralWorkCoordinator(body, EphemeralOptions(on_signal_async=handler, max_concurrency=1)) as c:
        for item in ("bad", "good", "fine"):
            await c.enqueue(item)
    assert handled == ["good", "fine"]


async def test_signal_constraints_block_cycles_and_depth() -> None:
    """Operation emissions caused by other signals obey the coordinator's SignalConstraints."""
    blocked: list[tuple[str, BlockReason]] = []
    results: list[bool] = []

    constraints = SignalConstraints(max_depth=3, on_blocked=lambda e, r: blocked.append((e.signal, r)))

    async def body(item: int) -> None:
        operation = current_operation()
        operation.emit("a")
        cause = operation.get_signals()[-1]
        results.append(operation.emit_caused("b", cause))
        results.append(operation.emit_caused("a", operation.get_signals()[-1]))
        chain = operation.get_signals()[-1]
        results.append(operation.emit_caused("c", chain))
        results.append(operation.emit_caused("d", operation.get_signals()[-1]))

    async with EphemeralWorkCoordinator(body, EphemeralOptions(signal_constraints=constraints)) as c:
        await c.enqueue(1)
    assert results == [True, False, True, False]
    assert [r for _, r in blocked] == [BlockReason.CYCLE_DETECTED, BlockReason.MAX_DEPTH_EXCEEDED]
    assert [str(e.propagation) for e in c.get_signals()] == ["a", "a -> b", "a -> b -> c"]


async def test_shared_sink_sees_both_coordinators_and_direct_signals_once() -> None:
    """A sink shared by two coordinators senses both coordinators' operation signals and its own, once each."""
    sink = SignalSink()

    async def body_a(item: int) -> None:
        current_operation().emit("a.done")

    async def body_b(item: int) -> None:
        current_operation().emit("b.done")

    one = EphemeralWorkCoordinator(body_a, EphemeralOptions(signals=sink, max_tracked_operations=2, max_concurrency=1))
    two = EphemeralWorkCoordinator(body_b, EphemeralOptions(signals=sink, max_tracked_operations=3, max_concurrency=1))
    async with one, two:
        for i in range(5):
            await one.enqueue(i)
            await two.enqueue(i)
        sink.emit("system.busy")
        await anyio.sleep(0.1)
        assert sink.count("a.done") == 2
        assert sink.count("b.done") == 3
        assert sink.count("system.busy") == 1
        assert {e.signal for e in one.get_signals()} == {"a.done"}
        assert {e.signal for e in two.get_signals()} == {"b.done"}
        assert sink.coordinator_count == 2
    assert sink.coordinator_count == 0


async def test_a_spent_deferral_episode_ends_when_the_signal_goes_while_nothing_waits() -> None:
    """A spent episode ends at the retract even if no worker looks then: a much later signal holds work again."""
    sink = clocked_sink()
    started: list[float] = []
    async with busy_deferred(sink, started, 0.25) as c:
        sink.emit("busy")
        await c.enqueue(1)
        await anyio.sleep(2)
        assert len(started) == 1  # ran once the 1 s hold was spent
        sink.retract("busy")  # nothing waits: no worker looks at the gate now
        await anyio.sleep(60)
        sink.emit("busy")
        t0 = anyio.current_time()
        await c.enqueue(2)
        await anyio.sleep(0.5)
        assert len(started) == 1  # a new episode: held again
        await anyio.sleep(1)
        assert len(started) == 2 and started[1] - t0 == pytest.approx(1.0, abs=0.01)


async def test_resume_latest_wins_an_older_resume_signal_does_not_end_a_new_update() -> None:
    """A resume signal left from the previous update does not let work through the next one."""
    sink = clocked_sink()
    ran: list[int] = []
    async with update_gated(sink, ran) as c:
        sink.emit("update.in-progress")
        await c.enqueue(1)
        await anyio.sleep(1)
        sink.emit("update.done")  # newer than the defer signal: resumes
        await anyio.sleep(0.2)
        assert ran == [1]
        await anyio.sleep(1)
        sink.emit("update.in-progress")  # a second update: update.done is still live, but older
        await c.enqueue(2)
        await anyio.sleep(1)
        assert ran == [1]
        sink.emit("update.done")
        await anyio.sleep(0.2)
        assert ran == [1, 2]


async def test_a_spent_hold_emits_deferral_expired_once_per_episode() -> None:
    """When the hold runs out the coordinator says so: deferral.expired, keyed by the defer signal ignored."""
    sink = clocked_sink()
    ran: list[int] = []

    async def body(item: int) -> None:
        ran.append(item)

    options = EphemeralOptions(
        signals=sink, defer_on_signals={"busy.*"}, defer_check_interval=0.5, max_defer_attempts=2, max_concurrency=1
    )
    async with EphemeralWorkCoordinator(body, options) as c:
        sink.emit("busy.db")
        for n in range(3):
            await c.enqueue(n)
        await anyio.sleep(0.9)
        assert ran == [] and not sink.sense("deferral.expired")
        await anyio.sleep(0.2)
        assert ran == [0, 1, 2]
        await c.enqueue(3)  # the same episode: not held, not signalled again
        await anyio.sleep(0.01)
        assert ran == [0, 1, 2, 3]
    assert [(e.signal, e.key) for e in sink.sense("deferral.expired")] == [("deferral.expired", "busy.db")]
