"""ResponsibilitySignalManager: pins released by ack signals, by completion and by time."""

from __future__ import annotations

import threading
from datetime import timedelta

import anyio
import pytest

from ephemeral.core import (
    ACKED_SIGNAL,
    DEFAULT_ACK_PATTERN,
    EXPIRED_SIGNAL,
    CoordinatorClosedError,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    ResponsibilitySignalManager,
    SignalEvent,
    SignalSink,
    ack_pattern_for,
)
from ephemeral.core.testing import ManualClock


class FakePinning:
    """Pins anything; unpin succeeds only for pinned ids and records the calling thread."""

    def __init__(self, refuse: frozenset[int] = frozenset()) -> None:
        self.pinned: set[int] = set()
        self.refuse = refuse
        self.unpin_threads: list[int] = []

    def pin(self, operation_id: int) -> bool:
        if operation_id in self.refuse:
            return False
        self.pinned.add(operation_id)
        return True

    def unpin(self, operation_id: int) -> bool:
        self.unpin_threads.append(threading.get_ident())
        if operation_id not in self.pinned:
            return False
        self.pinned.remove(operation_id)
        return True


def names(sink: SignalSink, pattern: str = "responsibility.*") -> list[tuple[str, str | None]]:
    return [(event.signal, event.key) for event in sink.sense(pattern)]


# ------------------------------------------------------------------------- reference tests 24-27


def test_ack_signal_unpins() -> None:
    """Reference 24: pinning 42 until `responsibility.ack.*` and emitting the ack with key 42 unpins it."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink)
    assert manager.pin_until_queried(42, "responsibility.ack.*")
    assert 42 in pinning.pinned and manager.pending_count == 1
    sink.emit("responsibility.ack.42", key="42")
    assert 42 not in pinning.pinned
    assert manager.pending_count == 0
    assert names(sink, ACKED_SIGNAL) == [(ACKED_SIGNAL, "42")]


def test_complete_responsibility_unpins_and_removes() -> None:
    """Reference 25: complete_responsibility returns True, unpins and empties the registry; a second call is False."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink)
    assert manager.pin_until_queried(7)
    assert manager.complete_responsibility(7)
    assert 7 not in pinning.pinned and manager.pending_count == 0
    assert not manager.complete_responsibility(7)


def test_expires_after_max_duration_on_the_next_signal() -> None:
    """Reference 26: with an injected clock moved past max_pin_duration, the next signal (a heartbeat) unpins."""
    pinning, sink, clock = FakePinning(), SignalSink(), ManualClock(100.0)
    manager = ResponsibilitySignalManager(pinning, sink, max_pin_duration=timedelta(seconds=1), clock=clock)
    assert manager.pin_until_queried(100)
    assert 100 in pinning.pinned
    clock.advance(2)
    sink.emit("heartbeat")
    assert 100 not in pinning.pinned
    assert names(sink, EXPIRED_SIGNAL) == [(EXPIRED_SIGNAL, "100")]
    assert manager.pending_count == 0


def test_snapshot_carries_the_description() -> None:
    """Reference 27: get_active_responsibilities gives one frozen snapshot with id, pattern, key and description."""
    clock = ManualClock(100.0)
    manager = ResponsibilitySignalManager(FakePinning(), SignalSink(), max_pin_duration=30, clock=clock)
    assert manager.pin_until_queried(99, DEFAULT_ACK_PATTERN, "99", "Saved file /bucket/uuid")
    [snapshot] = manager.get_active_responsibilities()
    assert snapshot.operation_id == 99
    assert snapshot.description == "Saved file /bucket/uuid"
    assert (snapshot.ack_pattern, snapshot.ack_key) == (DEFAULT_ACK_PATTERN, "99")
    assert snapshot.expires_at is not None and snapshot.expires_at - snapshot.pinned_at == timedelta(seconds=30)
    with pytest.raises(AttributeError):
        snapshot.description = "changed"  # type: ignore[misc]


# ---------------------------------------------------------------------------------- ack matching


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("responsibility.ack.*", "responsibility.ack.*"),
        ("file.ready", "file.ready.ack"),
        ("file.ready.ack", "file.ready.ack"),
        ("file.*.ack", "file.*.ack"),
        ("file.ready?", "file.ready?"),
        ("ack", "ack"),
        ("responsibility.ack.42", "responsibility.ack.42"),
        ("ack.file", "ack.file"),
        ("backpack", "backpack.ack"),
        ("file.acked", "file.acked.ack"),
    ],
)
def test_ack_pattern_for(given: str, expected: str) -> None:
    """A glob or a name with an `ack` segment is the ack pattern itself; any other name X is acked by `X.ack`."""
    assert ack_pattern_for(given) == expected


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_ack_pattern_is_refused(blank: str) -> None:
    """A blank ack pattern raises ValueError and pins nothing."""
    pinning = FakePinning()
    manager = ResponsibilitySignalManager(pinning, SignalSink())
    with pytest.raises(ValueError, match="ack_signal_pattern"):
        manager.pin_until_queried(1, blank)
    assert not pinning.pinned and manager.pending_count == 0


def test_seed_example_file_ready_is_acked_by_the_consumer_only() -> None:
    """The seed's flow: the producer's own `file.ready` keeps the pin; the consumer's `file.ready.ack` releases it."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink, max_pin_duration=timedelta(minutes=5))
    operation_id, file_id = 12, "file-9f2"
    if manager.pin_until_queried(operation_id, "file.ready", ack_key=file_id, description="Awaiting fetch"):
        sink.emit("file.ready", key=file_id)
    assert operation_id in pinning.pinned
    assert manager.get_active_responsibilities()[0].ack_pattern == "file.ready.ack"
    sink.emit("file.ready.ack", key=file_id)  # the consumer acknowledges the work
    assert operation_id not in pinning.pinned and manager.pending_count == 0


def test_ack_needs_both_pattern_and_key() -> None:
    """A signal with the right name and another key, or the right key and another name, does not ack."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink)
    manager.pin_until_queried(5)
    sink.emit("responsibility.ack.5", key="6")
    sink.emit("responsibility.ack.5")
    sink.emit("other.ack", key="5")
    assert manager.pending_count == 1 and 5 in pinning.pinned
    sink.emit("responsibility.ack.anything", key="5")
    assert manager.pending_count == 0


def test_one_ack_releases_every_responsibility_waiting_for_it() -> None:
    """Two operations waiting for the same ack key and pattern are both released by one ack; a third stays."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink)
    manager.pin_until_queried(1, "batch.done", ack_key="b-1")
    manager.pin_until_queried(2, "batch.done", ack_key="b-1")
    manager.pin_until_queried(3, "batch.done", ack_key="b-2")
    sink.emit("batch.done.ack", key="b-1")
    assert pinning.pinned == {3}
    assert [s.operation_id for s in manager.get_active_responsibilities()] == [3]


def test_manager_default_ack_pattern() -> None:
    """The manager's ack_pattern applies to pins given none, with the same `.ack` rule."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink, ack_pattern="job.result")
    manager.pin_until_queried(8)
    sink.emit("job.result", key="8")
    assert manager.pending_count == 1
    sink.emit("job.result.ack", key="8")
    assert manager.pending_count == 0


def test_acked_signal_is_caused_by_the_ack() -> None:
    """`responsibility.acked` carries the operation id as key and the ack in its propagation chain."""
    sink = SignalSink()
    manager = ResponsibilitySignalManager(FakePinning(), sink)
    manager.pin_until_queried(3, ack_key="k")
    sink.emit("responsibility.ack.x", key="k")
    [acked] = sink.sense(ACKED_SIGNAL)
    assert acked.key == "3"
    assert acked.propagation is not None
    assert acked.propagation.path == ("responsibility.ack.x", ACKED_SIGNAL)


def test_pin_refused_by_the_pinning_registers_nothing() -> None:
    """When pin() returns False (the operation left its window), pin_until_queried returns False."""
    pinning = FakePinning(refuse=frozenset({13}))
    manager = ResponsibilitySignalManager(pinning, SignalSink())
    assert not manager.pin_until_queried(13)
    assert manager.pending_count == 0 and manager.get_active_responsibilities() == []


def test_pinning_again_replaces_the_responsibility() -> None:
    """A second pin of the same operation replaces its ack pattern, key and description."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink)
    manager.pin_until_queried(4, "first", ack_key="a", description="one")
    manager.pin_until_queried(4, "second", ack_key="b", description="two")
    [snapshot] = manager.get_active_responsibilities()
    assert (snapshot.ack_pattern, snapshot.ack_key, snapshot.description) == ("second.ack", "b", "two")
    sink.emit("first.ack", key="a")
    assert manager.pending_count == 1
    sink.emit("second.ack", key="b")
    assert manager.pending_count == 0


def test_constructor_validation() -> None:
    """A pinning without pin/unpin, a non-sink, a non-positive duration or a blank default pattern is refused."""
    sink = SignalSink()
    with pytest.raises(TypeError, match="pinning"):
        ResponsibilitySignalManager(object(), sink)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sink"):
        ResponsibilitySignalManager(FakePinning(), "sink")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pin_duration"):
        ResponsibilitySignalManager(FakePinning(), sink, max_pin_duration=0)
    with pytest.raises(ValueError, match="ack_signal_pattern"):
        ResponsibilitySignalManager(FakePinning(), sink, ack_pattern=" ")


# ------------------------------------------------------------------------ expiry without a timer


def test_sync_expiry_is_applied_on_each_call() -> None:
    """Without a running timer, reading pending_count after the deadline releases the pin with no signal at all."""
    pinning, sink, clock = FakePinning(), SignalSink(), ManualClock(100.0)
    manager = ResponsibilitySignalManager(pinning, sink, max_pin_duration=10, clock=clock)
    manager.pin_until_queried(1)
    clock.advance(5)
    manager.pin_until_queried(2)
    clock.advance(5)  # exactly 1's deadline
    assert manager.pending_count == 1
    assert pinning.pinned == {2}
    assert names(sink, EXPIRED_SIGNAL) == [(EXPIRED_SIGNAL, "1")]
    clock.advance(4.9)
    assert [s.operation_id for s in manager.get_active_responsibilities()] == [2]
    clock.advance(0.1)
    assert manager.get_active_responsibilities() == [] and not pinning.pinned


def test_close_unpins_everything() -> None:
    """close() unpins every waiting operation, stops listening, and a later pin raises."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink)
    manager.pin_until_queried(1)
    manager.pin_until_queried(2)
    manager.close()
    manager.close()
    assert not pinning.pinned and manager.pending_count == 0
    sink.emit("responsibility.ack.1", key="1")
    assert sink.sense(ACKED_SIGNAL) == []
    with pytest.raises(CoordinatorClosedError, match="ResponsibilitySignalManager is closed"):
        manager.pin_until_queried(3)


# ------------------------------------------------------------------ the timer (virtual loop time)


async def test_pin_expires_by_time_with_no_signal() -> None:
    """Inside `async with`, a pin nobody acks is released at max_pin_duration with no other signal emitted."""
    pinning, sink = FakePinning(), SignalSink()
    async with ResponsibilitySignalManager(pinning, sink, max_pin_duration=300) as manager:
        await anyio.sleep(1000)  # the timer idles first; the pin must wake it
        manager.pin_until_queried(1)
        await anyio.sleep(299.9)
        assert pinning.pinned == {1}
        manager.pin_until_queried(2)
        await anyio.sleep(0.2)
        assert pinning.pinned == {2}
        assert [(e.signal, e.key) for e in sink.sense()] == [(EXPIRED_SIGNAL, "1")]
        await anyio.sleep(300)
        assert not pinning.pinned
        assert [e.key for e in sink.sense(EXPIRED_SIGNAL)] == ["1", "2"]


async def test_timer_does_not_wake_while_nothing_can_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timer runs only around pins, acks and expiries: never during an idle hour, empty or after the ack."""
    pinning, sink = FakePinning(), SignalSink()
    async with ResponsibilitySignalManager(pinning, sink, max_pin_duration=60) as manager:
        await anyio.sleep(0.001)  # the timer starts and finds nothing to do
        wakeups = 0
        expire_due = manager._expire_due

        def counting() -> None:
            nonlocal wakeups
            wakeups += 1
            expire_due()

        monkeypatch.setattr(manager, "_expire_due", counting)
        await anyio.sleep(3600)
        assert wakeups == 0  # nothing pinned
        manager.pin_until_queried(1)  # counts 1 (the pin applies expiry itself)
        await anyio.sleep(0.001)  # the timer wakes to schedule the deadline: 2
        sink.emit("responsibility.ack.1", key="1")
        await anyio.sleep(0.001)  # the timer wakes to drop the deadline: 3
        assert wakeups == 3
        await anyio.sleep(3600)
        assert wakeups == 3  # acked: no wake-up at the old deadline
        manager.pin_until_queried(2)
        await anyio.sleep(3600)
        assert not pinning.pinned
        assert wakeups == 6  # the pin, scheduling, and one wake-up at the expiry


async def test_responsibility_pinned_before_entering_expires_on_time() -> None:
    """A pin taken before `async with` keeps its deadline and is released by the timer once entered."""
    pinning, sink = FakePinning(), SignalSink()
    manager = ResponsibilitySignalManager(pinning, sink, max_pin_duration=10)
    manager.pin_until_queried(1)
    async with manager:
        await anyio.sleep(9.9)
        assert pinning.pinned == {1}
        await anyio.sleep(0.2)
        assert not pinning.pinned


async def test_leaving_the_block_unpins_everything() -> None:
    """Leaving `async with` unpins what is still waiting and stops the timer."""
    pinning, sink = FakePinning(), SignalSink()
    async with ResponsibilitySignalManager(pinning, sink, max_pin_duration=30) as manager:
        manager.pin_until_queried(1)
        manager.pin_until_queried(2)
    assert not pinning.pinned and manager.pending_count == 0
    with pytest.raises(RuntimeError, match="once"):
        async with manager:
            pass


async def test_error_in_the_block_propagates_unchanged() -> None:
    """An exception raised inside `async with` propagates as is and the pins are released."""
    pinning = FakePinning()
    with pytest.raises(KeyError):
        async with ResponsibilitySignalManager(pinning, SignalSink(), max_pin_duration=5) as manager:
            manager.pin_until_queried(1)
            raise KeyError("boom")
    assert not pinning.pinned


# ------------------------------------------------------------------------ with a real coordinator


async def test_coordinator_keeps_the_operation_until_the_ack() -> None:
    """A pinned operation outlives window trimming until its ack, then leaves the window (finalised)."""
    sink = SignalSink()
    finalized: list[int] = []

    async def body(item: str) -> None:
        pass

    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=1, signals=sink)
    async with EphemeralWorkCoordinator(body, options) as coordinator:
        coordinator.operation_finalized.connect(lambda s: finalized.append(s.operation_id))
        async with ResponsibilitySignalManager(coordinator, sink, max_pin_duration=timedelta(minutes=5)) as manager:
            first = await coordinator.enqueue("file-1")
            await anyio.sleep(0.01)
            assert manager.pin_until_queried(first, "file.ready", ack_key="file-1", description="Awaiting fetch")
            sink.emit("file.ready", key="file-1")
            for item in ("a", "b", "c"):
                await coordinator.enqueue(item)
            await anyio.sleep(0.01)
            assert first in {s.operation_id for s in coordinator.get_snapshot()}
            assert first not in finalized
            sink.emit("file.ready.ack", key="file-1")
            assert first in finalized
            assert first not in {s.operation_id for s in coordinator.get_snapshot()}


async def test_coordinator_pin_expires_by_time() -> None:
    """An operation whose consumer never comes leaves the window once max_pin_duration has passed."""
    sink = SignalSink()

    async def body(item: int) -> None:
        pass

    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=1, signals=sink)
    async with (
        EphemeralWorkCoordinator(body, options) as coordinator,
        ResponsibilitySignalManager(coordinator, sink, max_pin_duration=120) as manager,
    ):
        first = await coordinator.enqueue(1)
        await anyio.sleep(0.01)
        assert manager.pin_until_queried(first)
        await coordinator.enqueue(2)
        await anyio.sleep(119)
        snapshot = coordinator.get_operation(first)
        assert snapshot is not None and snapshot.is_pinned
        await anyio.sleep(2)
        assert coordinator.get_operation(first) is None
        assert [e.key for e in sink.sense(EXPIRED_SIGNAL)] == [str(first)]


async def test_pin_of_an_operation_not_in_the_window_is_refused() -> None:
    """A real coordinator refuses to pin an unknown id, so pin_until_queried returns False."""

    async def body(item: int) -> None:
        pass

    async with EphemeralWorkCoordinator(body) as coordinator:
        manager = ResponsibilitySignalManager(coordinator, coordinator.signals)
        assert not manager.pin_until_queried(123456789)
        assert manager.pending_count == 0
        manager.close()


# ------------------------------------------------------------------------------------- threads


@pytest.mark.real_time
async def test_ack_from_another_thread_acts_on_the_loop() -> None:
    """An ack emitted on a worker thread releases the pin, and unpin runs on the event loop's thread."""
    pinning, sink = FakePinning(), SignalSink()
    loop_thread = threading.get_ident()
    async with ResponsibilitySignalManager(pinning, sink, max_pin_duration=60) as manager:
        manager.pin_until_queried(42)
        manager.pin_until_queried(43)
        await anyio.to_thread.run_sync(lambda: sink.emit("responsibility.ack.42", key="42"))
        assert pinning.pinned == {43}
        assert pinning.unpin_threads == [loop_thread]
        assert await anyio.to_thread.run_sync(lambda: manager.complete_responsibility(43))
        assert await anyio.to_thread.run_sync(lambda: manager.pending_count) == 0
        assert pinning.unpin_threads == [loop_thread, loop_thread]


@pytest.mark.real_time
async def test_acks_from_many_threads_with_a_coordinator() -> None:
    """Acks for 50 pinned operations of a real coordinator, emitted from 5 threads, release every one of them."""
    sink = SignalSink()

    async def body(item: int) -> None:
        pass

    options = EphemeralOptions(max_concurrency=4, max_tracked_operations=64, signals=sink)
    async with (
        EphemeralWorkCoordinator(body, options) as coordinator,
        ResponsibilitySignalManager(coordinator, sink, max_pin_duration=600) as manager,
    ):
        ids = [await coordinator.enqueue(item) for item in range(50)]
        await anyio.sleep(0.05)
        assert all(manager.pin_until_queried(operation_id) for operation_id in ids)
        assert sum(1 for s in coordinator.get_snapshot() if s.is_pinned) == 50

        def ack(chunk: list[int]) -> None:
            for operation_id in chunk:
                sink.emit(SignalEvent("responsibility.ack.done", 0, str(operation_id), sink.now()))

        async with anyio.create_task_group() as tg:
            for start in range(0, 50, 10):
                tg.start_soon(anyio.to_thread.run_sync, ack, ids[start : start + 10])
        assert manager.pending_count == 0
        assert not any(s.is_pinned for s in coordinator.get_snapshot())
        assert sorted(int(e.key or 0) for e in sink.sense(ACKED_SIGNAL)) == ids
