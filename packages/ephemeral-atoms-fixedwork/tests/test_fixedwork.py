"""FixedWorkAtom: the seed example, then behaviour (order, bounds, stats, failures, drain, arguments)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from ephemeral.atoms.fixedwork import FixedWorkAtom
from ephemeral.core import AtomStats, CoordinatorClosedError, OperationStatus, SignalSink, current_operation
from ephemeral.core.testing import ConcurrencyProbe, Gate, Recorder


@dataclass(frozen=True)
class WorkItem:
    name: str


async def test_seed_example() -> None:
    """The seed README's FixedWorkAtom example: enqueue, stats, snapshot, drain."""
    processed: Recorder[WorkItem] = Recorder(delay=0.01)

    item = WorkItem("first")
    async with FixedWorkAtom(processed, max_concurrency=4, max_tracked=200) as atom:
        await atom.enqueue(item)

        # Get stats
        pending, active, completed, failed = atom.stats()
        print(f"Completed: {completed}, Failed: {failed}")
        assert (pending + active, completed, failed) == (1, 0, 0)

        # Get recent operations
        snapshot = atom.snapshot()
        assert isinstance(snapshot, list)

        # Graceful shutdown
        await atom.drain()
    assert processed == [item]
    assert atom.stats() == AtomStats(0, 0, 1, 0)


async def test_processes_every_item() -> None:
    """Every enqueued item is processed exactly once."""
    processed: Recorder[int] = Recorder(delay=0.01)

    async with FixedWorkAtom(processed, max_concurrency=2) as atom:
        for item in (1, 2, 3):
            await atom.enqueue(item)
        await atom.drain()
    assert sorted(processed) == [1, 2, 3]


async def test_items_start_in_enqueue_order() -> None:
    """With one worker, items run in the order they were enqueued."""
    processed: Recorder[int] = Recorder(delay=1)

    async with FixedWorkAtom(processed, max_concurrency=1) as atom:
        for item in range(10):
            await atom.enqueue(item)
    assert processed == list(range(10))


async def test_enqueue_returns_distinct_positive_operation_ids() -> None:
    """enqueue returns each item's operation id, positive and distinct, as seen in the snapshot."""

    async def body(item: int) -> None:
        await anyio.sleep(0.01)

    async with FixedWorkAtom(body, max_concurrency=1) as atom:
        first = await atom.enqueue(1)
        second = await atom.enqueue(2)
        await atom.drain()
        assert first > 0 and second > 0 and first != second
        assert [s.operation_id for s in atom.snapshot()] == [first, second]


async def test_drain_waits_for_completion() -> None:
    """drain returns once every accepted item has finished, no sooner."""

    async def body(item: int) -> None:
        await anyio.sleep(0.05)

    async with FixedWorkAtom(body, max_concurrency=2) as atom:
        start = anyio.current_time()
        for item in range(3):
            await atom.enqueue(item)
        await atom.drain()
        assert atom.stats().completed == 3
        assert anyio.current_time() - start == pytest.approx(0.1)


async def test_stats_count_pending_and_active() -> None:
    """While bodies are blocked, stats shows the running ones as active and the rest as pending."""
    gate = Gate()

    async with FixedWorkAtom(gate, max_concurrency=2, max_tracked=100) as atom:
        for item in range(3):
            await atom.enqueue(item)
        await anyio.sleep(0.05)
        assert atom.stats() == AtomStats(pending=1, active=2, completed=0, failed=0)
        gate.set()


async def test_stats_after_drain() -> None:
    """After drain nothing is pending or active, and completed plus failed is every item."""

    async def body(item: int) -> None:
        await anyio.sleep(0.01)
        if item % 3 == 0:
            raise ValueError(item)

    async with FixedWorkAtom(body, max_concurrency=3) as atom:
        for item in range(10):
            await atom.enqueue(item)
        await atom.drain()
        assert atom.stats() == AtomStats(0, 0, 6, 4)
        assert atom.coordinator.total_enqueued == 10
    assert atom.stats() == AtomStats(0, 0, 6, 4)


async def test_snapshot_shows_running_operations() -> None:
    """snapshot lists the operations in the window, the running ones not yet completed."""
    gate = Gate()

    async with FixedWorkAtom(gate, max_concurrency=2) as atom:
        ids = [await atom.enqueue(item) for item in range(2)]
        await anyio.sleep(0.05)
        snapshot = atom.snapshot()
        assert [s.operation_id for s in snapshot] == ids
        assert all(s.completed is None for s in snapshot)
        gate.set()
    assert all(s.status is OperationStatus.COMPLETED for s in atom.snapshot())


async def test_max_concurrency_limits_parallelism() -> None:
    """No more than max_concurrency bodies run at once, and that many do."""
    probe = ConcurrencyProbe()

    async def body(item: int) -> None:
        with probe:
            await anyio.sleep(0.05)

    async with FixedWorkAtom(body, max_concurrency=3) as atom:
        start = anyio.current_time()
        for item in range(10):
            await atom.enqueue(item)
        await atom.drain()
    assert probe.peak == 3
    assert anyio.current_time() - start == pytest.approx(0.2)


async def test_max_tracked_bounds_waiting_items_and_the_window() -> None:
    """enqueue waits while max_tracked items wait, and the window keeps the last max_tracked operations."""
    gate = Gate()

    async with FixedWorkAtom(gate, max_concurrency=1, max_tracked=2) as atom:
        for item in range(3):  # one runs, two wait
            await atom.enqueue(item)
        with anyio.move_on_after(10) as scope:
            await atom.enqueue(3)
        assert scope.cancelled_caught
        assert atom.stats() == AtomStats(2, 1, 0, 0)
        gate.set()
        await atom.enqueue(3)
    assert atom.stats().completed == 4
    assert len(atom.snapshot()) == 2


async def test_leaving_the_block_drains() -> None:
    """Leaving `async with` finishes every accepted item."""

    async def body(item: int) -> None:
        await anyio.sleep(1)

    async with FixedWorkAtom(body, max_concurrency=1) as atom:
        await atom.enqueue(1)
        await atom.enqueue(2)
    assert atom.stats() == AtomStats(0, 0, 2, 0)


async def test_default_concurrency_is_the_cpu_count() -> None:
    """Without max_concurrency the pool has one worker per CPU."""

    async def body(item: int) -> None:
        await anyio.sleep(0.01)

    async with FixedWorkAtom(body) as atom:
        await atom.enqueue(1)
    assert atom.stats().completed == 1
    assert atom.coordinator.current_max_concurrency == (os.cpu_count() or 1)


async def test_a_failing_body_is_recorded_and_the_pool_goes_on() -> None:
    """A body that raises is counted as failed with its error on the snapshot; later items still run."""

    async def body(item: int) -> None:
        if item == 1:
            raise RuntimeError("boom")

    async with FixedWorkAtom(body, max_concurrency=1) as atom:
        for item in range(3):
            await atom.enqueue(item)
    assert atom.stats() == AtomStats(0, 0, 2, 1)
    (failure,) = [s for s in atom.snapshot() if s.is_faulted]
    assert isinstance(failure.error, RuntimeError)


async def test_enqueue_after_drain_is_refused() -> None:
    """Once drained, enqueue raises CoordinatorClosedError and accepts nothing."""

    async def body(item: int) -> None:
        pass

    async with FixedWorkAtom(body) as atom:
        await atom.drain()
        with pytest.raises(CoordinatorClosedError):
            await atom.enqueue(1)
    assert atom.coordinator.total_enqueued == 0


async def test_an_error_in_the_block_cancels_waiting_work() -> None:
    """An exception inside `async with` cancels what has not run, counted as cancelled."""

    async def body(item: int) -> None:
        await anyio.sleep(1)

    with pytest.raises(KeyError):
        async with FixedWorkAtom(body, max_concurrency=1) as atom:
            for item in range(3):
                await atom.enqueue(item)
            raise KeyError("stop")
    assert atom.coordinator.total_cancelled == 3
    assert atom.stats() == AtomStats(0, 0, 0, 0)


async def test_body_signals_reach_the_shared_sink() -> None:
    """Signals a body emits are visible on the sink passed as `signals`."""
    sink = SignalSink()

    async def body(item: int) -> None:
        current_operation().emit(f"item.done.{item}")

    async with FixedWorkAtom(body, signals=sink) as atom:
        await atom.enqueue(7)
        await atom.drain()
        assert atom.signals is sink
        assert [e.signal for e in sink.sense("item.done.*")] == ["item.done.7"]


async def test_drain_all_signal_stops_intake() -> None:
    """`coordinator.drain.all` on the sink stops intake while accepted work finishes."""
    sink = SignalSink()
    processed: Recorder[int] = Recorder(delay=1)

    async with FixedWorkAtom(processed, max_concurrency=1, signals=sink) as atom:
        await atom.enqueue(1)
        sink.request_drain_all()
        with pytest.raises(CoordinatorClosedError):
            await atom.enqueue(2)
    assert processed == [1]


async def _noop(item: object) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": 1.5}, TypeError, "max_concurrency"),
        ({"max_tracked": 0}, ValueError, "max_tracked"),
        ({"max_tracked": -5}, ValueError, "max_tracked"),
        ({"max_tracked": "200"}, TypeError, "max_tracked"),
        ({"max_tracked": True}, TypeError, "max_tracked"),
        ({"signals": object()}, TypeError, "signals"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    """An out-of-range or mistyped argument raises at construction, naming that argument."""
    with pytest.raises(error, match=name):
        FixedWorkAtom(_noop, **kwargs)


def test_body_must_be_callable() -> None:
    """A body that is not callable raises TypeError naming `body`."""
    with pytest.raises(TypeError, match="body"):
        FixedWorkAtom(42)  # type: ignore[arg-type]
