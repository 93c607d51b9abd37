"""SignalAwareAtom: the seed example, then cancel refusal, skipping, deferral, the shared sink and arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import pytest

from ephemeral.atoms.signalaware import SignalAwareAtom
from ephemeral.core import (
    AtomStats,
    CoordinatorClosedError,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    OperationStatus,
    SignalSink,
    current_operation,
)
from ephemeral.core.testing import ConcurrencyProbe, Recorder


@dataclass(frozen=True)
class WorkItem:
    name: str


async def test_seed_example() -> None:
    """The seed README's example: enqueue, a defer signal, a cancel signal on the sink refusing new items, drain."""
    processed: Recorder[WorkItem] = Recorder(delay=0.01)

    item = WorkItem("job")
    sink = SignalSink()
    async with SignalAwareAtom(
        processed,
        cancel_on={"shutdown", "circuit-open"},
        defer_on={"backpressure.*"},
        defer_interval=timedelta(milliseconds=100),
        max_defer_attempts=50,
        signals=sink,
        max_concurrency=8,
    ) as atom:
        # Enqueue work
        operation_id = await atom.enqueue(item)
        assert operation_id > 0

        # Raise ambient signals
        atom.emit("backpressure.downstream")  # New items defer
        sink.emit("shutdown")  # New items rejected (returns -1)
        assert await atom.enqueue(item) == -1

        await atom.drain()
    # The accepted item reached the front while `shutdown` was live: skipped, not run.
    assert processed == []
    assert atom.coordinator.total_enqueued == 1
    assert atom.coordinator.total_skipped == 1
    assert [s.status for s in atom.snapshot()] == [OperationStatus.SKIPPED]


async def test_without_signals_it_is_a_plain_pool() -> None:
    """With no live signal, enqueue returns positive operation ids and every item runs."""
    processed: Recorder[int] = Recorder(delay=0.01)

    async with SignalAwareAtom(processed, cancel_on={"shutdown"}, defer_on={"busy"}, max_concurrency=2) as atom:
        ids = [await atom.enqueue(item) for item in range(5)]
    assert all(operation_id > 0 for operation_id in ids) and len(set(ids)) == 5
    assert sorted(processed) == list(range(5))
    assert atom.stats() == AtomStats(0, 0, 5, 0)


async def test_a_live_cancel_signal_refuses_intake_until_retracted() -> None:
    """While a cancel signal is live on the sink enqueue returns -1 and accepts nothing; after retract it accepts."""
    sink = SignalSink()
    processed: list[int] = []

    async def body(item: int) -> None:
        processed.append(item)

    async with SignalAwareAtom(body, cancel_on={"shutdown"}, signals=sink) as atom:
        sink.emit("shutdown")
        assert await atom.enqueue(1) == -1
        assert await atom.enqueue(2) == -1
        assert atom.coordinator.total_enqueued == 0
        assert atom.retract("shutdown") == 1
        assert await atom.enqueue(3) > 0
    assert processed == [3]


async def test_atom_emit_reaches_its_own_checks_on_a_private_sink() -> None:
    """atom.emit on an atom without a shared sink is seen by its own cancel check."""

    async def body(item: int) -> None:
        pass

    async with SignalAwareAtom(body, cancel_on={"circuit-open"}) as atom:
        atom.emit("circuit-open")
        assert atom.signals.detect("circuit-open")
        assert await atom.enqueue(1) == -1
        atom.retract("circuit-open")
        assert await atom.enqueue(2) > 0


async def test_cancel_patterns_are_globs_and_comma_lists() -> None:
    """cancel_on takes globs, and an element may list comma-separated alternatives."""

    async def body(item: int) -> None:
        pass

    async with SignalAwareAtom(body, cancel_on="shutdown, circuit-*") as atom:
        atom.emit("circuit-half")
        assert await atom.enqueue(1) == -1
        atom.retract("circuit-half")
        atom.emit("circuit")  # does not match `circuit-*`
        assert await atom.enqueue(2) > 0
        atom.emit("shutdown")
        assert await atom.enqueue(3) == -1


async def test_a_cancel_signal_from_an_operation_refuses_intake() -> None:
    """A cancel signal emitted by one of the atom's own bodies refuses later items."""

    async def body(item: str) -> None:
        if item == "trip":
            current_operation().emit("circuit-open")

    async with SignalAwareAtom(body, cancel_on={"circuit-open"}) as atom:
        assert await atom.enqueue("trip") > 0
        await anyio.sleep(1)
        assert await atom.enqueue("next") == -1
    assert atom.stats() == AtomStats(0, 0, 1, 0)


async def test_a_cancel_signal_skips_waiting_items_and_every_item_is_accounted_for() -> None:
    """Items accepted before a cancel signal and still waiting are skipped, counted and visible in the snapshot."""
    processed: Recorder[int] = Recorder(delay=1)

    async with SignalAwareAtom(processed, cancel_on={"shutdown"}, max_concurrency=1) as atom:
        for item in range(4):
            await atom.enqueue(item)
        await anyio.sleep(0.5)  # item 0 is running
        atom.emit("shutdown")
        await atom.drain()
        c = atom.coordinator
        assert processed == [0]  # a running body is not interrupted
        assert (c.total_completed, c.total_skipped, c.total_failed, c.total_cancelled) == (1, 3, 0, 0)
        assert c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled == c.total_enqueued
        assert atom.stats() == AtomStats(0, 0, 1, 0)
        statuses = [s.status for s in atom.snapshot()]
        assert statuses == [OperationStatus.COMPLETED] + [OperationStatus.SKIPPED] * 3


async def test_a_defer_signal_holds_work_until_it_is_retracted() -> None:
    """While a defer signal is live new items wait; once it is retracted they start within one defer_interval."""
    started: dict[int, float] = {}

    async def body(item: int) -> None:
        started[item] = anyio.current_time()

    async with SignalAwareAtom(body, defer_on={"backpressure.*"}, defer_interval=0.5, max_defer_attempts=50) as atom:
        atom.emit("backpressure.downstream")
        await atom.enqueue(1)
        await atom.enqueue(2)
        await anyio.sleep(10)
        assert started == {}
        assert atom.stats() == AtomStats(pending=2, active=0, completed=0, failed=0)
        retracted_at = anyio.current_time()
        assert atom.retract("backpressure.downstream") == 1
        await atom.drain()
    assert set(started) == {1, 2}
    assert retracted_at <= min(started.values()) <= max(started.values()) <= retracted_at + 0.5


async def test_deferral_gives_up_after_max_defer_attempts() -> None:
    """A defer signal that is never retracted holds work for defer_interval x max_defer_attempts, then work runs."""
    started: list[float] = []

    async def body(item: int) -> None:
        started.append(anyio.current_time())

    async with SignalAwareAtom(
        body, defer_on={"busy"}, defer_interval=timedelta(seconds=1), max_defer_attempts=3
    ) as atom:
        start = anyio.current_time()
        atom.emit("busy")
        await atom.enqueue(1)
        await atom.drain()
        assert atom.signals.detect("busy")
    assert len(started) == 1
    assert started[0] - start == pytest.approx(3, abs=0.01)


async def test_zero_defer_attempts_never_defer() -> None:
    """With max_defer_attempts=0 a defer signal holds nothing."""
    started: list[float] = []

    async def body(item: int) -> None:
        started.append(anyio.current_time())

    async with SignalAwareAtom(body, defer_on={"busy"}, max_defer_attempts=0) as atom:
        start = anyio.current_time()
        atom.emit("busy")
        await atom.enqueue(1)
    assert started == [pytest.approx(start)]


async def test_signals_of_another_coordinator_on_the_shared_sink_defer_and_cancel() -> None:
    """Signals held by another coordinator's operations on the same sink defer and refuse the atom's work."""
    sink = SignalSink()
    started: list[float] = []

    async def body(item: int) -> None:
        started.append(anyio.current_time())

    async def monitor(signal: str) -> None:
        current_operation().emit(signal)

    async with (
        EphemeralWorkCoordinator(monitor, EphemeralOptions(signals=sink)) as other,
        SignalAwareAtom(body, cancel_on={"circuit-open"}, defer_on={"backpressure.*"}, signals=sink) as atom,
    ):
        await other.enqueue("backpressure.db")
        await anyio.sleep(1)
        await atom.enqueue(1)
        await anyio.sleep(2)
        assert started == []  # held by the other coordinator's signal
        other.evict(other.get_snapshot()[0].operation_id)  # its signal leaves with the operation
        await anyio.sleep(0.2)
        assert len(started) == 1
        await other.enqueue("circuit-open")
        await anyio.sleep(1)
        assert await atom.enqueue(2) == -1


async def test_emit_and_retract_with_a_key() -> None:
    """atom.emit puts a keyed signal on the sink; atom.retract with a key removes only that one."""
    sink = SignalSink()

    async def body(item: int) -> None:
        pass

    async with SignalAwareAtom(body, cancel_on={"maintenance"}, signals=sink) as atom:
        atom.emit("maintenance", key="db")
        atom.emit("maintenance", key="cache")
        assert sorted(e.key or "" for e in sink.sense("maintenance")) == ["cache", "db"]
        assert atom.retract("maintenance", key="db") == 1
        assert await atom.enqueue(1) == -1
        assert atom.retract("maintenance") == 1
        assert await atom.enqueue(2) > 0


async def test_max_concurrency_limits_parallelism() -> None:
    """No more than max_concurrency bodies run at once."""
    probe = ConcurrencyProbe()

    async def body(item: int) -> None:
        with probe:
            await anyio.sleep(1)

    async with SignalAwareAtom(body, max_concurrency=3) as atom:
        for item in range(9):
            await atom.enqueue(item)
    assert probe.peak == 3


async def test_stats_after_drain_with_failures() -> None:
    """After drain, stats counts completed and failed bodies and nothing is pending or active."""

    async def body(item: int) -> None:
        await anyio.sleep(0.1)
        if item % 2:
            raise ValueError(item)

    async with SignalAwareAtom(body, max_concurrency=2) as atom:
        for item in range(6):
            await atom.enqueue(item)
        await atom.drain()
        assert atom.stats() == AtomStats(0, 0, 3, 3)
        with pytest.raises(CoordinatorClosedError):
            await atom.enqueue(7)


async def _noop(item: object) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"cancel_on": [1]}, TypeError, "cancel_on"),
        ({"defer_on": ["ok", None]}, TypeError, "defer_on"),
        ({"defer_interval": 0}, ValueError, "defer_interval"),
        ({"defer_interval": -1.0}, ValueError, "defer_interval"),
        ({"defer_interval": "100ms"}, TypeError, "defer_interval"),
        ({"max_defer_attempts": -1}, ValueError, "max_defer_attempts"),
        ({"max_defer_attempts": 2.5}, TypeError, "max_defer_attempts"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"signals": object()}, TypeError, "signals"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    """An out-of-range or mistyped argument raises at construction, naming that argument."""
    with pytest.raises(error, match=name):
        SignalAwareAtom(_noop, **kwargs)


def test_body_must_be_callable() -> None:
    """A body that is not callable raises TypeError naming `body`."""
    with pytest.raises(TypeError, match="body"):
        SignalAwareAtom("process")  # type: ignore[arg-type]
