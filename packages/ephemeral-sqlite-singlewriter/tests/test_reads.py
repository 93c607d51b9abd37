"""Reads: the shared in-memory database, the cache (single flight, stale race, TTLs in virtual time), the pool."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral.core import CoordinatorClosedError, SignalSink
from ephemeral.core.testing import ConcurrencyProbe
from ephemeral.sqlite.singlewriter import SqliteConnection, SqliteSingleWriter, SqliteSingleWriterOptions


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteSingleWriter]:
    async with SqliteSingleWriter(tmp_path / "r.db") as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")
        await writer.write("INSERT INTO items (value) VALUES (1)")
        yield writer


async def count_items(connection: SqliteConnection) -> int:
    row = await connection.execute_fetchone("SELECT COUNT(*) FROM items")
    assert row is not None
    return int(row[0])


class CountingReader:
    """A reader that counts its runs."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, connection: SqliteConnection) -> int:
        self.runs += 1
        return await count_items(connection)


async def test_memory_database_is_shared_by_writer_and_readers() -> None:
    """With ":memory:" the read connections see the writer's tables and rows; another ":memory:" writer has
    its own database."""
    async with SqliteSingleWriter(":memory:") as writer, SqliteSingleWriter(":memory:") as other:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")
        await writer.write("INSERT INTO items (value) VALUES (1)")
        assert await writer.query(count_items) == 1
        assert await writer.read("n", count_items) == 1

        async def tables(connection: SqliteConnection) -> list[Any]:
            return await connection.execute_fetchall("SELECT name FROM sqlite_master")

        assert await other.query(tables) == []
        assert writer.is_memory and writer.database == ":memory:"


async def test_memory_database_reads_and_writes_interleave_without_lock_errors() -> None:
    """Concurrent reads and writes on an in-memory database never fail with "database table is locked"."""
    async with SqliteSingleWriter(":memory:", SqliteSingleWriterOptions(read_connections=4)) as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")
        counts: list[int] = []

        async def insert(value: int) -> None:
            await writer.write_many("INSERT INTO items (value) VALUES (?)", [(value,)] * 50)

        async def count() -> None:
            counts.append(await writer.query(count_items))

        async with anyio.create_task_group() as tg:
            for value in range(20):
                tg.start_soon(insert, value)
                tg.start_soon(count)
        assert await writer.query(count_items) == 1000
        assert len(counts) == 20 and all(n % 50 == 0 for n in counts)


async def test_concurrent_misses_run_the_reader_once(writer: SqliteSingleWriter) -> None:
    """Ten callers missing one key at once share one reader run and all get its value."""
    release = anyio.Event()
    runs = 0
    results: list[int] = []
    callers = 10
    calling = 0

    async def slow_count(connection: SqliteConnection) -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return await count_items(connection)

    all_waiting = anyio.Event()

    async def read() -> None:
        nonlocal calling
        calling += 1
        if calling == callers:
            all_waiting.set()  # main resumes once this caller is parked in read()
        results.append(await writer.read("items:count", slow_count))

    async with anyio.create_task_group() as tg:
        for _ in range(callers):
            tg.start_soon(read)
        await all_waiting.wait()
        release.set()
    assert runs == 1
    assert results == [1] * callers
    stats = writer.get_stats()
    assert (stats.reads, stats.loads, stats.cache_misses, stats.cache_hits) == (callers, 1, callers, 0)


async def test_reader_error_reaches_every_waiter_and_is_not_cached(writer: SqliteSingleWriter) -> None:
    """A reader that raises fails every caller waiting on it, caches nothing, and emits read.error:{Class}."""
    attempts = 0

    async def failing(connection: SqliteConnection) -> int:
        nonlocal attempts
        attempts += 1
        await anyio.sleep(1)
        raise LookupError("no such thing")

    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await writer.read("k", failing)
        except LookupError as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(read)
    assert attempts == 1 and len(errors) == 3
    assert writer.get_stats().cache_entries == 0
    assert await writer.read("k", count_items) == 1  # the next read runs its reader
    assert [event.signal for event in writer.get_signals("read.error:*")] == ["read.error:LookupError"]
    assert writer.get_stats().read_errors == 1


@pytest.mark.parametrize("how", ["write_and_invalidate", "invalidate_cache"])
async def test_read_in_flight_during_invalidation_is_not_cached(writer: SqliteSingleWriter, how: str) -> None:
    """A read that read the old count before a write and its invalidation returns it to its own caller but
    does not cache it: the next read sees the new count."""
    has_read = anyio.Event()
    release = anyio.Event()

    async def slow_count(connection: SqliteConnection) -> int:
        count = await count_items(connection)
        has_read.set()
        await release.wait()
        return count

    first: list[int] = []

    async def read() -> None:
        first.append(await writer.read("items:count", slow_count))

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await has_read.wait()
        if how == "write_and_invalidate":
            await writer.write_and_invalidate("INSERT INTO items (value) VALUES (2)", None, ["items:count"])
        else:
            await writer.write("INSERT INTO items (value) VALUES (2)")
            writer.invalidate_cache("items:count")
        release.set()
    assert first == [1]
    assert "items:count" not in [event.key for event in writer.get_signals("cache.set:*")]
    assert await writer.read("items:count", count_items) == 2


async def test_cache_slides_and_hot_keys_live_longer_in_virtual_time(tmp_path: Path) -> None:
    """An entry lives default_cache_duration after each access; from the third access it lives
    hot_key_extension after each hit; once expired the reader runs again."""
    options = SqliteSingleWriterOptions(default_cache_duration=10, hot_key_extension=100, hot_access_threshold=3)
    async with SqliteSingleWriter(tmp_path / "ttl.db", options) as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        reader = CountingReader()
        await writer.read("hot", reader)  # access 1: loaded, lives 10 s
        await anyio.sleep(9)
        await writer.read("hot", reader)  # access 2: slides to 10 s
        await anyio.sleep(9)
        await writer.read("hot", reader)  # access 3: hot, lives 100 s
        await anyio.sleep(99)
        await writer.read("hot", reader)  # still hot
        assert reader.runs == 1
        await anyio.sleep(101)
        await writer.read("hot", reader)  # expired: loaded again
        assert reader.runs == 2

        cold = CountingReader()
        await writer.read("cold", cold)
        await anyio.sleep(9.5)
        await writer.read("cold", cold)
        assert cold.runs == 1
        await anyio.sleep(10.5)
        await writer.read("cold", cold)
        assert cold.runs == 2


async def test_sliding_expiration_per_read(writer: SqliteSingleWriter) -> None:
    """read(..., sliding_expiration=) gives that entry its own time to live."""
    reader = CountingReader()
    await writer.read("short", reader, sliding_expiration=2)
    await anyio.sleep(1.5)
    await writer.read("short", reader, sliding_expiration=2)
    assert reader.runs == 1
    await anyio.sleep(2.5)
    await writer.read("short", reader, sliding_expiration=2)
    assert reader.runs == 2
    with pytest.raises(ValueError, match="sliding_expiration"):
        await writer.read("short", reader, sliding_expiration=0)


async def test_cache_size_limit_evicts_least_recently_used(tmp_path: Path) -> None:
    """Beyond cache_size_limit entries the least recently used key goes and its reader runs again."""
    async with SqliteSingleWriter(tmp_path / "lru.db", SqliteSingleWriterOptions(cache_size_limit=2)) as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        readers = {key: CountingReader() for key in "abc"}
        for key in "abc":
            await writer.read(key, readers[key])
        await writer.read("c", readers["c"])
        await writer.read("b", readers["b"])
        await writer.read("a", readers["a"])
        assert {key: reader.runs for key, reader in readers.items()} == {"a": 2, "b": 1, "c": 1}
        assert writer.get_stats().cache_entries == 2


async def test_read_sees_writes_completed_before_it(writer: SqliteSingleWriter) -> None:
    """A pooled read connection used before a write sees that write on its next read (no stale snapshot)."""
    for expected in range(1, 6):
        assert await writer.query(count_items) == expected
        await writer.write("INSERT INTO items (value) VALUES (?)", (expected,))
    assert writer.get_stats().read_connections == 1


async def test_read_connections_are_query_only(writer: SqliteSingleWriter) -> None:
    """A reader cannot write through its connection (writes go through the writer)."""

    async def sneaky_insert(connection: SqliteConnection) -> None:
        await connection.execute_fetchall("INSERT INTO items (value) VALUES (9)")

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await writer.query(sneaky_insert)
    assert await writer.query(count_items) == 1
    assert [event.signal for event in writer.get_signals("query.error:*")] == ["query.error:OperationalError"]


async def test_read_connections_are_bounded(tmp_path: Path) -> None:
    """At most read_connections readers run at once; the others wait for a connection."""
    async with SqliteSingleWriter(tmp_path / "p.db", SqliteSingleWriterOptions(read_connections=2)) as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        probe = ConcurrencyProbe()
        release, two_running = anyio.Event(), anyio.Event()

        async def reader(connection: SqliteConnection) -> int:
            with probe:
                if probe.running == 2:
                    two_running.set()
                await release.wait()
            return await count_items(connection)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(writer.query, reader)
            await two_running.wait()
            await anyio.sleep(1)  # the other three stay waiting for a connection
            assert probe.running == 2
            release.set()
        assert probe.peak == 2
        assert writer.get_stats().read_connections == 2
        assert len(writer.get_signals("connection.open.read")) == 2


async def test_connection_helpers_and_reset_between_readers(writer: SqliteSingleWriter) -> None:
    """execute_fetchall/execute_fetchone take parameters, run_sync gets the raw connection, a row_factory is
    reset for the next reader, and a lent connection is unusable once its reader returned."""
    await writer.write("INSERT INTO items (value) VALUES (2)")
    kept: list[SqliteConnection] = []

    async def first(connection: SqliteConnection) -> tuple[Any, Any, int]:
        kept.append(connection)
        connection.row_factory = sqlite3.Row
        assert connection.row_factory is sqlite3.Row
        rows = await connection.execute_fetchall("SELECT value FROM items WHERE value > ?", (1,))
        row = await connection.execute_fetchone("SELECT value FROM items WHERE value = :v", {"v": 1})
        assert row is not None
        none = await connection.execute_fetchone("SELECT value FROM items WHERE value = 99")
        assert none is None
        total = await connection.run_sync(lambda raw: raw.execute("SELECT SUM(value) FROM items").fetchone()[0])
        return rows[0]["value"], row["value"], total

    assert await writer.query(first) == (2, 1, 3)

    async def second(connection: SqliteConnection) -> Any:
        assert connection.row_factory is None
        return await connection.execute_fetchone("SELECT value FROM items WHERE value = 2")

    assert await writer.query(second) == (2,)
    with pytest.raises(CoordinatorClosedError, match="SqliteConnection"):
        await kept[0].execute_fetchall("SELECT 1")
    with pytest.raises(TypeError, match="callable"):
        await writer.query(lambda connection: connection.run_sync(42))  # type: ignore[arg-type]


async def test_transaction_left_open_by_a_reader_is_ended(writer: SqliteSingleWriter) -> None:
    """A reader that began a transaction through run_sync does not pin the next reader to an old snapshot."""

    def begin_and_read(raw: sqlite3.Connection) -> int:
        raw.execute("BEGIN")
        return int(raw.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    async def reader(connection: SqliteConnection) -> int:
        return await connection.run_sync(begin_and_read)

    assert await writer.query(reader) == 1
    await writer.write("INSERT INTO items (value) VALUES (2)")
    assert await writer.query(count_items) == 2


async def test_reader_must_be_async(writer: SqliteSingleWriter) -> None:
    """A reader that returns a plain value, or is not callable, raises TypeError."""
    with pytest.raises(TypeError, match="async function"):
        await writer.query(lambda connection: 1)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="reader"):
        await writer.read("k", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache_key"):
        await writer.read(1, count_items)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cache_key"):
        await writer.read("", count_items)
    with pytest.raises(TypeError, match="cache_keys"):
        await writer.write_and_invalidate("INSERT INTO items (value) VALUES (3)", None, "items:count")
    assert await writer.query(count_items) == 1  # the refused write_and_invalidate wrote nothing


async def test_hit_and_miss_signals_and_invalidate_result(writer: SqliteSingleWriter) -> None:
    """A miss emits cache.miss/read.start/read.done/cache.set, a hit cache.hit; invalidate_cache says whether
    it removed a live entry and always emits cache.invalidate."""
    await writer.read("items:count", count_items)
    await writer.read("items:count", count_items)
    assert writer.invalidate_cache("items:count") is True
    assert writer.invalidate_cache("items:count") is False
    events = [event for event in writer.get_signals() if event.signal.startswith(("cache.", "read."))]
    names = [event.signal for event in events]
    assert names == [
        "cache.miss:items:count",
        "read.start:items:count",
        "read.done:items:count",
        "cache.set:items:count",
        "cache.hit:items:count",
        "cache.invalidate:items:count",
        "cache.invalidate:items:count",
    ]
    assert {event.key for event in events} == {"items:count"}


async def test_signal_driven_invalidation(writer: SqliteSingleWriter) -> None:
    """Matching signals invalidate the key after the first colon (or the signal's key); closing the
    subscription stops it; the writer's own invalidation signals on a watched sink cause no echo."""
    sink = SignalSink()
    subscription = writer.enable_signal_driven_invalidation(sink, "orders.changed:*, users.changed")
    reader = CountingReader()
    await writer.read("orders:7", reader)
    await writer.read("users", reader)
    sink.emit("orders.changed:orders:7")
    sink.emit("users.changed", key="users")
    sink.emit("cache.invalidate:orders:7")  # not one of the patterns
    await writer.read("orders:7", reader)
    await writer.read("users", reader)
    assert reader.runs == 4
    external = [event.signal for event in writer.get_signals("cache.invalidate.external:*")]
    assert external == ["cache.invalidate.external:orders:7", "cache.invalidate.external:users"]
    subscription.close()
    sink.emit("orders.changed:orders:7")
    await writer.read("orders:7", reader)
    assert reader.runs == 4

    own = writer.enable_signal_driven_invalidation(writer.signals, ("cache.*",))
    writer.invalidate_cache("users")
    assert len(writer.get_signals("cache.invalidate.external:*")) == 2  # no reaction to its own signal
    own.close()
    with pytest.raises(TypeError, match="SignalSink"):
        writer.enable_signal_driven_invalidation(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="patterns"):
        writer.enable_signal_driven_invalidation(sink, ())


async def test_signal_driven_invalidation_from_other_threads(writer: SqliteSingleWriter) -> None:
    """An invalidation signal emitted on a worker thread or a plain thread runs on the writer's loop."""
    sink = SignalSink()
    writer.enable_signal_driven_invalidation(sink)
    reader = CountingReader()
    await writer.read("items:count", reader)
    await anyio.to_thread.run_sync(sink.emit, "cache.invalidate:items:count")
    await writer.read("items:count", reader)
    assert reader.runs == 2
    thread = threading.Thread(target=sink.emit, args=("cache.invalidate:items:count",))
    thread.start()
    await anyio.to_thread.run_sync(thread.join)
    await writer.read("items:count", reader)
    assert reader.runs == 3


async def test_closing_the_writer_stops_signal_driven_invalidation(tmp_path: Path) -> None:
    """After the writer closes its subscriptions are gone: the watched sink has no subscriber left."""
    sink = SignalSink()
    async with SqliteSingleWriter(tmp_path / "x.db") as writer:
        subscription = writer.enable_signal_driven_invalidation(sink)
    assert subscription.closed
    sink.emit("cache.invalidate:k")  # nobody reacts, nothing raises
    assert writer.get_signals("cache.invalidate.external:*") == []
    assert sink.subscriber_errors == 0


async def test_memory_reader_calling_the_writer_again_raises() -> None:
    """With an in-memory database a reader holds the writer's turn, so calling the writer from it raises
    RuntimeError instead of deadlocking."""
    async with SqliteSingleWriter(":memory:") as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")

        async def nested_write(connection: SqliteConnection) -> int:
            return await writer.write("INSERT INTO items (value) VALUES (1)")

        with pytest.raises(RuntimeError, match="inside one of its reads"):
            await writer.query(nested_write)
        assert await writer.write("INSERT INTO items (value) VALUES (2)") == 1  # the writer carries on
        assert await writer.query(count_items) == 1


async def test_a_cascade_reacting_to_the_writers_own_invalidation_is_acted_on(tmp_path: Path) -> None:
    """A subscriber that answers the writer's own cache.invalidate:users:1 by emitting cache.invalidate:users:all
    invalidates users:all: only the writer's own event is ignored, not what others emit while it is delivered."""
    bus = SignalSink()
    async with SqliteSingleWriter(tmp_path / "cascade.db", signals=bus) as writer:
        await writer.write("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        await writer.write("INSERT INTO users VALUES (1, 'ann')")
        writer.enable_signal_driven_invalidation(bus)

        def cascade(event: Any) -> None:
            if event.signal.startswith("cache.invalidate:users:") and event.signal != "cache.invalidate:users:all":
                bus.emit("cache.invalidate:users:all")

        bus.subscribe(cascade)

        async def names(connection: SqliteConnection) -> list[str]:
            return [row[0] for row in await connection.execute_fetchall("SELECT name FROM users")]

        assert await writer.read("users:all", names) == ["ann"]
        await writer.write_and_invalidate("UPDATE users SET name = 'bob' WHERE id = 1", None, ["users:1"])
        assert await writer.read("users:all", names) == ["bob"]
        assert [event.signal for event in writer.get_signals("cache.invalidate*")] == [
            "cache.invalidate:users:1",  # the writer's own: not acted on again
            "cache.invalidate:users:all",  # the cascade's
            "cache.invalidate.external:users:all",  # acted on
        ]


async def test_writers_sharing_a_sink_with_a_broad_pattern_do_not_echo() -> None:
    """Two writers listening to "cache.invalidate*" on one sink each act once on an invalidation and never on
    each other's cache.invalidate.external:* reports (no ping-pong up to the sink's depth guard)."""
    shared = SignalSink()
    async with (
        SqliteSingleWriter(":memory:", signals=shared) as a,
        SqliteSingleWriter(":memory:", signals=shared) as b,
    ):
        a.enable_signal_driven_invalidation(shared, "cache.invalidate*")
        b.enable_signal_driven_invalidation(shared, "cache.invalidate*")
        shared.emit("cache.invalidate:users:1")
        assert shared.count("cache.invalidate.external:*") == 2
        a.invalidate_cache("users:2")  # b acts on a's own invalidation, a does not
        assert [event.signal for event in shared.sense("cache.invalidate*")][-2:] == [
            "cache.invalidate:users:2",
            "cache.invalidate.external:users:2",
        ]
        assert shared.count("cache.invalidate.external:*") == 3
        assert shared.subscriber_errors == 0


async def test_memory_reader_calling_the_writer_from_a_child_task_raises() -> None:
    """A task started by an in-memory reader inherits its place in the writer's turn: a write, a flush, a read
    or a query from it raises RuntimeError instead of waiting forever for the reader that waits for it."""
    async with SqliteSingleWriter(":memory:") as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")
        assert await writer.query(count_items) == 0  # the read connection is open: no thread call below
        calls = {
            "write": lambda: writer.write("INSERT INTO items (value) VALUES (1)"),
            "write_many": lambda: writer.write_many("INSERT INTO items (value) VALUES (?)", [(1,)]),
            "flush_writes": writer.flush_writes,
            "read": lambda: writer.read("nested", count_items),
            "query": lambda: writer.query(count_items),
        }

        async def errors_in_a_child(call: Callable[[], Awaitable[object]]) -> list[RuntimeError]:
            errors: list[RuntimeError] = []

            async def attempt() -> None:
                try:
                    await call()
                except RuntimeError as error:
                    errors.append(error)

            async def in_child(connection: SqliteConnection) -> int:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(attempt)
                return 1

            with anyio.move_on_after(60) as scope:  # no thread call runs while a deadlock would wait
                assert await writer.query(in_child) == 1
            assert not scope.cancelled_caught
            return errors

        for name, call in calls.items():
            errors = await errors_in_a_child(call)
            assert len(errors) == 1 and "inside one of its reads" in str(errors[0]), name
        assert await writer.read("after", count_items) == 0  # the writer carries on
        assert await writer.write("INSERT INTO items (value) VALUES (2)") == 1


async def test_a_task_left_behind_by_a_memory_reader_may_write_once_it_returned() -> None:
    """The mark is for the duration of the read: a task the reader started elsewhere and that writes after the
    reader returned is not refused."""
    async with SqliteSingleWriter(":memory:") as writer:
        await writer.write("CREATE TABLE items (id INTEGER PRIMARY KEY, value INTEGER)")
        go = anyio.Event()
        written: list[int] = []

        async def later() -> None:
            await go.wait()
            written.append(await writer.write("INSERT INTO items (value) VALUES (1)"))

        async with anyio.create_task_group() as tg:

            async def starts(connection: SqliteConnection) -> int:
                tg.start_soon(later)
                return 1

            assert await writer.query(starts) == 1
            go.set()
        assert written == [1]


async def test_file_reader_may_write_through_its_writer(writer: SqliteSingleWriter) -> None:
    """With a file database (WAL) a reader does not hold the writer's turn, so a write from it just runs."""

    async def writes(connection: SqliteConnection) -> int:
        await writer.write("INSERT INTO items (value) VALUES (2)")
        return await count_items(connection)

    assert await writer.query(writes) == 2
