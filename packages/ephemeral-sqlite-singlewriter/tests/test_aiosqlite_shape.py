"""Readers written for aiosqlite run unchanged on the read connection; execute_script runs multi-statement SQL.

Each aiosqlite-style reader below runs on a ``SqliteSingleWriter`` read connection (asyncio and trio) and,
on asyncio, on a real ``aiosqlite`` connection to the same file: the same code gives the same answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
import pytest

from ephemeral.sqlite.singlewriter import SqliteConnection, SqliteCursor, SqliteSingleWriter

pytestmark = pytest.mark.real_time  # SQLite runs in worker threads


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteSingleWriter]:
    async with SqliteSingleWriter(tmp_path / "a.db") as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")
        await writer.write_many("INSERT INTO items (value) VALUES (?)", [(v,) for v in (10, 20, 30, 40, 50)])
        yield writer


# The readers, written exactly as for aiosqlite (``db`` is an aiosqlite.Connection there).


async def async_with_and_async_for(db: Any) -> Any:
    async with db.execute("SELECT id, value FROM items WHERE value >= ? ORDER BY id", (20,)) as cursor:
        return [tuple(row) async for row in cursor]


async def awaited_cursor_and_fetches(db: Any) -> Any:
    cursor = await db.execute("SELECT value FROM items ORDER BY id")
    description = [column[0] for column in cursor.description]
    first = await cursor.fetchone()
    two = await cursor.fetchmany(2)
    rest = await cursor.fetchall()
    none = await cursor.fetchone()
    await cursor.close()
    return description, first, two, rest, none


async def execute_fetchall_with_named_params(db: Any) -> Any:
    rows = await db.execute_fetchall("SELECT value FROM items WHERE id IN (:a, :b) ORDER BY id", {"a": 2, "b": 4})
    return [tuple(row) for row in rows]


async def row_factory_rows(db: Any) -> Any:
    db.row_factory = sqlite3.Row
    async with db.execute("SELECT id, value FROM items ORDER BY id DESC LIMIT 2") as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def fetchmany_with_arraysize(db: Any) -> Any:
    async with db.execute("SELECT value FROM items ORDER BY id") as cursor:
        cursor.arraysize = 2
        return [[tuple(r) for r in await cursor.fetchmany()] for _ in range(4)]


READERS: dict[str, tuple[Callable[[Any], Awaitable[Any]], Any]] = {
    "async_with": (async_with_and_async_for, [(2, 20), (3, 30), (4, 40), (5, 50)]),
    "await": (awaited_cursor_and_fetches, (["value"], (10,), [(20,), (30,)], [(40,), (50,)], None)),
    "named": (execute_fetchall_with_named_params, [(20,), (40,)]),
    "row_factory": (row_factory_rows, [{"id": 5, "value": 50}, {"id": 4, "value": 40}]),
    "arraysize": (fetchmany_with_arraysize, [[(10,), (20,)], [(30,), (40,)], [(50,)], []]),
}


@pytest.mark.parametrize("name", READERS)
async def test_an_aiosqlite_reader_runs_unchanged(
    writer: SqliteSingleWriter, name: str, anyio_backend_name: str
) -> None:
    reader, expected = READERS[name]
    assert await writer.query(reader) == expected
    assert await writer.read(f"cached-{name}", reader) == expected
    if anyio_backend_name == "asyncio":  # aiosqlite itself runs on asyncio only
        async with aiosqlite.connect(writer.database) as db:
            assert await reader(db) == expected


async def test_executemany_has_aiosqlites_shape_and_reads_stay_read_only(writer: SqliteSingleWriter) -> None:
    """``executemany`` exists as in aiosqlite; a read connection refuses writes (they go through the writer)."""

    async def insert_many(db: SqliteConnection) -> None:
        await db.executemany("INSERT INTO items (value) VALUES (?)", [(1,), (2,)])

    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        await writer.query(insert_many)

    async def cursor_executes(db: SqliteConnection) -> list[Any]:
        async with db.execute("SELECT 1") as cursor:
            await cursor.execute("SELECT value FROM items WHERE id = ?", (1,))
            return await cursor.fetchall()

    assert await writer.query(cursor_executes) == [(10,)]


async def test_bad_params_fail_at_the_call(writer: SqliteSingleWriter) -> None:
    async def reader(db: SqliteConnection) -> None:
        with pytest.raises(TypeError, match="params"):
            db.execute("SELECT ?", "x")  # a str is not a parameter sequence
        with pytest.raises(TypeError, match="params_seq"):
            db.executemany("SELECT ?", ["x"])

    await writer.query(reader)


async def test_cursors_left_open_are_closed_when_the_reader_returns(writer: SqliteSingleWriter) -> None:
    """A cursor the reader did not close ends with the read: it cannot be used later, and the pooled
    connection sees the writes made since (no read snapshot kept alive)."""
    leaked: list[SqliteCursor] = []

    async def leak(db: SqliteConnection) -> Any:
        cursor = await db.execute("SELECT value FROM items ORDER BY id")
        leaked.append(cursor)
        return await cursor.fetchone()

    assert await writer.query(leak) == (10,)
    with pytest.raises(anyio.ClosedResourceError):
        await leaked[0].fetchone()
    await writer.write("INSERT INTO items (value) VALUES (60)")

    async def count(db: SqliteConnection) -> Any:
        async with db.execute("SELECT COUNT(*) FROM items") as cursor:
            return await cursor.fetchone()

    assert await writer.query(count) == (6,)


async def test_an_execute_is_awaited_once(writer: SqliteSingleWriter) -> None:
    async def twice(db: SqliteConnection) -> None:
        call = db.execute("SELECT 1")
        await call
        with pytest.raises(RuntimeError, match="already"):
            await call

    await writer.query(twice)


# --------------------------------------------------------------------------------------- execute_script


async def test_execute_script_runs_every_statement_in_one_transaction(writer: SqliteSingleWriter) -> None:
    rows = await writer.execute_script(
        """
        CREATE TABLE tags (name TEXT PRIMARY KEY);
        INSERT INTO tags VALUES ('a'); INSERT INTO tags VALUES ('b');
        UPDATE items SET value = value + 1 WHERE id <= 2;  -- a comment at the end
        """
    )
    assert rows == 4
    assert await writer.query(lambda db: db.execute_fetchall("SELECT name FROM tags ORDER BY name")) == [("a",), ("b",)]
    with pytest.raises(sqlite3.IntegrityError):
        await writer.execute_script("INSERT INTO tags VALUES ('c'); INSERT INTO tags VALUES ('a');")
    assert await writer.query(lambda db: db.execute_fetchall("SELECT COUNT(*) FROM tags")) == [(2,)]  # all rolled back
    assert writer.get_write_snapshot()[-1].kind == "write.script"


async def test_execute_script_without_a_transaction_keeps_what_ran(writer: SqliteSingleWriter) -> None:
    await writer.execute_script("CREATE TABLE log (n INTEGER UNIQUE); INSERT INTO log VALUES (1);", transactional=False)
    with pytest.raises(sqlite3.IntegrityError):
        await writer.execute_script("INSERT INTO log VALUES (2); INSERT INTO log VALUES (1);", transactional=False)
    assert await writer.query(lambda db: db.execute_fetchall("SELECT n FROM log ORDER BY n")) == [(1,), (2,)]
    await writer.execute_script("BEGIN; INSERT INTO log VALUES (3); COMMIT;", transactional=False)
    with pytest.raises(sqlite3.ProgrammingError, match="left a transaction open"):
        await writer.execute_script("BEGIN; INSERT INTO log VALUES (4);", transactional=False)
    assert await writer.query(lambda db: db.execute_fetchall("SELECT COUNT(*) FROM log")) == [(3,)]
    await writer.write("INSERT INTO log VALUES (5)")  # the writer carries on


@pytest.mark.parametrize(("sql", "kwargs", "error"), [(None, {}, TypeError), ("  ", {}, ValueError),
                                                      ("SELECT 1", {"transactional": 1}, TypeError)])  # fmt: skip
async def test_execute_script_checks_its_arguments(
    writer: SqliteSingleWriter, sql: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await writer.execute_script(sql, **kwargs)
