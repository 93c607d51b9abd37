"""BatchingAtom: batches by size or by time, in order, never losing an item, flushed on close."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.atoms.batching import BatchingAtom, BatchingStats
from ephemeral.core import AtomStats, CoordinatorClosedError, OperationStatus, SignalSink
from ephemeral.core.testing import ConcurrencyProbe


@dataclass
class Recorder:
    """An ``on_batch`` that records each batch with the virtual time it arrived, optionally slow or failing."""

    delay: float = 0.0
    fail_on: frozenset[int] = frozenset()  # batch numbers (from 1) that raise
    batches: list[list[Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    probe: ConcurrencyProbe = field(default_factory=ConcurrencyProbe)

    async def __call__(self, items: list[Any]) -> None:
        with self.probe:
            self.times.append(anyio.current_time())
            self.batches.append(list(items))
            if self.delay:
                await anyio.sleep(self.delay)
            if len(self.batches) in self.fail_on:
                raise OSError(f"database down for batch {len(self.batches)}")

    @property
    def items(self) -> list[Any]:
        return [item for batch in self.batches for item in batch]


#: Timers wake a microsecond past their deadline (core's rule for sleeps on virtual clocks).
TICK = 2e-6

# ------------------------------------------------------------------------------------ the seed example


@dataclass
class LogEntry:
    message: str


async def test_seed_example_flushes_after_five_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    """The README example: two entries are flushed together five (virtual) seconds after the first."""
    flushed: list[tuple[float, list[LogEntry]]] = []

    async def flush_to_database(batch: list[LogEntry]) -> None:
        flushed.append((anyio.current_time(), batch))

    async def on_batch(batch: list[LogEntry]) -> None:
        print(f"Flushing {len(batch)} entries")
        await flush_to_database(batch)

    start = anyio.current_time()
    async with BatchingAtom(on_batch=on_batch, max_batch_size=100, flush_interval=timedelta(seconds=5)) as atom:
        atom.enqueue(LogEntry("User logged in"))
        atom.enqueue(LogEntry("Request received"))
        await anyio.sleep(4.999)
        assert flushed == []
        await anyio.sleep(10)
        assert [t - start for t, _ in flushed] == pytest.approx([5.0], abs=TICK)
        assert [[e.message for e in b] for _, b in flushed] == [["User logged in", "Request received"]]
    assert capsys.readouterr().out == "Flushing 2 entries\n"


async def test_seed_example_close_flushes_the_rest() -> None:
    """Leaving the block before the interval flushes the buffered entries at once."""
    recorder = Recorder()
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=100, flush_interval=timedelta(seconds=5)) as atom:
        atom.enqueue(LogEntry("User logged in"))
        atom.enqueue(LogEntry("Request received"))
    assert recorder.items == [LogEntry("User logged in"), LogEntry("Request received")]
    assert recorder.times == [start]
    assert atom.get_stats() == BatchingStats(batches=1, items=2, failures=0, pending=0, cancelled=0)


# ------------------------------------------------------------------------------------------- flushing


async def test_full_batches_flush_at_once_and_the_rest_on_time() -> None:
    """Seven items with batches of three: two full batches at once, the last one a full interval later."""
    recorder = Recorder()
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=3, flush_interval=2.0) as atom:
        for i in range(7):
            atom.enqueue(i)
        await anyio.sleep(1)
        assert recorder.batches == [[0, 1, 2], [3, 4, 5]]
        await anyio.sleep(60)
    assert recorder.batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert [t - start for t in recorder.times] == pytest.approx([0.0, 0.0, 2.0], abs=TICK)


async def test_the_interval_runs_from_the_first_item_of_each_batch() -> None:
    """A batch is due one interval after its first item; a later item does not push the deadline."""
    recorder = Recorder()
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=10, flush_interval=1.0) as atom:
        atom.enqueue("a")
        await anyio.sleep(0.75)
        atom.enqueue("b")
        await anyio.sleep(0.75)  # t = 1.5: [a, b] went at t = 1.0
        atom.enqueue("c")
        await anyio.sleep(5)
    assert recorder.batches == [["a", "b"], ["c"]]
    assert [t - start for t in recorder.times] == pytest.approx([1.0, 2.5], abs=TICK)


async def test_a_full_batch_restarts_the_timer_for_the_next() -> None:
    """After a batch is cut for size, the next batch's interval starts at its own first item."""
    recorder = Recorder()
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=2, flush_interval=1.0) as atom:
        atom.enqueue(1)
        await anyio.sleep(0.5)
        atom.enqueue(2)  # full at t = 0.5
        await anyio.sleep(0.25)
        atom.enqueue(3)  # due at t = 1.75, not at the old deadline t = 1.0
        await anyio.sleep(10)
    assert recorder.batches == [[1, 2], [3]]
    assert [t - start for t in recorder.times] == pytest.approx([0.5, 1.75], abs=TICK)


async def test_nothing_is_flushed_while_empty() -> None:
    """An idle atom delivers nothing, however long it lives, and flushes nothing empty on close."""
    recorder = Recorder()
    async with BatchingAtom(recorder, max_batch_size=5, flush_interval=0.1) as atom:
        await anyio.sleep(24 * 3600)
    assert recorder.batches == []
    assert atom.get_stats() == BatchingStats(0, 0, 0, 0, 0)


async def test_batches_are_delivered_in_order_one_at_a_time() -> None:
    """A slow on_batch never overlaps with the next, and batches arrive in the order they were cut."""
    recorder = Recorder(delay=1.0)
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=2, flush_interval=0.5) as atom:
        for i in range(9):
            atom.enqueue(i)
    assert recorder.batches == [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    assert recorder.probe.peak == 1
    assert [t - start for t in recorder.times] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=TICK)
    assert atom.stats() == AtomStats(pending=0, active=0, completed=5, failed=0)


async def test_a_late_batch_waits_behind_slow_ones() -> None:
    """A partial batch that comes due while earlier batches are still being delivered goes right after them."""
    recorder = Recorder(delay=3.0)
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=2, flush_interval=1.0) as atom:
        for i in range(5):
            atom.enqueue(i)
        await anyio.sleep(20)
    assert recorder.batches == [[0, 1], [2, 3], [4]]
    assert [t - start for t in recorder.times] == pytest.approx([0.0, 3.0, 6.0], abs=TICK)


async def test_backlog_beyond_the_coordinator_window_keeps_every_item_in_order() -> None:
    """More batches than the coordinator can queue wait in the atom and are all delivered, in order."""
    recorder = Recorder(delay=0.5)
    async with BatchingAtom(recorder, max_batch_size=1, flush_interval=1.0) as atom:
        for i in range(1000):
            atom.enqueue(i)
        assert atom.buffered_count > 0
        assert atom.get_stats().pending == 1000
    assert recorder.items == list(range(1000))
    assert atom.get_stats() == BatchingStats(batches=1000, items=1000, failures=0, pending=0, cancelled=0)


async def test_timedelta_and_float_intervals_agree() -> None:
    """flush_interval accepts seconds or a timedelta and reports seconds."""
    recorder = Recorder()
    atom = BatchingAtom(recorder, flush_interval=timedelta(milliseconds=250))
    assert atom.flush_interval == 0.25
    assert atom.max_batch_size == 32
    start = anyio.current_time()
    async with atom:
        atom.enqueue("x")
        await anyio.sleep(1)
    assert [t - start for t in recorder.times] == pytest.approx([0.25], abs=TICK)


@pytest.mark.real_time
async def test_the_timer_follows_the_real_clock() -> None:
    """On the real clock of either backend, a partial batch waits its interval, not less, and not much more."""
    recorder = Recorder()
    async with BatchingAtom(recorder, max_batch_size=10, flush_interval=0.2) as atom:
        start = anyio.current_time()
        atom.enqueue("x")
        await anyio.sleep(0.05)
        assert recorder.batches == []
        await anyio.sleep(1.0)
        assert recorder.batches == [["x"]]
    assert 0.2 <= recorder.times[0] - start < 1.0


# ------------------------------------------------------------------------------------------ bursts


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bursts=st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([0.0, 0.0, 0.1, 0.4, 1.0, 3.0])), min_size=1, max_size=12
    ),
    max_batch_size=st.integers(1, 7),
    delay=st.sampled_from([0.0, 0.05, 0.3, 2.0]),
)
async def test_bursts_lose_no_item(bursts: list[tuple[int, float]], max_batch_size: int, delay: float) -> None:
    """Any pattern of bursts and pauses delivers every item exactly once, in order, in bounded batches."""
    recorder = Recorder(delay=delay)
    count = 0
    async with BatchingAtom(recorder, max_batch_size=max_batch_size, flush_interval=0.5) as atom:
        for size, pause in bursts:
            for _ in range(size):
                atom.enqueue(count)
                count += 1
            stats = atom.get_stats()
            assert stats.items + stats.pending == count
            await anyio.sleep(pause)
    assert recorder.items == list(range(count))
    assert all(1 <= len(batch) <= max_batch_size for batch in recorder.batches)
    assert recorder.probe.peak <= 1
    stats = atom.get_stats()
    assert stats == BatchingStats(len(recorder.batches), count, 0, 0, 0)


# ---------------------------------------------------------------------------------------- failures


async def test_a_failing_batch_is_reported_and_later_batches_go_on(caplog: pytest.LogCaptureFixture) -> None:
    """on_batch raising is logged, counted, recorded with a batch.failed signal, and does not stop the atom."""
    recorder = Recorder(fail_on=frozenset({2}))
    sink = SignalSink()
    with caplog.at_level(logging.ERROR, logger="ephemeral.atoms.batching"):
        async with BatchingAtom(recorder, max_batch_size=3, flush_interval=1.0, signals=sink) as atom:
            for i in range(8):
                atom.enqueue(i)
            await anyio.sleep(5)
            assert sink.count("batch.failed:*") == 1
    assert recorder.batches == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert atom.get_stats() == BatchingStats(batches=3, items=8, failures=1, pending=0, cancelled=0)
    assert atom.stats() == AtomStats(0, 0, 2, 1)
    failed = [s for s in atom.snapshot() if s.is_faulted]
    assert len(failed) == 1
    assert isinstance(failed[0].error, OSError)
    assert [e.signal for e in failed[0].signals] == ["batch.failed:3"]
    assert [[e.signal for e in s.signals] for s in atom.snapshot()] == [
        ["batch.flushed:3"],
        ["batch.failed:3"],
        ["batch.flushed:2"],
    ]
    assert "batch of 3 items" in caplog.text
    assert "database down for batch 2" in caplog.text


async def test_every_batch_failing_still_flushes_all(caplog: pytest.LogCaptureFixture) -> None:
    """Even when on_batch always raises, every batch is attempted once and the close does not hang."""

    async def broken(items: list[int]) -> None:
        raise ValueError("nope")

    with caplog.at_level(logging.CRITICAL, logger="ephemeral.atoms.batching"):
        async with BatchingAtom(broken, max_batch_size=2, flush_interval=1.0) as atom:
            for i in range(5):
                atom.enqueue(i)
    assert atom.get_stats() == BatchingStats(batches=3, items=5, failures=3, pending=0, cancelled=0)


# ------------------------------------------------------------------------------------------ closing


async def test_close_waits_for_the_batch_in_flight_and_flushes_the_rest() -> None:
    """Leaving the block delivers the buffered partial batch after the one being delivered, and waits for both."""
    recorder = Recorder(delay=2.0)
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=2, flush_interval=10.0) as atom:
        atom.enqueue(1)
        atom.enqueue(2)
        atom.enqueue(3)
        await anyio.sleep(1)
    assert anyio.current_time() - start == 4.0
    assert recorder.batches == [[1, 2], [3]]
    assert [t - start for t in recorder.times] == pytest.approx([0.0, 2.0], abs=TICK)


async def test_drain_flushes_and_then_refuses_items() -> None:
    """drain() flushes the partial batch without waiting for the interval, then enqueue raises."""
    recorder = Recorder()
    start = anyio.current_time()
    async with BatchingAtom(recorder, max_batch_size=10, flush_interval=30.0) as atom:
        atom.enqueue("a")
        await atom.drain()
        assert anyio.current_time() == start
        assert recorder.batches == [["a"]]
        with pytest.raises(CoordinatorClosedError, match="no new items"):
            atom.enqueue("b")
        await atom.drain()  # idempotent


async def test_complete_stops_intake_and_still_delivers() -> None:
    """complete() refuses new items at once; buffered ones are still delivered."""
    recorder = Recorder()
    async with BatchingAtom(recorder, max_batch_size=10, flush_interval=30.0) as atom:
        atom.enqueue("a")
        atom.complete()
        atom.complete()
        with pytest.raises(CoordinatorClosedError):
            atom.enqueue("b")
    assert recorder.batches == [["a"]]


async def test_enqueue_after_close_raises() -> None:
    """Once the block is left, enqueue raises instead of silently buffering."""
    async with BatchingAtom(Recorder()) as atom:
        atom.enqueue(1)
    with pytest.raises(CoordinatorClosedError):
        atom.enqueue(2)


async def test_enqueue_and_drain_before_entering_raise() -> None:
    """An atom not entered with `async with` refuses items and drains."""
    atom: BatchingAtom[int] = BatchingAtom(Recorder())
    with pytest.raises(RuntimeError, match="async with"):
        atom.enqueue(1)
    with pytest.raises(RuntimeError, match="async with"):
        await atom.drain()


async def test_an_error_in_the_block_cancels_undelivered_items() -> None:
    """An exception leaving the block propagates unchanged; undelivered items are counted as cancelled."""
    recorder = Recorder(delay=5.0)
    with pytest.raises(KeyError, match="boom"):
        async with BatchingAtom(recorder, max_batch_size=2, flush_interval=1.0) as atom:
            for i in range(5):
                atom.enqueue(i)
            await anyio.sleep(1)
            raise KeyError("boom")
    assert recorder.batches == [[0, 1]]  # interrupted while being delivered: handed over, and failed
    assert atom.get_stats() == BatchingStats(batches=1, items=2, failures=1, pending=0, cancelled=3)
    with pytest.raises(CoordinatorClosedError):
        atom.enqueue(9)


async def test_a_coordinator_cancelled_directly_does_not_hang_the_atom(caplog: pytest.LogCaptureFixture) -> None:
    """Cancelling the underlying coordinator stops deliveries; the atom counts the rest as cancelled and closes."""
    recorder = Recorder(delay=1.0)
    with caplog.at_level(logging.WARNING, logger="ephemeral.atoms.batching"):
        async with BatchingAtom(recorder, max_batch_size=1, flush_interval=1.0) as atom:
            for i in range(300):
                atom.enqueue(i)
            await anyio.sleep(0.5)
            atom.coordinator.cancel()
    stats = atom.get_stats()
    assert stats.pending == 0
    assert stats.items + stats.cancelled == 300
    assert "will not be delivered" in caplog.text


async def test_signals_go_to_a_shared_sink() -> None:
    """With signals=, the batch signals are visible on the shared sink while the atom is open, one per batch."""
    sink = SignalSink()
    async with BatchingAtom(Recorder(), max_batch_size=2, flush_interval=1.0, signals=sink) as atom:
        for i in range(5):
            atom.enqueue(i)
        await atom.drain()
        signals = sorted(e.signal for e in sink.sense("batch.*"))
        assert signals == ["batch.flushed:1", "batch.flushed:2", "batch.flushed:2"]
    assert atom.signals is sink
    assert all(s.status is OperationStatus.COMPLETED for s in atom.snapshot())


# ------------------------------------------------------------------------------------------ arguments


def test_on_batch_must_be_callable() -> None:
    """A missing callback raises TypeError naming on_batch."""
    with pytest.raises(TypeError, match="on_batch"):
        BatchingAtom(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1])
def test_max_batch_size_must_be_positive(size: int) -> None:
    """max_batch_size below 1 raises ValueError naming it."""
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchingAtom(Recorder(), max_batch_size=size)


@pytest.mark.parametrize("size", [2.5, "10", True])
def test_max_batch_size_must_be_an_int(size: Any) -> None:
    """A non-int max_batch_size raises TypeError naming it."""
    with pytest.raises(TypeError, match="max_batch_size"):
        BatchingAtom(Recorder(), max_batch_size=size)


@pytest.mark.parametrize("interval", [0, -1.0, timedelta(0), float("nan")])
def test_flush_interval_must_be_positive(interval: Any) -> None:
    """A zero, negative or NaN flush_interval raises ValueError naming it."""
    with pytest.raises(ValueError, match="flush_interval"):
        BatchingAtom(Recorder(), flush_interval=interval)


def test_flush_interval_must_be_a_duration() -> None:
    """A flush_interval that is not seconds or a timedelta raises TypeError naming it."""
    with pytest.raises(TypeError, match="flush_interval"):
        BatchingAtom(Recorder(), flush_interval="5s")  # type: ignore[arg-type]


def test_signals_must_be_a_sink() -> None:
    """Anything but a SignalSink as signals raises TypeError naming it."""
    with pytest.raises(TypeError, match="signals"):
        BatchingAtom(Recorder(), signals="sink")  # type: ignore[arg-type]


def test_a_sync_on_batch_is_refused_naming_it() -> None:
    def plain(batch: list[int]) -> None:
        pass

    with pytest.raises(TypeError, match=r"on_batch must be an async function \(async def\), got <function"):
        BatchingAtom(plain)  # type: ignore[arg-type]
