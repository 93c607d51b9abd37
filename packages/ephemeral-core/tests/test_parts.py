"""The coordinator's parts, each alone: the window, the queues, the gates, the worker pool, the counters;
and the parity items they carry (pins count toward the window, lifecycle signals, atoms' cleanup)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    REFUSED,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    OperationStatus,
    PatternSet,
    PriorityLane,
    PriorityWorkCoordinator,
    PriorityWorkCoordinatorOptions,
    SignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import (
    AtomBase,
    Deferral,
    FifoQueue,
    Gates,
    KeyedQueues,
    LaneQueue,
    OperationHost,
    OperationWindow,
    OutcomeCounters,
    ParkingLot,
    Room,
    TimeBase,
    Verdict,
    WorkerPool,
)
from ephemeral.core.testing import Gate


def _host() -> OperationHost:
    return OperationHost(SignalSink(), TimeBase(time.monotonic), None, None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _window(capacity: int, lifetime: float | None = None) -> tuple[OperationWindow, Clock, list[int]]:
    window = OperationWindow(capacity, lifetime)
    clock = Clock()
    window.bind(clock, None)
    finalized: list[int] = []
    window.finalized.connect(lambda snapshot: finalized.append(snapshot.operation_id))
    return window, clock, finalized


def _run(window: OperationWindow, operation_id: int, clock: Clock, *, pin: bool = False) -> None:
    operation = window.open(operation_id, None, _host(), clock())
    if pin:
        assert window.pin(operation_id)
    operation.completed_at = clock()
    operation.status = OperationStatus.COMPLETED
    window.retire(operation)


# -- the window ---------------------------------------------------------------------------------------


def test_window_keeps_the_newest_finished_operations() -> None:
    window, clock, finalized = _window(2)
    for operation_id in (1, 2, 3):
        _run(window, operation_id, clock)
    assert [op.id for op in window.operations()] == [2, 3]
    assert finalized == [1]


def test_pinned_operations_count_toward_the_window() -> None:
    """With a window of 2 and one pin, 2 stay: the oldest unpinned finished operations leave first."""
    window, clock, finalized = _window(2)
    _run(window, 1, clock, pin=True)
    for operation_id in (2, 3, 4):
        _run(window, operation_id, clock)
    assert [op.id for op in window.operations()] == [1, 4]
    assert finalized == [2, 3]


def test_pinning_a_finished_operation_makes_room_by_trimming() -> None:
    window, clock, finalized = _window(2)
    for operation_id in (1, 2):
        _run(window, operation_id, clock)
    assert window.pin(2)
    _run(window, 3, clock)
    assert [op.id for op in window.operations()] == [2, 3]
    assert finalized == [1]


def test_unpinned_operation_older_than_a_trimmed_one_leaves_at_once() -> None:
    window, clock, finalized = _window(1)
    _run(window, 1, clock, pin=True)
    _run(window, 2, clock)  # no room beside the pin: leaves
    assert finalized == [2]
    assert window.unpin(1) and not window.unpin(1)
    assert finalized == [2, 1]
    assert window.operations() == []


def test_unpinned_operation_stays_when_nothing_newer_left() -> None:
    window, clock, finalized = _window(3)
    _run(window, 1, clock, pin=True)
    _run(window, 2, clock)
    assert window.unpin(1)
    assert [op.id for op in window.operations()] == [1, 2]
    assert finalized == []


def test_window_trims_by_age_but_never_a_pin() -> None:
    window, clock, finalized = _window(10, lifetime=5.0)
    _run(window, 1, clock)
    _run(window, 2, clock, pin=True)
    clock.now += 5.0
    assert [op.id for op in window.operations()] == [2]
    assert finalized == [1]


def test_evict_finalises_once_and_frees_a_pins_place() -> None:
    window, clock, finalized = _window(2)
    _run(window, 1, clock, pin=True)
    assert window.evict(1) and not window.evict(1)
    _run(window, 2, clock)
    _run(window, 3, clock)
    assert [op.id for op in window.operations()] == [2, 3]
    assert finalized == [1]


def test_window_cleanup_signals_by_pattern_count_and_age() -> None:
    window, clock, _ = _window(5)
    operation = window.open(1, None, _host(), clock())
    for name in ("a.1", "a.2", "b.1", "b.2"):
        operation.emit(name)
    assert window.cleanup_signals(pattern="b.*") == 2
    assert [event.signal for event in window.signal_events()] == ["a.1", "a.2"]
    assert window.cleanup_signals(count=1) == 1
    assert [event.signal for event in window.signal_events()] == ["a.2"]
    assert window.cleanup_signals(age=0) == 1
    with pytest.raises(ValueError, match="count"):
        window.cleanup_signals(count=-1)
    with pytest.raises(TypeError, match="count"):
        window.cleanup_signals(count=1.5)  # type: ignore[arg-type]


# -- the queues ---------------------------------------------------------------------------------------


def _entry(operation_id: int, group: Any = None) -> tuple[Any, int, str | None, Any]:
    return (f"item{operation_id}", operation_id, None, group)


def test_fifo_queue_is_arrival_order() -> None:
    queue = FifoQueue()
    for operation_id in (1, 2, 3):
        queue.push(_entry(operation_id))
    assert len(queue) == 3 and queue.ready() == 3
    assert queue.take() == _entry(1)
    assert queue.take_all() == [_entry(2), _entry(3)]
    assert queue.take() is None
    assert queue.gate(SignalSink(), 0.0) == ([], None)


def test_keyed_queues_hold_a_busy_key_without_blocking_others() -> None:
    queue = KeyedQueues(1)
    queue.push(_entry(1, "a"))
    queue.push(_entry(2, "a"))
    queue.push(_entry(3, "b"))
    assert queue.take() == _entry(1, "a")
    assert queue.take() == _entry(3, "b")  # "a" is busy
    assert queue.take() is None
    queue.release("a")
    assert queue.take() == _entry(2, "a")
    assert len(queue) == 0


def test_lane_queue_serves_the_highest_open_lane_and_counts_per_lane() -> None:
    queue = LaneQueue([PriorityLane("high", max_concurrency=1), PriorityLane("low")])
    queue.push(_entry(1, 1))
    queue.push(_entry(2, 0))
    queue.push(_entry(3, 0))
    assert [lane.waiting for lane in queue.lanes] == [2, 1]
    assert queue.take() == _entry(2, 0)
    assert queue.take() == _entry(1, 1)  # "high" is at its limit
    queue.release(0)
    assert queue.take() == _entry(3, 0)
    assert [(lane.waiting, lane.running) for lane in queue.lanes] == [(0, 1), (0, 1)]


def test_lane_queue_lanes_within_key_keep_the_keys_turns_by_arrival() -> None:
    """Keys take turns by arrival; a key's turn starts its highest open lane; a key at its limit waits."""
    queue = LaneQueue([PriorityLane("high", max_concurrency=1), PriorityLane("low")], 1, lanes_within_key=True)
    for operation_id, (lane, key) in enumerate([(1, "a"), (1, "b"), (1, "a"), (0, "b"), (0, "b")], start=1):
        queue.push(("item", operation_id, key, (lane, key)))
    assert queue.waiting_for("b") == [2, 1] and queue.waiting_for("c") == [0, 0]
    first = queue.take()
    assert first is not None and first[1] == 1  # a's turn (arrival 1): its only lane is low
    second = queue.take()
    assert second is not None and second[1] == 4  # b's turn (arrival 2) starts its high item
    assert queue.take() is None  # a and b are at their per-key limit
    queue.release(first[3])
    third = queue.take()
    assert third is not None and third[1] == 3
    queue.release(second[3])
    fourth = queue.take()
    assert fourth is not None and fourth[1] == 5
    assert queue.running_for("b") == 1 and len(queue) == 1
    two = LaneQueue([PriorityLane("high", max_concurrency=1), PriorityLane("low")], 2, lanes_within_key=True)
    for operation_id, lane in enumerate([0, 0, 1], start=1):
        two.push(("item", operation_id, "k", (lane, "k")))
    assert [entry[1] for entry in (two.take(), two.take()) if entry is not None] == [1, 3]  # "high" at its limit
    with pytest.raises(ValueError, match="lanes_within_key"):
        LaneQueue([PriorityLane("x")], lanes_within_key=True)


async def test_room_bounds_waiting_items_and_wakes_producers() -> None:
    queue = FifoQueue()
    room = Room(queue, 1)
    assert room.free()
    queue.push(_entry(1, None))
    assert not room.free()
    woken: list[bool] = []

    async def producer() -> None:
        await room.wait()
        woken.append(room.free())

    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        await anyio.sleep(0.01)
        assert woken == []
        queue.take()
        room.wake()
    assert woken == [True]
    room.wake()  # nobody waits: nothing to do


def test_lane_queue_gate_skips_a_cancelled_lane_and_holds_a_deferred_one() -> None:
    sink = SignalSink()
    queue = LaneQueue([PriorityLane("a", cancel_on_signals="stop.a"), PriorityLane("b", defer_on_signals="hold.b")])
    queue.push(_entry(1, 0))
    queue.push(_entry(2, 1))
    sink.emit("stop.a")
    sink.emit("hold.b")
    skipped, hold = queue.gate(sink, 0.0)
    assert skipped == [_entry(1, 0)]
    assert hold == 0.1
    assert queue.lanes[0].waiting == 0


# -- the gates ----------------------------------------------------------------------------------------


async def test_gates_verdicts() -> None:
    sink = SignalSink()
    queue = FifoQueue()
    skipped: list[Any] = []
    woken: list[bool] = []
    gates = Gates(
        PatternSet("stop"),
        Deferral.of("hold", None, 0.5, 2),
        queue,
        lambda entry, taken: skipped.append((entry, taken)),
        lambda: woken.append(True),
    )
    assert gates.active
    assert await gates.check(sink, anyio.current_time) is Verdict.PROCEED  # nothing waits
    queue.push(_entry(1))
    sink.emit("stop")
    assert await gates.check(sink, anyio.current_time) is Verdict.RETRY
    assert skipped == [(_entry(1), True)]
    sink.retract("stop")
    queue.push(_entry(2))
    sink.emit("hold")
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        verdicts: list[Verdict] = []

        async def second() -> None:
            verdicts.append(await gates.check(sink, anyio.current_time))

        tg.start_soon(second)
        verdicts.append(await gates.check(sink, anyio.current_time))
    assert sorted(v.value for v in verdicts) == ["park", "retry"]
    assert anyio.current_time() - start == pytest.approx(0.5)
    assert woken == [True]


# -- the worker pool ----------------------------------------------------------------------------------


async def test_parking_lot_wakes_one_at_a_time_newest_first() -> None:
    lot = ParkingLot()
    woken: list[int] = []

    async def park(number: int) -> None:
        await lot.park()
        woken.append(number)

    async with anyio.create_task_group() as tg:
        for number in range(3):
            tg.start_soon(park, number)
            await anyio.sleep(0.01)
        assert len(lot) == 3
        assert lot.unpark()
        await anyio.sleep(0.01)
        assert woken == [2]
        assert lot.unpark_many(5) == 2
    assert sorted(woken) == [0, 1, 2]
    assert not lot.unpark()


async def test_worker_pool_starts_up_to_its_limit() -> None:
    started = 0
    release = anyio.Event()

    async def work() -> None:
        nonlocal started
        started += 1
        await release.wait()

    pool = WorkerPool(2, work)
    async with anyio.create_task_group() as tg:
        await tg.start(pool.host, lambda: None)
        for _ in range(5):
            pool.wake_or_start()
        await anyio.sleep(0.01)
        assert (pool.workers, started) == (2, 2)
        release.set()
        tg.cancel_scope.cancel()


def test_outcome_counters_and_refused() -> None:
    counts = OutcomeCounters()
    counts.enqueued, counts.completed, counts.failed, counts.skipped, counts.cancelled = 5, 1, 1, 1, 1
    assert counts.finished == 4
    assert "enqueued=5" in repr(counts)
    assert REFUSED == -1 and not REFUSED and repr(REFUSED) == "REFUSED"


# -- through the coordinators -------------------------------------------------------------------------


async def test_priority_enqueue_returns_the_id_or_refused() -> None:
    """One enqueue contract: the operation id when accepted, REFUSED (== -1, falsy) when a lane is full."""
    gate = Gate()

    options = PriorityWorkCoordinatorOptions(
        lanes=[PriorityLane("normal", max_depth=1)], ephemeral_options=EphemeralOptions(max_concurrency=1)
    )
    async with PriorityWorkCoordinator(gate, options) as c:
        first = await c.enqueue(1)
        await anyio.sleep(0.01)
        second = await c.enqueue(2)
        refused = await c.enqueue(3)
        assert first > 0 and second > 0 and refused is REFUSED and refused == -1
        assert await c.enqueue_many([4, 5]) == 0
        gate.set()
    assert c.total_enqueued == 2


@pytest.mark.parametrize("enabled", [False, True])
async def test_lifecycle_signals_by_option(enabled: bool) -> None:
    """atom.start / atom.stop per operation only when emit_lifecycle_signals is set."""
    sink = SignalSink()

    async def body(item: int) -> None:
        if item == 1:
            raise OSError("boom")

    options = EphemeralOptions(max_concurrency=1, emit_lifecycle_signals=enabled, signals=sink)
    async with EphemeralWorkCoordinator(body, options) as c:
        await c.enqueue(0)
        await c.enqueue(1)
        await anyio.sleep(0.01)
        sensed = [event.signal for event in sink.sense("atom.*")]
    names = [event.signal for event in c.get_signals()]
    assert names == (["atom.start", "atom.stop"] * 2 if enabled else [])
    assert sensed == names


async def test_atom_cleanup_drops_its_own_signals() -> None:
    async def body(item: int) -> None:
        operation = current_operation()
        operation.emit(f"done.{item}")
        operation.emit("noise")

    atom = AtomBase(EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1)))
    async with atom:
        for item in range(3):
            await atom.coordinator.enqueue(item)
    assert atom.cleanup(pattern="noise") == 3
    assert atom.cleanup(count=0) == 3
    assert atom.coordinator.get_signals() == []
    assert atom.cleanup(age=0) == 0


def test_in_progress_defer_patterns_imply_their_done_resume() -> None:
    """Without resume patterns, X.in-progress is resumed by X.done; other defer patterns imply nothing."""
    from ephemeral.core.lowlevel import Deferral

    deferral = Deferral.of(["update.in-progress", "backpressure.*", "a.*.in-progress"], None, 0.1, 10)
    assert deferral is not None
    assert deferral.resume_on.patterns == ("update.done", "a.*.done")
    named = Deferral.of(["update.in-progress"], ["resume.now"], 0.1, 10)
    assert named is not None and named.resume_on.patterns == ("resume.now",)
