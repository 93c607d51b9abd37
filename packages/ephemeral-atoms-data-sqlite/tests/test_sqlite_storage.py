"""SqliteDataStorageAtom against real SQLite files (real clock: SQLite runs in worker threads)."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pydantic
import pytest

from ephemeral.atoms.data import DataStorageConfig, IDataStorageAtom
from ephemeral.atoms.data_sqlite import SqliteDataStorageAtom
from ephemeral.core import SignalSink
from ephemeral.sqlite.singlewriter import SqliteSingleWriter, SqliteSingleWriterOptions

pytestmark = pytest.mark.real_time


@dataclass
class Order:
    id: str
    total: Decimal


class Customer(pydantic.BaseModel):
    name: str
    vip: bool = False


def orders() -> DataStorageConfig:
    return DataStorageConfig(database_name="orders")


def rows(path: Path, sql: str) -> list[Any]:
    """Read the file with a plain sqlite3 connection, as another process would."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


async def test_the_seed_example_on_sqlite(tmp_path: Path) -> None:
    sink = SignalSink()
    db = tmp_path / "orders.db"
    async with SqliteDataStorageAtom[str, Order](sink, orders(), db, value_type=Order) as storage:
        assert isinstance(storage, IDataStorageAtom)
        storage.enqueue_save("order-123", Order(id="order-123", total=Decimal("42.00")))
        assert await storage.load("order-123") == Order(id="order-123", total=Decimal("42.00"))
    assert rows(db, "SELECT key, value FROM orders") == [("order-123", '{"id":"order-123","total":"42.00"}')]
    assert [(e.signal, e.key) for e in sink.sense("*.data.orders")] == [
        ("initialized.data.orders", None),
        ("loaded.data.orders", "order-123"),
        ("saved.data.orders", "order-123"),
    ]


async def test_the_database_is_in_wal_mode_with_the_documented_table(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    async with SqliteDataStorageAtom[str, Any](None, orders(), db) as storage:
        await storage.save("a", 1)
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    columns = [(r[1], r[2], r[5]) for r in rows(db, "PRAGMA table_info(orders)")]
    assert columns == [("key", "TEXT", 1), ("value", "TEXT", 0), ("created_at", "TEXT", 0), ("updated_at", "TEXT", 0)]
    assert ("idx_orders_updated",) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'")


@pytest.mark.parametrize("table", ['orders"; DROP TABLE x; --', "my orders", "a;b", "it's", "my-orders"])
async def test_bad_table_names_are_refused_before_any_sql(tmp_path: Path, table: str) -> None:
    db = tmp_path / "never.db"
    with pytest.raises(ValueError, match="table_name must be a SQL identifier"):
        SqliteDataStorageAtom(None, orders(), db, table_name=table)
    assert not db.exists()


async def test_a_database_name_that_is_not_an_identifier_needs_a_table_name(tmp_path: Path) -> None:
    config = DataStorageConfig(database_name="my-orders")  # fine as a signal name
    match = r"^config\.database_name \(the table name unless table_name= is given\) must be a SQL .* got 'my-orders'$"
    with pytest.raises(ValueError, match=match):
        SqliteDataStorageAtom(None, config, tmp_path / "x.db")
    async with SqliteDataStorageAtom[str, Any](SignalSink(), config, tmp_path / "x.db", table_name="my_orders") as s:
        await s.save("k", "v")
    assert rows(tmp_path / "x.db", "SELECT key FROM my_orders") == [("k",)]


async def test_upsert_delete_exists_count_keys_clear(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    async with SqliteDataStorageAtom[str, Any](None, orders(), db) as storage:
        await storage.save("b", 1)
        await storage.save("a", 2)
        await storage.save("b", 3)  # replaces
        assert await storage.load("b") == 3
        assert await storage.exists("a") and not await storage.exists("z")
        assert await storage.list_keys() == ["a", "b"]
        await storage.delete("a")
        await storage.delete("a")  # absent: no error
        assert await storage.count() == 1
        assert await storage.clear() == 1
        assert await storage.count() == 0
    created, updated = rows(db, "SELECT COUNT(*), COUNT(*) FROM orders")[0]
    assert created == updated == 0


async def test_saves_under_load_are_batched_into_few_transactions_in_order(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    async with SqliteDataStorageAtom[str, Any](None, orders(), db) as storage:
        for i in range(2_000):
            storage.enqueue_save(f"k{i % 100}", i)
            if i % 500 == 499:
                storage.enqueue_delete("k0")
        await storage.flush()
        stats = storage.storage_stats()
        assert stats.written == 2_004 and stats.batches <= 25 and stats.largest_batch == 100
    stored = dict(rows(db, "SELECT key, value FROM orders"))
    assert "k0" not in stored  # the last write of k0 was a delete
    assert stored["k1"] == "1901" and stored["k99"] == "1999"


async def test_without_batching_each_save_is_its_own_transaction(tmp_path: Path) -> None:
    config = DataStorageConfig(database_name="orders", enable_batching=False)
    async with SqliteDataStorageAtom[str, Any](None, config, tmp_path / "n.db") as storage:
        for i in range(50):
            storage.enqueue_save(str(i), i)
        await storage.flush()
        assert storage.storage_stats().batches == 50


async def test_a_write_lock_held_by_another_process_is_waited_out(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    sink = SignalSink()
    options = SqliteSingleWriterOptions(busy_timeout=0.01)
    async with SqliteDataStorageAtom[str, Any](sink, orders(), db, options=options) as storage:
        await storage.save("first", 1)
        other = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # holds the write lock
            release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
            release.start()
            for i in range(20):
                storage.enqueue_save(f"k{i}", i)
            await storage.flush()
            release.join()
        finally:
            other.close()
        assert await storage.count() == 21
        assert storage.stats().failed == 0
    assert sink.detect("retrying.data.orders:OperationalError")


async def test_a_lock_held_past_the_retry_budget_fails_the_writes_and_reports_them(tmp_path: Path) -> None:
    db = tmp_path / "l2.db"
    sink = SignalSink()
    config = DataStorageConfig(database_name="orders", write_retry_timeout=0.2)
    options = SqliteSingleWriterOptions(busy_timeout=0.01)
    async with SqliteDataStorageAtom[str, Any](sink, config, db, options=options) as storage:
        await storage.save("first", 1)
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await storage.save("blocked", 2)
            other.execute("COMMIT")
        finally:
            other.close()
        await storage.save("after", 3)  # the lock is gone: writes go through again
        assert await storage.list_keys() == ["after", "first"]
        assert storage.stats().failed == 1
    assert [(e.signal, e.key) for e in sink.sense("error.data.orders:*")] == [
        ("error.data.orders:OperationalError", "blocked")
    ]


async def test_a_backlog_behind_a_held_lock_fails_within_budget_plus_one_busy_timeout(tmp_path: Path) -> None:
    """300 writes in 30 batches queued behind a lock held past the budget all fail together, about
    write_retry_timeout + busy_timeout after the lock began, not one busy_timeout per batch."""
    db = tmp_path / "l3.db"
    config = DataStorageConfig(database_name="orders", write_retry_timeout=0.5, batch_size=10)
    options = SqliteSingleWriterOptions(busy_timeout=0.5)
    async with SqliteDataStorageAtom[str, Any](None, config, db, options=options) as storage:
        await storage.save("first", 1)
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            start = anyio.current_time()
            for i in range(299):
                storage.enqueue_save(f"k{i}", i)
            with anyio.fail_after(30), pytest.raises(sqlite3.OperationalError, match="locked"):
                await storage.save("waited", 2)
            elapsed = anyio.current_time() - start
            assert elapsed < 0.5 + 0.5 + 0.75, elapsed
            assert storage.stats().failed == 300
        finally:
            other.execute("COMMIT")
            other.close()
        await storage.save("after", 3)
        assert await storage.list_keys() == ["after", "first"]


async def test_two_atoms_share_one_writer_on_one_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    async with SqliteSingleWriter(db) as writer:
        a = SqliteDataStorageAtom[str, Any](None, DataStorageConfig(database_name="a"), writer=writer)
        b = SqliteDataStorageAtom[str, Any](None, DataStorageConfig(database_name="b"), writer=writer)
        async with a, b:
            async with anyio.create_task_group() as tg:
                for i in range(100):
                    tg.start_soon(a.save, str(i), i)
                    tg.start_soon(b.save, str(i), -i)
            assert await a.count() == await b.count() == 100
        assert not writer.closed  # the atoms did not close the writer they were given
    assert rows(db, "SELECT COUNT(*) FROM b") == [(100,)]
    with pytest.raises(TypeError, match="not both"):
        SqliteDataStorageAtom(None, orders(), db, writer=writer)


async def test_in_memory_and_data_source_strings(tmp_path: Path) -> None:
    async with SqliteDataStorageAtom[str, Any](None, orders(), ":memory:") as memory:
        await memory.save("k", [1, 2])
        assert await memory.load("k") == [1, 2]  # reads see the writer's in-memory database
        assert await memory.count() == 1
    db = tmp_path / "ds.db"
    async with SqliteDataStorageAtom[str, Any](None, orders(), f"Data Source={db}") as storage:
        await storage.save("k", 1)
    assert rows(db, "SELECT key FROM orders") == [("k",)]


def test_constructor_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path is required"):
        SqliteDataStorageAtom(None, orders())
    with pytest.raises(TypeError, match="writer must be a SqliteSingleWriter"):
        SqliteDataStorageAtom(None, orders(), writer=object())  # type: ignore[arg-type]


async def test_a_long_valid_table_name_works(tmp_path: Path) -> None:
    table = "orders_" + "x" * 56  # 63 characters: valid; its index name is shortened with a digest
    db = tmp_path / "long.db"
    async with SqliteDataStorageAtom[str, Any](None, orders(), db, table_name=table) as storage:
        await storage.save("k", 1)
    (index,) = rows(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx%'")[0]
    assert len(index) == 63 and index.endswith("_updated")


@pytest.mark.parametrize(("key", "value", "named"), [("k\ud800", 1, "key"), ("k", {"text": "a\udfffb"}, "value")])
async def test_a_lone_surrogate_is_refused_at_the_call(tmp_path: Path, key: str, value: Any, named: str) -> None:
    """Text UTF-8 cannot encode fails at enqueue_save/save/delete with ValueError naming the key or value."""
    sink = SignalSink()
    async with SqliteDataStorageAtom[str, Any](sink, orders(), tmp_path / "s.db") as storage:
        with pytest.raises(ValueError, match=f"{named}.*surrogate"):
            storage.enqueue_save(key, value)
        with pytest.raises(ValueError, match=f"{named}.*surrogate"):
            await storage.save(key, value)
        if named == "key":
            with pytest.raises(ValueError, match=r"key.*surrogate"):
                await storage.delete(key)
        await storage.save("fine", "\u00e9\U0001f600")  # real non-ASCII text is stored
        assert await storage.load("fine") == "\u00e9\U0001f600"
        assert storage.storage_stats().pending_writes == 0
    assert not sink.detect("error.data.orders:*")
