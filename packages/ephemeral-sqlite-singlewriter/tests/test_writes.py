"""Writes: FIFO order on one connection, errors to the caller, transactions, parameters, records, sampling."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio
import pytest

from ephemeral.core import CoordinatorClosedError
from ephemeral.sqlite.singlewriter import (
    SqliteConnection,
    SqliteSingleWriter,
    SqliteSingleWriterOptions,
    SqliteWriteRecord,
)


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteSingleWriter]:
    async with SqliteSingleWriter(tmp_path / "w.db") as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER UNIQUE)")
        yield writer


async def values(writer: SqliteSingleWriter) -> list[int]:
    async def reader(connection: SqliteConnection) -> list[int]:
        return [row[0] for row in await connection.execute_fetchall("SELECT value FROM items ORDER BY id")]

    return await writer.query(reader)


class Blocker:
    """A transaction that holds the writer in its thread until released, so other writes queue behind it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def work(self, connection: sqlite3.Connection) -> str:
        self.entered.set()
        assert self.release.wait(10), "the test never released the blocking transaction"
        return "released"

    async def hold(self, writer: SqliteSingleWriter, task_status: anyio.abc.TaskStatus[None]) -> None:
        done = writer.execute_in_transaction(self.work)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_await, done)
            await anyio.to_thread.run_sync(self.entered.wait, 10)
            task_status.started()


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable


async def test_concurrent_writes_run_in_call_order(writer: SqliteSingleWriter) -> None:
    """Writes called from many tasks while the writer is busy all queue and land in the order they were called."""
    blocker = Blocker()
    called: list[int] = []
    all_called = anyio.Event()
    count = 40

    async def insert(value: int) -> None:
        called.append(value)  # no await between this and joining the writer's queue
        if len(called) == count:
            all_called.set()
        assert await writer.write("INSERT INTO items (value) VALUES (?)", (value,)) == 1

    async with anyio.create_task_group() as tg:
        await tg.start(blocker.hold, writer)
        for value in range(count):
            tg.start_soon(insert, value)
        await all_called.wait()
        assert writer.get_stats().pending_writes == count + 1  # all queued behind the blocker
        blocker.release.set()
    assert await values(writer) == called
    assert sorted(called) == list(range(count))
    assert writer.get_stats().pending_writes == 0
    assert [record.write_id for record in writer.get_write_snapshot()][-count:] == list(range(3, count + 3))


async def test_failing_write_raises_unchanged_and_later_writes_carry_on(writer: SqliteSingleWriter) -> None:
    """A constraint violation raises sqlite3.IntegrityError to its caller; the next write still works."""
    await writer.write("INSERT INTO items (value) VALUES (?)", (1,))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        await writer.write("INSERT INTO items (value) VALUES (?)", (1,))
    assert await writer.write("INSERT INTO items (value) VALUES (?)", (2,)) == 1
    assert await values(writer) == [1, 2]
    stats = writer.get_stats()
    assert (stats.writes, stats.write_errors, stats.rows_written) == (3, 1, 2)  # CREATE TABLE counts, 0 rows
    failed = [record for record in writer.get_write_snapshot() if record.failed]
    assert [(record.kind, record.rows, record.error) for record in failed] == [("write", 0, "IntegrityError")]


async def test_error_signals_name_the_class_never_the_message_or_sql(writer: SqliteSingleWriter) -> None:
    """Error signals carry the exception class; no signal name carries SQL text, values or the message."""
    await writer.write("INSERT INTO items (value) VALUES (?)", (4242,))
    with pytest.raises(sqlite3.IntegrityError):
        await writer.write("INSERT INTO items (value) VALUES (?)", (4242,))
    with pytest.raises(sqlite3.OperationalError):
        await writer.write_batch([("INSERT INTO nowhere VALUES (1)", None)])
    names = [event.signal for event in writer.get_signals()]
    assert "write.error:IntegrityError" in names
    assert "write.batch.error:OperationalError" in names
    for name in names:
        assert "INSERT" not in name and "4242" not in name and "UNIQUE" not in name and "nowhere" not in name


async def test_rows_returned_per_kind(writer: SqliteSingleWriter) -> None:
    """write returns the rows changed (0 for DDL), write_batch and write_many the total, transactions count
    the rows they changed."""
    assert await writer.write("CREATE TABLE other (x)") == 0
    assert await writer.write_many("INSERT INTO items (value) VALUES (?)", [(1,), (2,), (3,)]) == 3
    assert await writer.write("UPDATE items SET value = value + 10") == 3
    batch = [("DELETE FROM items WHERE value = ?", (11,)), ("INSERT INTO items (value) VALUES (?)", (5,))]
    assert await writer.write_batch(batch) == 2

    def work(connection: sqlite3.Connection) -> str:
        connection.execute("DELETE FROM items")
        return "emptied"

    assert await writer.execute_in_transaction(work) == "emptied"
    snapshot = writer.get_write_snapshot()
    assert [(record.kind, record.rows) for record in snapshot[-5:]] == [
        ("write", 0),
        ("write.many", 3),
        ("write", 3),
        ("write.batch", 2),
        ("write.transaction", 3),
    ]
    assert all(record.duration >= 0 for record in snapshot)


async def test_write_many_is_one_transaction(writer: SqliteSingleWriter) -> None:
    """write_many rolls every row back when one fails."""
    with pytest.raises(sqlite3.IntegrityError):
        await writer.write_many("INSERT INTO items (value) VALUES (?)", [(1,), (2,), (1,)])
    assert await values(writer) == []


async def test_empty_batches_return_zero_without_queueing(writer: SqliteSingleWriter) -> None:
    """An empty write_batch or write_many returns 0 and runs nothing."""
    before = len(writer.get_write_snapshot())
    assert await writer.write_batch([]) == 0
    assert await writer.write_many("INSERT INTO items (value) VALUES (?)", []) == 0
    assert len(writer.get_write_snapshot()) == before


async def test_bad_batch_item_is_refused_before_any_sql(writer: SqliteSingleWriter) -> None:
    """A malformed batch item raises TypeError naming it, and no item of the batch runs."""
    with pytest.raises(TypeError, match=r"items\[1\]"):
        await writer.write_batch([("INSERT INTO items (value) VALUES (?)", (1,)), "INSERT INTO items VALUES (2)"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"items\[0\] params"):
        await writer.write_batch([("INSERT INTO items (value) VALUES (?)", "1")])
    with pytest.raises(TypeError, match="transactional"):
        await writer.write_batch([("SELECT 1", None)], transactional="yes")  # type: ignore[arg-type]
    assert await values(writer) == []


async def test_parameters(writer: SqliteSingleWriter) -> None:
    """Parameters bind as a sequence for ? or any mapping for :name; a str, bytes or number is refused
    with TypeError at the call."""
    await writer.write("INSERT INTO items (value) VALUES (?)", [1])
    await writer.write("INSERT INTO items (value) VALUES (:value)", {"value": 2})
    await writer.write("INSERT INTO items (value) VALUES (:value)", MappingProxyType({"value": 3}))
    await writer.write_many("INSERT INTO items (value) VALUES (:v)", [MappingProxyType({"v": 4})])
    assert await values(writer) == [1, 2, 3, 4]
    with pytest.raises(TypeError, match=r"params must be a sequence or a mapping, not str"):
        await writer.write("INSERT INTO items (value) VALUES (?)", "5")
    with pytest.raises(TypeError, match="params"):
        await writer.write("INSERT INTO items (value) VALUES (?)", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rows_params\[1\]"):
        await writer.write_many("INSERT INTO items (value) VALUES (?)", [(6,), b"7"])
    with pytest.raises(TypeError, match="sql"):
        await writer.write(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sql"):
        await writer.write("   ")
    assert await values(writer) == [1, 2, 3, 4]


async def test_statement_leaving_a_transaction_open_is_rolled_back(writer: SqliteSingleWriter) -> None:
    """write("BEGIN") cannot leave the shared connection inside a transaction: it is rolled back and raises."""
    with pytest.raises(sqlite3.ProgrammingError, match="transaction open"):
        await writer.write("BEGIN")
    await writer.write("INSERT INTO items (value) VALUES (?)", (1,))
    assert await values(writer) == [1]  # committed, not stuck in a transaction


async def test_transaction_rolls_back_and_reraises_the_same_exception(writer: SqliteSingleWriter) -> None:
    """An exception in execute_in_transaction's work rolls back its statements and reaches the caller as is."""

    class Refused(Exception):
        pass

    refusal = Refused()

    def work(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO items (value) VALUES (1)")
        raise refusal

    with pytest.raises(Refused) as caught:
        await writer.execute_in_transaction(work)
    assert caught.value is refusal
    assert await values(writer) == []
    assert writer.get_write_snapshot()[-1].error == "Refused"


async def test_transaction_work_may_commit_itself(writer: SqliteSingleWriter) -> None:
    """work that commits on its own leaves nothing for the writer to commit, and does not fail."""

    def work(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO items (value) VALUES (1)")
        connection.execute("COMMIT")
        return 1

    assert await writer.execute_in_transaction(work) == 1
    assert await values(writer) == [1]


async def test_async_transaction_work_is_refused(writer: SqliteSingleWriter) -> None:
    """An async work function is refused (TypeError) before it is queued; a sync one returning a coroutine is
    refused and rolled back."""

    async def async_work(connection: sqlite3.Connection) -> None:
        pass

    with pytest.raises(TypeError, match="not an async one"):
        await writer.execute_in_transaction(async_work)  # type: ignore[unused-coroutine]

    def sneaky(connection: sqlite3.Connection) -> Any:
        connection.execute("INSERT INTO items (value) VALUES (1)")
        return async_work(connection)

    with pytest.raises(TypeError, match="not an async one"):
        await writer.execute_in_transaction(sneaky)
    assert await values(writer) == []
    with pytest.raises(TypeError, match="callable"):
        await writer.execute_in_transaction(42)  # type: ignore[arg-type]


async def test_write_snapshot_is_bounded(tmp_path: Path) -> None:
    """get_write_snapshot keeps only the last max_tracked_writes calls, oldest first."""
    async with SqliteSingleWriter(tmp_path / "s.db", SqliteSingleWriterOptions(max_tracked_writes=3)) as writer:
        await writer.write("CREATE TABLE t (x)")
        for value in range(5):
            await writer.write("INSERT INTO t VALUES (?)", (value,))
        snapshot = writer.get_write_snapshot()
        assert [record.write_id for record in snapshot] == [4, 5, 6]
        assert all(isinstance(record, SqliteWriteRecord) and not record.failed for record in snapshot)


async def test_sampling_thins_lifecycle_signals_but_never_errors(tmp_path: Path) -> None:
    """With sample_rate=3 one write in three emits start/done; every error is emitted."""
    async with SqliteSingleWriter(tmp_path / "s.db", SqliteSingleWriterOptions(sample_rate=3)) as writer:
        await writer.write("CREATE TABLE t (x UNIQUE)")  # call 1: sampled
        for value in range(5):  # calls 2..6: call 4 sampled
            await writer.write("INSERT INTO t VALUES (?)", (value,))
        for _ in range(3):  # calls 7..9: call 7 sampled, all three fail
            with pytest.raises(sqlite3.IntegrityError):
                await writer.write("INSERT INTO t VALUES (?)", (0,))
        names = [event.signal for event in writer.get_signals("write.*")]
        assert names.count("write.start") == 3
        assert sum(name.startswith("write.done:") for name in names) == 2
        assert names.count("write.error:IntegrityError") == 3
        assert writer.get_stats().writes == 6


async def test_flush_writes_waits_for_every_accepted_write(writer: SqliteSingleWriter) -> None:
    """flush_writes returns only once every write called before it has finished."""
    blocker = Blocker()
    async with anyio.create_task_group() as tg:
        await tg.start(blocker.hold, writer)
        queued = anyio.Event()
        inserting = 0

        async def insert(value: int) -> None:
            nonlocal inserting
            inserting += 1
            if inserting == 5:
                queued.set()  # main resumes once this last caller has joined the queue
            await writer.write("INSERT INTO items (value) VALUES (?)", (value,))

        for value in range(5):
            tg.start_soon(insert, value)
        await queued.wait()
        assert writer.get_stats().pending_writes == 6
        flushed = anyio.Event()

        async def flush() -> None:
            await writer.flush_writes()
            flushed.set()

        tg.start_soon(flush)
        await anyio.sleep(1)
        assert not flushed.is_set()
        blocker.release.set()
        await flushed.wait()
        assert writer.get_stats().pending_writes == 0
    assert sorted(await values(writer)) == [0, 1, 2, 3, 4]


async def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    """Every call on a closed writer raises CoordinatorClosedError (an anyio.ClosedResourceError)."""
    writer = SqliteSingleWriter(tmp_path / "c.db")
    await writer.write("CREATE TABLE t (x)")
    await writer.aclose()
    with pytest.raises(CoordinatorClosedError, match=r"SqliteSingleWriter .* is closed"):
        await writer.write("INSERT INTO t VALUES (1)")
    with pytest.raises(CoordinatorClosedError, match=r"SqliteSingleWriter .* is closed"):
        await writer.write_batch([("INSERT INTO t VALUES (1)", None)])
    with pytest.raises(CoordinatorClosedError, match=r"SqliteSingleWriter .* is closed"):
        await writer.execute_in_transaction(lambda connection: None)
    with pytest.raises(CoordinatorClosedError, match=r"SqliteSingleWriter .* is closed"):
        await writer.query(lambda connection: connection.execute_fetchall("SELECT 1"))
    await writer.flush_writes()  # nothing is pending: returns at once


async def test_each_call_is_one_thread_hop(writer: SqliteSingleWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_many of 10,000 rows, a batch and a transaction each cost one worker-thread call, not one per row."""
    hops = 0
    run_sync = anyio.to_thread.run_sync

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    assert (
        await writer.write_many("INSERT INTO items (value) VALUES (?)", [(value,) for value in range(10_000)]) == 10_000
    )
    assert hops == 1
    batch = [("UPDATE items SET value = -value WHERE id = ?", (row,)) for row in range(1, 1001)]
    assert await writer.write_batch(batch) == 1000
    assert hops == 2
    assert (
        await writer.execute_in_transaction(lambda connection: connection.execute("DELETE FROM items").rowcount)
        == 10_000
    )
    assert hops == 3


async def test_lifecycle_signals_of_every_kind(writer: SqliteSingleWriter) -> None:
    """Each kind of write emits {kind}.start and {kind}.done:{rows}rows:{ms}ms keyed by its write number;
    query emits query.start and query.done."""
    await writer.write("INSERT INTO items (value) VALUES (1)")
    await writer.write_batch([("INSERT INTO items (value) VALUES (2)", None)])
    await writer.write_many("INSERT INTO items (value) VALUES (?)", [(3,), (4,)])
    await writer.execute_in_transaction(lambda connection: connection.execute("DELETE FROM items WHERE value = 4"))
    await values(writer)
    events = writer.get_signals()
    started = {event.signal: event.key for event in events if event.signal.endswith(".start")}
    assert started == {
        "write.start": "2",  # the fixture's CREATE TABLE was write 1 (keyed "1")
        "write.batch.start": "3",
        "write.many.start": "4",
        "write.transaction.start": "5",
        "query.start": None,
    }
    done = [(event.signal.rsplit(":", 1)[0], event.key) for event in events if ".done:" in event.signal]
    assert done == [
        ("write.done:0rows", "1"),
        ("write.done:1rows", "2"),
        ("write.batch.done:1rows", "3"),
        ("write.many.done:2rows", "4"),
        ("write.transaction.done:1rows", "5"),
    ]
    assert all(event.signal.endswith("ms") for event in events if ".done:" in event.signal)
    assert any(event.signal == "query.done" for event in events)


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35), reason="RETURNING needs SQLite 3.35")
async def test_returning_statements_report_their_rows(writer: SqliteSingleWriter) -> None:
    """A statement with RETURNING reports the rows it changed (not 0), in every kind of write; rows changed by
    a trigger are not counted, as for any other statement."""
    await writer.write("CREATE TABLE log (value INTEGER)")
    await writer.write("CREATE TRIGGER logged AFTER INSERT ON items BEGIN INSERT INTO log VALUES (new.value); END")
    assert await writer.write("INSERT INTO items (value) SELECT value FROM json_each('[1,2,3]') RETURNING id") == 3
    assert await writer.write("UPDATE items SET value = value + 10 RETURNING value") == 3
    assert await writer.write_batch([("DELETE FROM items WHERE value = 11 RETURNING id", None)]) == 1
    assert (
        await writer.write_batch(
            [("INSERT INTO items (value) VALUES (?) RETURNING id", (20,)), ("DELETE FROM log RETURNING value", None)],
            transactional=False,
        )
        == 5  # one insert, then the four log rows the trigger wrote
    )
    assert await writer.write("INSERT INTO items (value) VALUES (1)") == 1  # the trigger's row not counted
    assert await values(writer) == [12, 13, 20, 1]
    assert [record.rows for record in writer.get_write_snapshot()][-5:] == [3, 3, 1, 5, 1]
