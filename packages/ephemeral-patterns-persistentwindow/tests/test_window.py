"""PersistentSignalWindow: the in-memory window, writing to SQLite, restoring, failures and validation.

Every test runs on asyncio and trio on a virtual clock, against a real SQLite file in tmp_path. Windows get
a wall clock that follows the virtual one (``now=virtual_now``), so stored timestamps advance with virtual
sleeps. While a worker thread (SQLite) runs, the virtual clock may leap to the next deadline, so timing is
asserted only where no database call is in flight, and database work is awaited (or polled), never slept on.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    PatternSet,
    SignalEvent,
    SignalPropagation,
    current_operation,
)
from ephemeral.core.lowlevel import next_id
from ephemeral.core.testing import assert_lifecycle_faults
from ephemeral.patterns.persistentwindow import PersistentSignalWindow, WindowStats

#: The wall-clock moment virtual time 0 stands for.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = 3600.0


def virtual_now() -> datetime:
    return EPOCH + timedelta(seconds=anyio.current_time())


def open_window(path: Path | str, flush_interval: float = HOUR, **options: Any) -> PersistentSignalWindow:
    """A window on the virtual wall clock; with the default interval it writes only when asked or full.

    Signals live a day unless a test says otherwise: a database call in flight lets the virtual clock leap
    to the background task's next deadline (an hour away), which would age them past the default 10 minutes.
    """
    options.setdefault("now", virtual_now)
    options.setdefault("window_max_age", 24 * HOUR)
    return PersistentSignalWindow(path, flush_interval, **options)


def stored(path: Path, columns: str = 'signal, "key"') -> list[tuple[Any, ...]]:
    """The rows of the signals table, in id order."""
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(f"SELECT {columns} FROM signals ORDER BY id").fetchall()


def run_sql(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute(sql)
        connection.commit()


def on_disk(path: Path, action: Callable[[Path], object]) -> None:
    """Change the file system synchronously, on the loop's thread: done in a worker thread (anyio.Path), it
    would let the virtual clock leap to the background task's next write, which would race with it."""
    action(path)


REJECT_INSERTS = "CREATE TRIGGER reject BEFORE INSERT ON signals BEGIN SELECT RAISE(ABORT, 'rejected'); END"


def user_signals(window: PersistentSignalWindow) -> list[tuple[str, str | None]]:
    """The signals in the window that are not the window's own, as (name, key)."""
    return [(e.signal, e.key) for e in window.sense() if not e.signal.startswith("window.")]


class Watch:
    """Collects a window's signals matching globs (comma-separated), from now on; ``await reached(n)`` waits
    for the n-th.

    Waiting for a write's ``window.flush.start`` signal is how a test learns that the background task began
    writing: nothing runs in a thread before it, so a virtual timeout around that wait is safe. Its outcome
    (``window.flush.done`` or ``.error``) comes after a thread call, so that wait has no timeout (the clock
    would leap to it). ``await window.flush()`` also waits for a running write to finish: flushes take turns.
    """

    def __init__(self, window: PersistentSignalWindow, patterns: str) -> None:
        self.events: list[SignalEvent[Any]] = []
        self._glob = PatternSet(patterns)
        self._changed = anyio.Event()
        window.sink.subscribe(self._on_signal)

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        if self._glob.matches(event.signal):
            self.events.append(event)
            self._changed.set()
            self._changed = anyio.Event()

    async def reached(self, count: int) -> SignalEvent[Any]:
        while len(self.events) < count:
            await self._changed.wait()
        return self.events[count - 1]


def seconds_between(earlier: SignalEvent[Any], later: SignalEvent[Any]) -> float:
    return (later.timestamp - earlier.timestamp).total_seconds()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "signals.db"


# -- the in-memory window (ported from the deleted tests) ---------------------------------------------


async def test_sense_by_pattern(db: Path) -> None:
    """Emitted signals are sensed at once by glob; the window's own signals are all named window.*."""
    async with open_window(db) as window:
        window.emit("order.created")
        window.emit("order.shipped")
        window.emit("payment.completed")
        assert [e.signal for e in window.sense("order.*")] == ["order.created", "order.shipped"]
        assert [name for name, _ in user_signals(window)] == ["order.created", "order.shipped", "payment.completed"]


async def test_custom_event_keeps_its_name_key_operation_id_and_timestamp(db: Path) -> None:
    """A SignalEvent is recorded and written as given: name, key, operation id and timestamp."""
    moment = virtual_now() - timedelta(seconds=5)
    event: SignalEvent[Any] = SignalEvent("custom.event", 12345, "custom-key", moment)
    async with open_window(db) as window:
        assert window.emit(event) is event
        (sensed,) = window.sense("custom.*")
        assert (sensed.signal, sensed.key, sensed.operation_id, sensed.timestamp) == (
            "custom.event",
            "custom-key",
            12345,
            moment,
        )
        await window.flush()
    assert stored(db, 'operation_id, signal, "key", "timestamp"') == [
        (12345, "custom.event", "custom-key", moment.timestamp())
    ]


async def test_detect(db: Path) -> None:
    """detect is True for an emitted signal and False for one never emitted."""
    async with open_window(db) as window:
        window.emit("detect.me")
        assert window.detect("detect.me")
        assert window.detect("detect.*")
        assert not window.detect("nonexistent")


async def test_counts(db: Path) -> None:
    """count counts by pattern; four user signals in all."""
    async with open_window(db) as window:
        for name in ("count.a", "count.b", "count.c", "other.d"):
            window.emit(name)
        assert window.count("count.*") == 3
        assert window.count("other.*") == 1
        assert len(user_signals(window)) == 4
        assert window.count() == window.get_stats().in_memory_count


async def test_volume(db: Path) -> None:
    """100 signals with their keys are all sensed, and all written."""
    async with open_window(db) as window:
        for i in range(100):
            window.emit(f"volume.test.{i % 10}", key=f"key-{i}")
        assert len(window.sense("volume.test.*")) == 100
        assert window.sense("volume.test.7")[0].key == "key-7"
    assert stored(db) == [(f"volume.test.{i % 10}", f"key-{i}") for i in range(100)]


async def test_emit_returns_the_recorded_event(db: Path) -> None:
    """emit(name, key) builds an event with a fresh operation id and the window's current time."""
    async with open_window(db) as window:
        first = window.emit("a", key="k")
        second = window.emit("a")
        assert (first.signal, first.key, second.key) == ("a", "k", None)
        assert first.operation_id != second.operation_id
        assert first.timestamp == virtual_now()
        assert window.sense("a") == [first, second]


async def test_a_str_enum_member_is_stored_by_its_value(db: Path) -> None:
    """A str-valued Enum member is recorded and written as its plain value."""

    class Names(str, enum.Enum):
        PLACED = "order.placed"

    async with open_window(db) as window:
        assert window.emit(Names.PLACED).signal == "order.placed"
    assert stored(db) == [("order.placed", None)]


# -- writing ----------------------------------------------------------------------------------------


async def test_periodic_flush_waits_one_interval(db: Path) -> None:
    """The background task writes flush_interval after a signal arrives, not before; a flush signal is seen."""
    async with open_window(db, flush_interval=30) as window:
        starts = Watch(window, "window.flush.start:*")
        first = window.emit("periodic.0")
        window.emit("periodic.1")
        window.emit("periodic.2")
        await anyio.sleep(29.9)  # the task sleeps on its timer: no database call is in flight
        assert window.get_stats().last_flushed_id == 0
        assert window.get_stats().pending_flush == 3
        with anyio.fail_after(1):
            start = await starts.reached(1)
        assert seconds_between(first, start) == pytest.approx(30, abs=0.01)
        assert start.signal == "window.flush.start:3"
        assert await window.flush() == 0  # waits for the background write, which took all three
        assert window.get_stats().last_flushed_id == 3
        assert window.detect("window.flush.done:3")
    assert stored(db) == [(f"periodic.{i}", None) for i in range(3)]


async def test_an_idle_window_never_touches_the_disk(db: Path) -> None:
    """With nothing emitted, a day passes without a write: the database is not even created."""
    async with open_window(db, flush_interval=1) as window:
        await anyio.sleep(24 * HOUR)
        assert window.get_stats().last_flushed_id == 0
    assert not await anyio.Path(db).exists()


async def test_manual_flush(db: Path) -> None:
    """With a one-hour interval nothing is written until flush(), which writes everything and returns the count."""
    async with open_window(db) as window:
        for i in range(3):
            window.emit(f"manual.{i}")
        await anyio.sleep(60)
        assert window.get_stats().last_flushed_id == 0
        assert await window.flush() == 3
        assert window.get_stats().last_flushed_id == 3  # the row id of the last row written
        assert await window.flush() == 0
    assert stored(db) == [("manual.0", None), ("manual.1", None), ("manual.2", None)]


async def test_flush_on_close(db: Path) -> None:
    """Leaving the block writes every signal still queued."""
    async with open_window(db) as window:
        for i in range(5):
            window.emit(f"close.{i}", key=str(i))
        assert window.get_stats().pending_flush == 5
    assert stored(db) == [(f"close.{i}", str(i)) for i in range(5)]
    assert window.get_stats() == WindowStats(
        in_memory_count=window.count(),
        total_emitted=5,
        last_flushed_id=5,
        pending_flush=0,
        total_flushed=5,
        dropped=0,
    )


async def test_a_full_chunk_is_written_before_the_interval(db: Path) -> None:
    """Once max_signals_per_flush are queued they are written at once; a partial chunk waits for the interval."""
    async with open_window(db, flush_interval=HOUR, max_signals_per_flush=10) as window:
        starts = Watch(window, "window.flush.start:*")
        first = window.emit("full.0")
        for i in range(1, 10):
            window.emit(f"full.{i}")
        with anyio.fail_after(1):
            start = await starts.reached(1)
        assert seconds_between(first, start) == 0
        assert await window.flush() == 0
        assert window.get_stats().total_flushed == 10
        for i in range(3):
            window.emit(f"partial.{i}")
        await anyio.sleep(60)
        assert window.get_stats().pending_flush == 3


async def test_writes_go_in_chunks_in_emission_order(db: Path) -> None:
    """35 signals with max_signals_per_flush=10 go in transactions of 10, 10, 10 and 5, in order."""
    async with open_window(db, max_signals_per_flush=10, sample_rate=1) as window:
        for i in range(35):
            window.emit(f"chunk.{i}")
        await window.flush()
        assert [e.signal for e in window.sense("window.flush.done:*")] == [
            "window.flush.done:10",
            "window.flush.done:10",
            "window.flush.done:10",
            "window.flush.done:5",
        ]
        assert window.get_stats().total_flushed == 35
    assert stored(db) == [(f"chunk.{i}", None) for i in range(35)]


async def test_sample_rate_samples_the_flush_signals(db: Path) -> None:
    """With sample_rate=3, the 1st, 4th and 7th transactions emit window.flush.start and .done."""
    async with open_window(db, max_signals_per_flush=1, sample_rate=3) as window:
        for i in range(7):
            window.emit(f"sampled.{i}")
        assert await window.flush() == 7
        assert window.count("window.flush.start:1") == 3
        assert window.count("window.flush.done:1") == 3


async def test_payload_and_propagation_are_not_stored(db: Path) -> None:
    """A typed event's payload and propagation path stay in memory; the restored event has neither."""
    event: SignalEvent[Any] = SignalEvent(
        "typed.event", 5, "k", virtual_now(), SignalPropagation(("cause", "typed.event")), {"amount": 3}
    )
    async with open_window(db) as window:
        assert window.emit(event).payload == {"amount": 3}
    async with open_window(db) as window:
        await window.load_from_disk()
        (restored,) = window.sense("typed.*")
    assert (restored.operation_id, restored.key, restored.payload, restored.propagation) == (5, "k", None, None)


async def test_signals_sharing_an_operation_id_are_all_written(db: Path) -> None:
    """Signals of one operation (same id) are each written; the original kept only the first."""
    operation = next_id()
    async with open_window(db) as window:
        for name in ("step.start", "step.progress", "step.progress", "window.raise"):
            window.emit(SignalEvent(name, operation, "job-1", virtual_now()))
    assert stored(db, "operation_id, signal") == [
        (operation, "step.start"),
        (operation, "step.progress"),
        (operation, "step.progress"),
        (operation, "window.raise"),
    ]


async def test_signals_evicted_from_memory_are_still_written(db: Path) -> None:
    """More signals than max_window_size between two flushes: the window keeps 10, the file gets all 50."""
    async with open_window(db, max_window_size=10) as window:
        for i in range(50):
            window.emit(f"evicted.{i}")
        assert window.count("evicted.*") == 10
        assert window.get_stats().pending_flush == 50
        assert await window.flush() == 50
    assert stored(db) == [(f"evicted.{i}", None) for i in range(50)]


async def test_emit_from_other_threads(db: Path) -> None:
    """Signals emitted from worker threads are all written, each thread's in its own order."""
    async with open_window(db) as window:

        def emit_many(thread: int) -> None:
            for i in range(250):
                window.emit(f"thread.{thread}", key=str(i))

        async with anyio.create_task_group() as tg:
            for thread in range(4):
                tg.start_soon(anyio.to_thread.run_sync, emit_many, thread)
        assert window.get_stats().total_emitted == 1000
    rows = stored(db)
    assert len(rows) == 1000
    for thread in range(4):
        assert [key for name, key in rows if name == f"thread.{thread}"] == [str(i) for i in range(250)]


@pytest.mark.real_time
async def test_an_emit_from_another_thread_wakes_the_background_task(db: Path) -> None:
    """A first signal emitted off the loop's thread still starts the interval timer (real time: thread race)."""
    async with PersistentSignalWindow(db, flush_interval=0.05) as window:
        starts = Watch(window, "window.flush.start:*")
        await anyio.to_thread.run_sync(window.emit, "from.thread")
        with anyio.fail_after(5):
            await starts.reached(1)
        assert await window.flush() == 0
        assert window.get_stats().total_flushed == 1


async def test_the_schema(db: Path) -> None:
    """The table has the documented columns, REAL timestamps, both indexes, and the file is in WAL mode."""
    async with open_window(db) as window:
        window.emit("schema.check")
        await window.flush()
    with closing(sqlite3.connect(db)) as connection:
        columns = {row[1]: row[2] for row in connection.execute("PRAGMA table_info(signals)")}
        indexes = {row[1] for row in connection.execute("PRAGMA index_list(signals)")}
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        (kind, created) = connection.execute('SELECT typeof("timestamp"), typeof(created_at) FROM signals').fetchone()
    assert columns == {
        "id": "INTEGER",
        "operation_id": "INTEGER",
        "signal": "TEXT",
        "key": "TEXT",
        "timestamp": "REAL",
        "created_at": "REAL",
    }
    assert {"idx_signals_timestamp", "idx_signals_signal"} <= indexes
    assert (mode, kind, created) == ("wal", "real", "real")
    assert window.detect("window.initialized")


# -- restoring --------------------------------------------------------------------------------------


async def test_load_after_restart(db: Path) -> None:
    """Signals written by one window are restored by the next (ported)."""
    async with open_window(db) as first:
        first.emit("persistent.signal.1")
        first.emit("persistent.signal.2")
        await first.flush()
    async with open_window(db) as second:
        assert await second.load_from_disk() == 2
        assert len(second.sense("persistent.*")) == 2
        assert second.detect("window.load.done:2")


async def test_signals_of_everything_sharing_the_sink_are_written_and_restored(db: Path) -> None:
    """A coordinator given ``signals=window.sink`` and plain ``window.sink.emit`` calls are persisted like
    ``window.emit``; the window's own signals and restored ones are not written again."""

    async def work(order: str) -> None:
        current_operation().emit(f"order.paid.{order}")

    async with open_window(db) as first:
        first.emit("order.created", key="o-1")
        first.sink.emit("audit.viewed", key="o-1")
        options = EphemeralOptions(max_concurrency=2, signals=first.sink)
        async with EphemeralWorkCoordinator(work, options) as coordinator:
            for order in ("o-1", "o-2", "o-3"):
                await coordinator.enqueue(order)
        await first.flush()
    rows = stored(db)
    assert rows[:2] == [("order.created", "o-1"), ("audit.viewed", "o-1")]
    assert sorted(rows[2:]) == [("order.paid.o-1", None), ("order.paid.o-2", None), ("order.paid.o-3", None)]
    async with open_window(db) as second:
        assert await second.load_from_disk() == 5
        assert sorted(user_signals(second)) == sorted(rows)
    assert len(stored(db)) == 5  # restoring wrote nothing; the window's own signals were never written


async def test_load_with_a_tiny_max_age_loads_nothing(db: Path) -> None:
    """Signals 100 ms old are not restored with max_age=1 ms (ported)."""
    async with open_window(db) as first:
        first.emit("old.signal")
    await anyio.sleep(0.1)
    async with open_window(db) as second:
        assert await second.load_from_disk(max_age=timedelta(milliseconds=1)) == 0
        assert second.sense("old.*") == []
        assert second.detect("window.load.done:0")


async def test_restored_signals_keep_name_key_operation_id_timestamp_and_order(db: Path) -> None:
    """Each signal comes back as it was emitted, in emission order."""
    async with open_window(db) as first:
        emitted = [first.emit(f"restore.{i}", key=f"k{i}") for i in range(5)]
        emitted.append(first.emit(SignalEvent("restore.custom", 777, None, virtual_now() - timedelta(seconds=1))))
    await anyio.sleep(1)
    async with open_window(db) as second:
        assert await second.load_from_disk() == 6
        restored = second.sense("restore.*")
    assert [(e.signal, e.key, e.operation_id, e.timestamp) for e in restored] == [
        (e.signal, e.key, e.operation_id, e.timestamp) for e in emitted
    ]


async def test_restart_twice_every_signal_exactly_once(db: Path) -> None:
    """emit, close, reopen and load, emit more, close, reopen and load: each signal once on disk and in memory."""
    first_run = [(f"run1.{i}", f"a{i}") for i in range(5)]
    second_run = [(f"run2.{i}", f"b{i}") for i in range(5)]
    async with open_window(db) as window:
        for name, key in first_run:
            window.emit(name, key=key)
    await anyio.sleep(1)
    async with open_window(db) as window:
        assert await window.load_from_disk(max_age=timedelta(hours=24)) == 5
        for name, key in second_run:
            window.emit(name, key=key)
        assert user_signals(window) == first_run + second_run
    await anyio.sleep(1)
    async with open_window(db) as window:
        assert await window.load_from_disk(max_age=timedelta(hours=24)) == 10
        assert await window.load_from_disk(max_age=timedelta(hours=24)) == 0  # a second load adds nothing
        assert user_signals(window) == first_run + second_run
        assert window.get_stats().total_emitted == 0
    assert stored(db) == first_run + second_run


async def test_restored_signals_are_not_written_again(db: Path) -> None:
    """Loading and closing leaves the file as it was, and the loaded signals are never queued."""
    async with open_window(db) as window:
        window.emit("once")
    async with open_window(db) as window:
        await window.load_from_disk()
        assert window.get_stats().pending_flush == 0
        await window.flush()
    assert stored(db) == [("once", None)]


async def test_load_skips_what_this_window_wrote(db: Path) -> None:
    """A load after this window's own writes restores none of them (they are already in memory)."""
    async with open_window(db) as window:
        for i in range(3):
            window.emit(f"own.{i}")
        await window.flush()
        assert await window.load_from_disk() == 0
        assert len(user_signals(window)) == 3


async def test_restored_signals_age_from_their_original_timestamp(db: Path) -> None:
    """A restored signal leaves the window window_max_age after it was first emitted, not after the load."""
    async with open_window(db, window_max_age=600) as window:
        window.emit("aged.old")
        await anyio.sleep(250)
        window.emit("aged.new")
    await anyio.sleep(250)
    async with open_window(db, window_max_age=600) as window:
        assert await window.load_from_disk() == 2
        assert [e.signal for e in window.sense("aged.*", within=300)] == ["aged.new"]
        await anyio.sleep(101)  # "aged.old" is now 601 s old
        assert [e.signal for e in window.sense("aged.*")] == ["aged.new"]


async def test_signals_older_than_the_window_are_not_restored(db: Path) -> None:
    """Whatever max_age asks for, signals older than window_max_age would be invisible: they are skipped."""
    async with open_window(db, window_max_age=600) as window:
        window.emit("stale")
    await anyio.sleep(700)
    async with open_window(db, window_max_age=600) as window:
        assert await window.load_from_disk(max_age=timedelta(hours=24)) == 0
        assert window.sense("stale") == []


async def test_load_compares_time_not_strings(db: Path) -> None:
    """Timestamps in other time zones are compared as instants (the original compared ISO strings)."""
    now = virtual_now()
    recent_far_east = (now - timedelta(seconds=10)).astimezone(timezone(timedelta(hours=14)))
    old_far_west = (now - timedelta(seconds=500)).astimezone(timezone(timedelta(hours=-12)))
    async with open_window(db) as window:
        window.emit(SignalEvent("tz.old", next_id(), None, old_far_west))
        window.emit(SignalEvent("tz.recent", next_id(), None, recent_far_east))
    async with open_window(db) as window:
        assert await window.load_from_disk(max_age=60) == 1
        (restored,) = window.sense("tz.*")
        assert (restored.signal, restored.timestamp) == ("tz.recent", recent_far_east)


async def test_load_restores_at_most_the_window_size_newest(db: Path) -> None:
    """A window of 10 restores the 10 newest signals (its own signals share the 10 places, so the oldest
    restored one makes way for window.load.done)."""
    async with open_window(db) as window:
        for i in range(30):
            window.emit(f"many.{i}")
    async with open_window(db, max_window_size=10) as window:
        assert await window.load_from_disk() == 10
        assert [e.signal for e in window.sense()] == [f"many.{i}" for i in range(21, 30)] + ["window.load.done:10"]


# -- failures ---------------------------------------------------------------------------------------


OUTCOMES = "window.flush.done:*,window.flush.error:*"


async def test_a_rejected_write_is_signalled_kept_and_retried(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A failed background write is signalled and logged, its signals stay queued, and it is retried one
    interval later (not at once, though a full chunk waits); once the cause is gone everything is written."""
    async with open_window(db, flush_interval=30, max_signals_per_flush=2, sample_rate=1) as window:
        window.emit("before")
        await window.flush()
        run_sql(db, REJECT_INSERTS)
        starts, outcomes = Watch(window, "window.flush.start:*"), Watch(window, OUTCOMES)
        first = window.emit("during.0")
        window.emit("during.1")  # a full chunk: the task writes at once
        window.emit("during.2")
        with anyio.fail_after(1):
            attempt = await starts.reached(1)
        assert seconds_between(first, attempt) == 0
        failure = await outcomes.reached(1)
        assert failure.signal == "window.flush.error:IntegrityError"
        assert window.get_stats().pending_flush == 3
        assert "writing the signal window failed (IntegrityError); 3 signals stay queued" in caplog.text
        with anyio.fail_after(31):
            retry = await starts.reached(2)
        assert seconds_between(failure, retry) == pytest.approx(30, abs=0.01)
        assert (await outcomes.reached(2)).signal == "window.flush.error:IntegrityError"
        run_sql(db, "DROP TRIGGER reject")
        with anyio.fail_after(31):
            await starts.reached(3)
        assert (await outcomes.reached(3)).signal == "window.flush.done:2"
        assert await window.flush() == 0
        assert window.get_stats().pending_flush == 0
    assert stored(db) == [("before", None), ("during.0", None), ("during.1", None), ("during.2", None)]


async def test_a_failed_manual_flush_raises_and_keeps_the_signals(db: Path) -> None:
    """flush() raises the database's error, signals it, and loses nothing: a later flush writes it all once."""
    async with open_window(db) as window:
        window.emit("before")
        await window.flush()
        run_sql(db, REJECT_INSERTS)
        window.emit("kept.0")
        window.emit("kept.1")
        with pytest.raises(sqlite3.IntegrityError):
            await window.flush()
        assert window.detect("window.flush.error:IntegrityError")
        assert window.get_stats().pending_flush == 2
        run_sql(db, "DROP TRIGGER reject")
        await window.flush()
        assert window.get_stats().pending_flush == 0
    assert stored(db) == [("before", None), ("kept.0", None), ("kept.1", None)]


async def test_a_corrupt_file_is_signalled_and_recovered(db: Path) -> None:
    """On a file that is not a database, loading raises, the window works in memory and each failed write is
    signalled; once the file is gone, the next write creates the database and writes everything."""
    on_disk(db, lambda path: path.write_bytes(b"this is not a database, " * 200))
    async with open_window(db, flush_interval=30, sample_rate=1) as window:
        starts, outcomes = Watch(window, "window.flush.start:*"), Watch(window, OUTCOMES)
        with pytest.raises(sqlite3.DatabaseError):
            await window.load_from_disk()
        for i in range(3):
            window.emit(f"kept.{i}")
        with anyio.fail_after(31):
            await starts.reached(1)
        assert (await outcomes.reached(1)).signal == "window.flush.error:DatabaseError"
        assert window.count("kept.*") == 3
        assert window.get_stats().pending_flush == 3
        on_disk(db, Path.unlink)
        with anyio.fail_after(31):
            await starts.reached(2)
        assert (await outcomes.reached(2)).signal == "window.flush.done:3"
        assert window.get_stats().pending_flush == 0
    assert stored(db) == [("kept.0", None), ("kept.1", None), ("kept.2", None)]


async def test_an_unopenable_path_is_signalled_and_recovered(db: Path) -> None:
    """A path that is a directory fails each write (signalled); once it is removed the next write succeeds."""
    on_disk(db, Path.mkdir)
    async with open_window(db, flush_interval=30, sample_rate=1) as window:
        starts, outcomes = Watch(window, "window.flush.start:*"), Watch(window, OUTCOMES)
        window.emit("waiting")
        with anyio.fail_after(31):
            await starts.reached(1)
        assert (await outcomes.reached(1)).signal == "window.flush.error:OperationalError"
        assert window.get_stats().pending_flush == 1
        on_disk(db, Path.rmdir)
        with anyio.fail_after(31):
            await starts.reached(2)
        assert (await outcomes.reached(2)).signal == "window.flush.done:1"
    assert stored(db) == [("waiting", None)]


async def test_a_failed_final_flush_raises_and_leaves_the_signals_counted(db: Path) -> None:
    """When the last write fails, leaving the block raises it and the stats still account for every signal."""
    window = open_window(db)
    with pytest.raises(sqlite3.IntegrityError):
        async with window:
            window.emit("written")
            await window.flush()
            run_sql(db, REJECT_INSERTS)
            window.emit("lost.0")
            window.emit("lost.1")
    stats = window.get_stats()
    assert (stats.total_emitted, stats.total_flushed, stats.pending_flush) == (3, 1, 2)
    assert window.detect("window.flush.error:IntegrityError")


async def test_a_failed_final_flush_does_not_hide_the_blocks_exception(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception leaving the block propagates; the failed final write is logged instead."""
    with pytest.raises(KeyError, match="boom"):
        async with open_window(db) as window:
            window.emit("written")
            await window.flush()
            run_sql(db, REJECT_INSERTS)
            window.emit("lost")
            raise KeyError("boom")
    assert "the final flush failed; 1 signals were not written" in caplog.text
    assert window.get_stats().pending_flush == 1


async def test_a_cancelled_flush_still_accounts_for_the_chunk_it_wrote(db: Path) -> None:
    """Cancelling a flush while it writes neither loses nor duplicates the chunk."""
    async with open_window(db, sample_rate=1) as window:
        for i in range(5):
            window.emit(f"cancel.{i}")
        with anyio.CancelScope() as scope:

            def cancel_on_write(event: SignalEvent[Any]) -> None:
                if event.signal.startswith("window.flush.start"):
                    scope.cancel()

            subscription = window.sink.subscribe(cancel_on_write)
            await window.flush()
            await anyio.sleep(1)
        subscription.close()
        assert scope.cancel_called
        assert window.get_stats().pending_flush == 0
    assert stored(db) == [(f"cancel.{i}", None) for i in range(5)]


async def test_a_full_queue_keeps_signals_in_memory_counts_and_signals_once(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Beyond max_pending, signals stay in memory only, are counted as dropped, and window.pending.full is
    emitted once per episode."""
    async with open_window(db, max_pending=5) as window:
        for i in range(8):
            window.emit(f"burst.{i}")
        stats = window.get_stats()
        assert (stats.total_emitted, stats.pending_flush, stats.dropped) == (8, 5, 3)
        assert window.count("burst.*") == 8
        assert window.count("window.pending.full") == 1
        assert "5 signals are waiting to be written; new signals stay in memory only" in caplog.text
        assert await window.flush() == 5
        window.emit("after")
        for i in range(5):
            window.emit(f"again.{i}")
        assert window.count("window.pending.full") == 2
        stats = window.get_stats()
    assert stats.total_emitted == stats.total_flushed + stats.pending_flush + stats.dropped
    assert [name for name, _ in stored(db)] == [f"burst.{i}" for i in range(5)] + ["after"] + [
        f"again.{i}" for i in range(4)
    ]


# -- validation and lifecycle -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "field"),
    [
        ({"flush_interval": 0}, ValueError, "flush_interval"),
        ({"flush_interval": -1.0}, ValueError, "flush_interval"),
        ({"flush_interval": "30"}, TypeError, "flush_interval"),
        ({"max_signals_per_flush": 0}, ValueError, "max_signals_per_flush"),
        ({"max_signals_per_flush": 1.5}, TypeError, "max_signals_per_flush"),
        ({"max_signals_per_flush": True}, TypeError, "max_signals_per_flush"),
        ({"max_window_size": 0}, ValueError, "max_window_size"),
        ({"window_max_age": 0}, ValueError, "window_max_age"),
        ({"window_max_age": timedelta(seconds=-1)}, ValueError, "window_max_age"),
        ({"sample_rate": 0}, ValueError, "sample_rate"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"now": "utc"}, TypeError, "now"),
        ({"now": datetime.now}, ValueError, "now"),  # naive datetimes
        ({"path": ""}, ValueError, "path"),
        ({"path": 42}, TypeError, "path"),
        ({"path": "Data Source="}, ValueError, "path"),
        ({"path": "Data Source=x.db;Bogus=1"}, ValueError, "path"),
        ({"path": "Data Source=x.db;Mode=ReadOnly"}, ValueError, "path"),
    ],
)
def test_constructor_validation(tmp_path: Path, arguments: dict[str, Any], error: type[Exception], field: str) -> None:
    """Bad arguments raise at construction, naming the argument."""
    arguments = {"path": tmp_path / "signals.db", **arguments}
    with pytest.raises(error, match=field):
        PersistentSignalWindow(**arguments)


def test_durations_accept_seconds_and_timedelta(db: Path) -> None:
    """flush_interval and window_max_age take seconds or a timedelta; a Data Source string names the file."""
    window = PersistentSignalWindow(f"Data Source={db}", timedelta(minutes=2), window_max_age=timedelta(hours=1))
    assert window.flush_interval == 120.0
    assert window.sink.max_age == 3600.0
    assert window.database == str(db.resolve())


async def test_emit_rejects_bad_input_and_records_nothing(db: Path) -> None:
    """Bad arguments to emit raise at the call; nothing is recorded or queued."""
    async with open_window(db) as window:
        with pytest.raises(TypeError, match="signal"):
            window.emit(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="signal"):
            window.emit("")
        with pytest.raises(TypeError, match="key"):
            window.emit("x", key=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key"):
            window.emit(SignalEvent("x", 1, None, virtual_now()), key="k")
        with pytest.raises(ValueError, match="timezone-aware"):
            window.emit(SignalEvent("x", 1, None, datetime(2026, 1, 1)))
        with pytest.raises(ValueError, match="max_age"):
            await window.load_from_disk(max_age=0)
        with pytest.raises(TypeError, match="max_age"):
            await window.load_from_disk(max_age="1h")  # type: ignore[arg-type]
        assert window.get_stats() == WindowStats(0, 0, 0, 0, 0, 0)


async def test_lifecycle_faults(tmp_path: Path) -> None:
    """An error or an outer deadline in the block stops the background task and still writes what was
    emitted; a window is entered once."""
    made: list[Path] = []

    def make() -> PersistentSignalWindow:
        made.append(tmp_path / f"faults{len(made)}.db")
        return open_window(made[-1], flush_interval=0.5)

    async def use(window: PersistentSignalWindow) -> None:
        for name in ("a", "b", "c"):
            window.emit(name)
        await anyio.sleep(0.1)

    await assert_lifecycle_faults(make, use)
    assert [stored(path) for path in made[:2]] == [[("a", None), ("b", None), ("c", None)]] * 2


async def test_the_window_must_be_entered_once_and_refuses_work_after_closing(db: Path) -> None:
    """emit, flush and load need `async with`; a window is entered once; after it, they raise; reads still work."""
    window = open_window(db)
    with pytest.raises(RuntimeError, match="enter the window"):
        window.emit("early")
    with pytest.raises(RuntimeError, match="enter the window"):
        await window.flush()
    with pytest.raises(RuntimeError, match="enter the window"):
        await window.load_from_disk()
    async with window:
        window.emit("inside")
        with pytest.raises(RuntimeError, match="once"):
            await window.__aenter__()
    with pytest.raises(CoordinatorClosedError, match="PersistentSignalWindow is closed"):
        window.emit("late")
    with pytest.raises(CoordinatorClosedError, match="PersistentSignalWindow is closed"):
        await window.flush()
    with pytest.raises(CoordinatorClosedError, match="PersistentSignalWindow is closed"):
        await window.load_from_disk()
    assert [name for name, _ in user_signals(window)] == ["inside"]
    assert window.get_stats().total_emitted == 1
    assert "closed" in repr(window)
    assert stored(db) == [("inside", None)]
