"""The original's deleted SqliteSingleWriterTests, ported: real SQLite files, sample rate 1."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ephemeral.core import SignalSink
from ephemeral.sqlite.singlewriter import SqliteConnection, SqliteSingleWriter, SqliteSingleWriterOptions

OPTIONS = SqliteSingleWriterOptions(sample_rate=1, max_tracked_writes=256)


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteSingleWriter]:
    async with SqliteSingleWriter(tmp_path / "items.db", OPTIONS) as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, value INTEGER NOT NULL)")
        yield writer


async def count_items(connection: SqliteConnection) -> int:
    row = await connection.execute_fetchone("SELECT COUNT(*) FROM items")
    assert row is not None
    return int(row[0])


async def test_three_inserts_count_and_order(writer: SqliteSingleWriter) -> None:
    """Three parameterised inserts: the count is 3 and the values come back 1, 2, 3 in id order."""
    for value in (1, 2, 3):
        assert await writer.write("INSERT INTO items (value) VALUES (?)", (value,)) == 1
    assert await writer.query(count_items) == 3

    async def values(connection: SqliteConnection) -> list[int]:
        return [row[0] for row in await connection.execute_fetchall("SELECT value FROM items ORDER BY id")]

    assert await writer.query(values) == [1, 2, 3]


async def test_cached_read_runs_reader_once_until_write_and_invalidate(writer: SqliteSingleWriter) -> None:
    """A cached read runs its reader once; write_and_invalidate makes the next read run it again."""
    await writer.write("INSERT INTO items (value) VALUES (?)", (1,))
    runs = 0

    async def reader(connection: SqliteConnection) -> int:
        nonlocal runs
        runs += 1
        return await count_items(connection)

    assert await writer.read("items:count", reader) == 1
    assert await writer.read("items:count", reader) == 1
    assert runs == 1
    rows = await writer.write_and_invalidate("INSERT INTO items (value) VALUES (?)", (2,), ["items:count"])
    assert rows == 1
    assert await writer.read("items:count", reader) == 2
    assert runs == 2


async def test_transactional_batch_rolls_back_on_unique_violation(tmp_path: Path) -> None:
    """A transactional batch hitting a UNIQUE violation raises IntegrityError and leaves 0 rows; without a
    transaction the item before the failure stays (1 row)."""
    async with SqliteSingleWriter(tmp_path / "u.db", OPTIONS) as writer:
        await writer.write("CREATE TABLE u (name TEXT UNIQUE)")
        batch = [("INSERT INTO u (name) VALUES (?)", ("a",)), ("INSERT INTO u (name) VALUES (?)", ("a",))]
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            await writer.write_batch(batch)

        async def count(connection: SqliteConnection) -> int:
            row = await connection.execute_fetchone("SELECT COUNT(*) FROM u")
            assert row is not None
            return int(row[0])

        assert await writer.query(count) == 0
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            await writer.write_batch(batch, transactional=False)
        assert await writer.query(count) == 1


async def test_transaction_returns_sum(writer: SqliteSingleWriter) -> None:
    """A transaction inserting 10 and returning SUM(value) gives 10, and one row exists."""

    def work(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO items (value) VALUES (?)", (10,))
        return int(connection.execute("SELECT SUM(value) FROM items").fetchone()[0])

    assert await writer.execute_in_transaction(work) == 10
    assert await writer.query(count_items) == 1


async def test_foreign_key_violation_raises(tmp_path: Path) -> None:
    """Foreign keys are enforced: inserting a child of a missing parent raises IntegrityError."""
    async with SqliteSingleWriter(tmp_path / "fk.db", OPTIONS) as writer:
        await writer.write("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        await writer.write("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await writer.write("INSERT INTO child (parent_id) VALUES (?)", (99,))


async def test_read_connection_journal_mode_is_wal(writer: SqliteSingleWriter) -> None:
    """PRAGMA journal_mode on a read connection reports wal (the writer switched the database to WAL)."""

    async def journal_mode(connection: SqliteConnection) -> str:
        row = await connection.execute_fetchone("PRAGMA journal_mode")
        assert row is not None
        return str(row[0])

    assert await writer.query(journal_mode) == "wal"


async def test_signals(writer: SqliteSingleWriter) -> None:
    """The writer's signals include write start/done, flush, the cache and read lifecycle of a key, and the
    pragmas."""
    await writer.write("INSERT INTO items (value) VALUES (?)", (1,))
    await writer.flush_writes()
    await writer.read("items:count", count_items)
    await writer.write_and_invalidate("INSERT INTO items (value) VALUES (?)", (2,), ["items:count"])
    names = [event.signal for event in writer.get_signals()]
    assert "write.start" in names
    assert any(name.startswith("write.done:1rows:") for name in names)
    for expected in (
        "write.flush.start",
        "write.flush.done",
        "cache.miss:items:count",
        "cache.set:items:count",
        "cache.invalidate:items:count",
        "read.start:items:count",
        "read.done:items:count",
        "pragma.wal.on",
        "pragma.foreign_keys.on",
        "pragma.busy_timeout",
        "connection.open.write",
        "connection.open.read",
    ):
        assert expected in names, expected
    assert names.count("connection.open.write") == 1  # once when the writer opens, not once per write
    assert names.count("pragma.wal.on") == 1
    assert writer.get_signals("cache.*") == [e for e in writer.get_signals() if e.signal.startswith("cache.")]


async def test_external_invalidation_by_signal(writer: SqliteSingleWriter) -> None:
    """A cache.invalidate:{key} signal on a watched sink drops the key: the next read sees the new count, and
    cache.invalidate.external:{key} is emitted."""
    sink = SignalSink()
    writer.enable_signal_driven_invalidation(sink)
    await writer.write("INSERT INTO items (value) VALUES (?)", (1,))
    assert await writer.read("items:count", count_items) == 1
    await writer.write("INSERT INTO items (value) VALUES (?)", (2,))
    assert await writer.read("items:count", count_items) == 1  # still cached
    sink.emit("cache.invalidate:items:count")
    assert await writer.read("items:count", count_items) == 2
    external = writer.get_signals("cache.invalidate.external:*")
    assert [(event.signal, event.key) for event in external] == [
        ("cache.invalidate.external:items:count", "items:count")
    ]
