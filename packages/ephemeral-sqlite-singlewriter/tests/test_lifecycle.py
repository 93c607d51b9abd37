"""Opening, sharing (get_or_create), connection strings, restart and closing."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from ephemeral.core.testing import assert_lifecycle_faults
from ephemeral.sqlite.singlewriter import SqliteConnection, SqliteSingleWriter, SqliteSingleWriterOptions


def wal_exists(path: Path) -> bool:
    return Path(f"{path}-wal").exists()


async def count_rows(connection: SqliteConnection) -> int:
    row = await connection.execute_fetchone("SELECT COUNT(*) FROM t")
    assert row is not None
    return int(row[0])


async def test_usable_without_async_with(tmp_path: Path) -> None:
    """Without async with the writer opens on first use (no file before), and aclose closes it."""
    path = tmp_path / "lazy.db"
    writer = SqliteSingleWriter(path)
    assert not path.exists()
    assert "not yet opened" in repr(writer)
    await writer.write("CREATE TABLE t (x)")
    assert path.exists() and "open" in repr(writer)
    await writer.aclose()
    assert writer.closed and "closed" in repr(writer)


async def test_a_read_first_opens_the_writer(tmp_path: Path) -> None:
    """A read as the very first call opens the writer (and with it the database) before reading."""
    writer = SqliteSingleWriter(tmp_path / "first.db")

    async def one(connection: SqliteConnection) -> int:
        row = await connection.execute_fetchone("SELECT 1")
        assert row is not None
        return int(row[0])

    assert await writer.query(one) == 1
    assert [event.signal for event in writer.get_signals("connection.open.*")] == [
        "connection.open.write",
        "connection.open.read",
    ]
    await writer.aclose()


async def test_restart_keeps_the_data(tmp_path: Path) -> None:
    """Data written by one writer is there when a new writer opens the same file after it closed."""
    path = tmp_path / "restart.db"
    async with SqliteSingleWriter(path) as first:
        await first.write("CREATE TABLE t (x)")
        await first.write_many("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    async with SqliteSingleWriter(str(path)) as second:
        assert await second.query(count_rows) == 3


async def test_close_waits_for_accepted_writes_and_closes_every_connection(tmp_path: Path) -> None:
    """aclose waits for every write accepted before it (each returns normally), refuses later ones, and closes
    every connection: SQLite removes the WAL file when the last one closes."""
    path = tmp_path / "close.db"
    writer = SqliteSingleWriter(path)
    await writer.write("CREATE TABLE t (x)")
    await writer.query(count_rows)  # a read connection is open too
    assert wal_exists(path)
    entered, release = threading.Event(), threading.Event()

    def hold(connection: sqlite3.Connection) -> None:
        entered.set()
        assert release.wait(10)

    results: list[int] = []
    closing, queued = anyio.Event(), anyio.Event()
    callers: list[int] = []

    async def insert(value: int) -> None:
        callers.append(value)
        if len(callers) == 10:
            queued.set()  # main resumes once this last caller has joined the queue
        results.append(await writer.write("INSERT INTO t VALUES (?)", (value,)))

    async def close() -> None:
        closing.set()
        await writer.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.execute_in_transaction, hold)
        await anyio.to_thread.run_sync(entered.wait, 10)
        for value in range(10):
            tg.start_soon(insert, value)
        await queued.wait()
        assert writer.get_stats().pending_writes == 11  # all ten queued behind the held transaction
        tg.start_soon(close)
        await closing.wait()
        with pytest.raises(anyio.ClosedResourceError):
            await writer.write("INSERT INTO t VALUES (99)")
        release.set()
    assert results == [1] * 10
    assert writer.get_stats().read_connections == 0
    assert not wal_exists(path)
    async with SqliteSingleWriter(path) as again:
        assert await again.query(count_rows) == 10


async def test_close_waits_for_reads_in_flight(tmp_path: Path) -> None:
    """aclose lets a read already running finish (and return its value) before closing the connections."""
    writer = SqliteSingleWriter(tmp_path / "reads.db")
    await writer.write("CREATE TABLE t (x)")
    reading, release = anyio.Event(), anyio.Event()
    closed = anyio.Event()
    results: list[int] = []

    async def slow(connection: SqliteConnection) -> int:
        reading.set()
        await release.wait()
        return await count_rows(connection)

    async def read() -> None:
        results.append(await writer.read("k", slow))

    async def close() -> None:
        await writer.aclose()
        closed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await reading.wait()
        tg.start_soon(close)
        await anyio.sleep(5)
        assert writer.closed and not closed.is_set()
        with pytest.raises(anyio.ClosedResourceError):
            await writer.read("other", slow)
        release.set()
    assert results == [0]
    assert closed.is_set()


async def test_close_is_idempotent_and_concurrent_closers_wait(tmp_path: Path) -> None:
    """aclose may be called many times, concurrently: each returns once the writer is fully closed."""
    writer = SqliteSingleWriter(tmp_path / "twice.db")
    await writer.write("CREATE TABLE t (x)")
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(writer.aclose)
    await writer.aclose()
    assert writer.closed


async def test_open_errors_surface_to_the_caller_and_later_calls_retry(tmp_path: Path) -> None:
    """A database that cannot be opened raises sqlite3.OperationalError at the call; once it can, calls work."""
    folder = tmp_path / "missing"
    writer = SqliteSingleWriter(folder / "db.sqlite")
    with pytest.raises(sqlite3.OperationalError):
        await writer.write("CREATE TABLE t (x)")
    assert [event.signal for event in writer.get_signals("write.error:*")] == ["write.error:OperationalError"]
    folder.mkdir()
    assert await writer.write("CREATE TABLE t (x)") == 0
    await writer.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await writer.open()


async def test_get_or_create_shares_one_writer_per_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every spelling of one file (str, Path, relative, Data Source string) gets the same writer."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "shared.db"
    writer = SqliteSingleWriter.get_or_create(path)
    try:
        assert SqliteSingleWriter.get_or_create(str(path)) is writer
        assert SqliteSingleWriter.get_or_create("shared.db") is writer
        assert SqliteSingleWriter.get_or_create(f"Data Source={path};Cache=Shared") is writer
        assert SqliteSingleWriter.get_or_create(tmp_path / "sub" / ".." / "shared.db") is writer
        assert SqliteSingleWriter.get_or_create(tmp_path / "other.db") is not writer
        assert writer.database == str(path.resolve())
    finally:
        await writer.aclose()
        await SqliteSingleWriter.get_or_create(tmp_path / "other.db").aclose()


async def test_get_or_create_refuses_different_options(tmp_path: Path) -> None:
    """Asking for a running shared writer with different options raises ValueError; the same options (however
    spelled) or None are fine."""
    path = tmp_path / "opts.db"
    writer = SqliteSingleWriter.get_or_create(path, SqliteSingleWriterOptions(default_cache_duration=60))
    try:
        same = SqliteSingleWriterOptions(default_cache_duration=timedelta(minutes=1))
        assert SqliteSingleWriter.get_or_create(path, same) is writer
        assert SqliteSingleWriter.get_or_create(path) is writer
        with pytest.raises(ValueError, match="options"):
            SqliteSingleWriter.get_or_create(path, SqliteSingleWriterOptions())
        with pytest.raises(TypeError, match="options"):
            SqliteSingleWriter.get_or_create(path, {"sample_rate": 2})  # type: ignore[arg-type]
    finally:
        await writer.aclose()


async def test_a_closed_shared_writer_is_replaced(tmp_path: Path) -> None:
    """Once the shared writer is closed, get_or_create makes a fresh one (with new options if asked)."""
    path = tmp_path / "fresh.db"
    first = SqliteSingleWriter.get_or_create(path)
    await first.write("CREATE TABLE t (x)")
    await first.aclose()
    second = SqliteSingleWriter.get_or_create(path, SqliteSingleWriterOptions(sample_rate=5))
    try:
        assert second is not first and not second.closed
        assert second.options.sample_rate == 5
        assert await second.write("INSERT INTO t VALUES (1)") == 1
    finally:
        await second.aclose()
    await first.aclose()  # closing the old one again does not deregister the new one's successor
    third = SqliteSingleWriter.get_or_create(path)
    assert third is not second
    await third.aclose()


async def test_get_or_create_memory_is_one_shared_database() -> None:
    """get_or_create(":memory:") returns one shared in-memory writer until it is closed."""
    writer = SqliteSingleWriter.get_or_create(":memory:")
    try:
        assert SqliteSingleWriter.get_or_create(":memory:") is writer
        await writer.write("CREATE TABLE t (x)")
        await writer.write("INSERT INTO t VALUES (1)")
        assert await SqliteSingleWriter.get_or_create(":memory:").query(count_rows) == 1
    finally:
        await writer.aclose()
    async with SqliteSingleWriter.get_or_create(":memory:") as fresh:

        async def tables(connection: SqliteConnection) -> list[object]:
            return await connection.execute_fetchall("SELECT name FROM sqlite_master")

        assert await fresh.query(tables) == []  # the old database went with its writer


async def test_connection_strings(tmp_path: Path) -> None:
    """Data Source strings: the file is used, ignorable keys are ignored, Mode=Memory names a shared in-memory
    database, Mode=ReadWrite needs an existing file."""
    path = tmp_path / "cs.db"
    async with SqliteSingleWriter(f"Data Source={path};Mode=ReadWriteCreate;Cache=Shared;Pooling=False") as writer:
        await writer.write("CREATE TABLE t (x)")
        assert writer.database == str(path)
    async with SqliteSingleWriter(f"  datasource = {path} ; Mode=ReadWrite ;") as writer:
        assert await writer.query(count_rows) == 0
    with pytest.raises(sqlite3.OperationalError):
        async with SqliteSingleWriter(f"Filename={tmp_path / 'absent.db'};Mode=ReadWrite"):
            pass
    async with (
        SqliteSingleWriter("Data Source=named;Mode=Memory") as named,
        SqliteSingleWriter("Data Source=:memory:") as private,
    ):
        assert named.is_memory and named.database == "memory:named"
        assert private.is_memory and private.database == ":memory:"
        await named.write("CREATE TABLE t (x)")
        assert await named.query(count_rows) == 0


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "must not be empty"),
        ("Data Source=x.db;Mode=ReadOnly", "ReadOnly"),
        ("Data Source=x.db;Mode=Sideways", "unknown Mode"),
        ("Data Source=x.db;Password=secret", "Password"),
        ("Data Source=x.db;Flavour=vanilla", "unknown connection string key 'Flavour'"),
        ("Data Source=x.db;Cache", "not key=value"),
        ("Mode=Memory", "no Data Source"),
        ("file:x.db?mode=ro", "file: URI"),
        ('Data Source="open.db', "no closing"),
        ("Data Source='a.db' b.db", "after the quoted value"),
        ("Cache=Shared", "no Data Source"),
        ("Cache=Shared;Data Source=x.db;Flavour=vanilla", "unknown connection string key 'Flavour'"),
        ("=x;Data Source=x.db", "no key"),
    ],
)
def test_bad_paths_are_refused(path: str, message: str) -> None:
    """An unusable path or an unreadable connection string raises ValueError at construction, naming it."""
    with pytest.raises(ValueError, match=message):
        SqliteSingleWriter(path)


def test_bad_constructor_arguments() -> None:
    """Wrong types raise TypeError naming the argument."""
    with pytest.raises(TypeError, match="path"):
        SqliteSingleWriter(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options"):
        SqliteSingleWriter(":memory:", {"sample_rate": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="signals"):
        SqliteSingleWriter(":memory:", signals=object())  # type: ignore[arg-type]


async def test_pragmas_follow_the_options(tmp_path: Path) -> None:
    """Without WAL the journal stays in rollback mode; without foreign keys a dangling reference is accepted;
    a zero busy timeout sets no busy_timeout pragma."""
    options = SqliteSingleWriterOptions(enable_write_ahead_logging=False, enforce_foreign_keys=False, busy_timeout=0)
    async with SqliteSingleWriter(tmp_path / "plain.db", options) as writer:
        await writer.write("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        await writer.write("CREATE TABLE c (p INTEGER REFERENCES p(id))")
        assert await writer.write("INSERT INTO c VALUES (42)") == 1

        async def journal(connection: SqliteConnection) -> object:
            row = await connection.execute_fetchone("PRAGMA journal_mode")
            return row[0] if row else None

        assert await writer.query(journal) == "delete"
        assert writer.get_signals("pragma.*") == []


async def test_shared_sink(tmp_path: Path) -> None:
    """With signals= the writer emits on that sink."""
    from ephemeral.core import SignalSink

    sink = SignalSink()
    async with SqliteSingleWriter(tmp_path / "sink.db", signals=sink) as writer:
        await writer.write("CREATE TABLE t (x)")
        assert writer.signals is sink
    assert sink.detect("write.start") and sink.detect("connection.open.write")
    assert writer.writer_id.startswith("sqlite:")


async def test_the_wait_in_aclose_can_be_cancelled_and_the_last_read_closes(tmp_path: Path) -> None:
    """move_on_after around aclose bounds the wait for a read in flight: aclose returns at the deadline, the
    writer stays closed to new calls, and once the read returns (with its value) the connections are closed."""
    path = tmp_path / "bounded.db"
    writer = SqliteSingleWriter(path)
    await writer.write("CREATE TABLE t (x)")
    reading, release = anyio.Event(), anyio.Event()
    results: list[int] = []

    async def slow(connection: SqliteConnection) -> int:
        reading.set()
        await release.wait()
        return await count_rows(connection)

    async def read() -> None:
        results.append(await writer.query(slow))

    async def release_later() -> None:
        await anyio.sleep(30)  # without a cancellable wait, aclose would only return here
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await reading.wait()
        tg.start_soon(release_later)
        start = anyio.current_time()
        with anyio.move_on_after(5) as scope:
            await writer.aclose()
        assert scope.cancelled_caught
        assert anyio.current_time() - start == pytest.approx(5, abs=0.5)
        assert writer.closed
        with pytest.raises(anyio.ClosedResourceError):
            await writer.write("INSERT INTO t VALUES (1)")
        assert wal_exists(path)  # the connections stay open while the read runs
    assert results == [0]
    assert writer.get_stats().read_connections == 0
    assert not wal_exists(path)  # the read, the last call, closed every connection
    await writer.aclose()  # returns at once


async def test_a_cancelled_read_still_closes_the_connections(tmp_path: Path) -> None:
    """A read that never returns holds the close back; cancelling it closes the connections (shielded)."""
    path = tmp_path / "stuck.db"
    writer = SqliteSingleWriter(path)
    await writer.write("CREATE TABLE t (x)")
    reading = anyio.Event()

    async def stuck(connection: SqliteConnection) -> int:
        reading.set()
        await anyio.sleep_forever()
        return 0

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.query, stuck)
        await reading.wait()
        with anyio.move_on_after(1):
            await writer.aclose()
        tg.cancel_scope.cancel()
    assert not wal_exists(path)
    await writer.aclose()


@pytest.mark.parametrize("target", ["file", ":memory:"])
async def test_aclose_inside_a_read_raises(tmp_path: Path, target: str) -> None:
    """A reader (or a task it starts) calling aclose() of its own writer gets RuntimeError instead of a
    deadlock; the writer stays usable and closes normally afterwards."""
    writer = SqliteSingleWriter(tmp_path / "self.db" if target == "file" else target)
    await writer.write("CREATE TABLE t (x)")

    async def closes(connection: SqliteConnection) -> int:
        await writer.aclose()
        return 1

    errors: list[RuntimeError] = []

    async def close_recording() -> None:
        try:
            await writer.aclose()
        except RuntimeError as error:
            errors.append(error)

    async def closes_in_a_child(connection: SqliteConnection) -> int:
        async with anyio.create_task_group() as tg:
            tg.start_soon(close_recording)
        return 1

    with pytest.raises(RuntimeError, match="inside one of its reads"):
        await writer.query(closes)
    assert await writer.read("k", closes_in_a_child) == 1
    assert len(errors) == 1 and "inside one of its reads" in str(errors[0])
    assert not writer.closed
    assert await writer.write("INSERT INTO t VALUES (1)") == 1
    await writer.aclose()
    assert writer.closed


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Cache=Shared;Data Source=app.db", "app.db"),
        ("Pooling=False ; Mode=ReadWriteCreate; DataSource=app.db", "app.db"),
        ("  FOREIGN KEYS = true ; filename = app.db ", "app.db"),
        ('Data Source="my app.db"', "my app.db"),
        ("Data Source='app.db'", "app.db"),
        ('Data Source="semi;colon=.db";Cache=Shared', "semi;colon=.db"),
        ('Data Source="say ""hi"".db"', 'say "hi".db'),
        ("Data Source='it''s.db'", "it's.db"),
        ('Data Source = " padded.db " ;', " padded.db "),
        ("Data Source=a=b.db", "a=b.db"),
    ],
)
def test_connection_string_keys_in_any_order_and_quoted_values(
    text: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any part with a connection-string key makes a connection string (not a file named after it); keys are
    case- and space-insensitive; '"' or "'" quotes are removed, a doubled quote inside standing for itself."""
    monkeypatch.chdir(tmp_path)
    assert SqliteSingleWriter(text).database == str(tmp_path / name)


def test_a_path_with_an_equals_sign_but_no_known_key_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ "x=1.db" names a file: only the known keys make a connection string."""
    monkeypatch.chdir(tmp_path)
    assert SqliteSingleWriter("x=1.db").database == str(tmp_path / "x=1.db")
    assert SqliteSingleWriter("run;a=1.db").database == str(tmp_path / "run;a=1.db")


@pytest.mark.parametrize("name", ["sessions#1", "a?b", "my%20db", "sp ace/slash&amp"])
async def test_named_memory_databases_never_touch_the_disk(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Mode=Memory name with URI characters ('#', '?', '%', '/', '&') is escaped: no file appears, the
    readers share the writer's database, and names differing after such a character are different databases."""
    monkeypatch.chdir(tmp_path)
    async with (
        SqliteSingleWriter(f"Data Source={name};Mode=Memory") as writer,
        SqliteSingleWriter(f"Data Source={name}-2;Mode=Memory") as other,
    ):
        await writer.write("CREATE TABLE t (x)")
        await writer.write("INSERT INTO t VALUES (1)")
        await other.write("CREATE TABLE t (x)")
        assert writer.is_memory and writer.database == f"memory:{name}"
        assert await writer.query(count_rows) == 1
        assert await other.query(count_rows) == 0
    assert os.listdir(tmp_path) == []


async def test_one_writer_per_named_memory_database() -> None:
    """A second writer of a named in-memory database (whose shared-cache table locks ignore busy_timeout) is
    refused with ValueError pointing at get_or_create; once the first is closed (or dropped unused) a new one
    may open it. Private ":memory:" writers are independent."""
    first = SqliteSingleWriter("Data Source=one;Mode=Memory")
    await first.write("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="get_or_create"):
        SqliteSingleWriter("Data Source=one;Mode=Memory")
    with pytest.raises(ValueError, match="already has a writer"):
        SqliteSingleWriter.get_or_create("DataSource=one;Mode=Memory")
    await first.aclose()
    shared = SqliteSingleWriter.get_or_create("Data Source=one;Mode=Memory")
    try:
        assert SqliteSingleWriter.get_or_create("Data Source=one;Mode=Memory") is shared
        with pytest.raises(ValueError, match="get_or_create"):
            SqliteSingleWriter("Data Source=one;Mode=Memory")
    finally:
        await shared.aclose()
    unused = SqliteSingleWriter("Data Source=one;Mode=Memory")
    del unused
    gc.collect()
    async with (
        SqliteSingleWriter("Data Source=one;Mode=Memory") as again,
        SqliteSingleWriter(":memory:") as a,
        SqliteSingleWriter(":memory:") as b,
    ):
        await again.write("CREATE TABLE t (x)")  # a fresh database: the old one went with its writer
        await a.write("CREATE TABLE t (x)")
        await b.write("CREATE TABLE t (x)")


@pytest.mark.parametrize("backends", [("asyncio", "asyncio"), ("asyncio", "trio"), ("trio", "asyncio")])
def test_a_shared_writer_belongs_to_the_loop_that_first_used_it(tmp_path: Path, backends: tuple[str, str]) -> None:
    """get_or_create in a later event loop, while the writer of an earlier one is still open, raises RuntimeError
    saying to close it before that loop ends; so does any use from the other loop. Closing it from the new loop
    (nothing of the old loop runs any more) deregisters it, and the next request gets a fresh writer."""
    path = tmp_path / "loops.db"
    first, second = backends

    async def use() -> SqliteSingleWriter:
        writer = SqliteSingleWriter.get_or_create(path)
        await writer.write("CREATE TABLE IF NOT EXISTS t (x)")
        await writer.write("INSERT INTO t VALUES (1)")
        return writer

    left_open = anyio.run(use, backend=first)

    async def later() -> None:
        with pytest.raises(RuntimeError, match="belongs to the event loop that first used it"):
            SqliteSingleWriter.get_or_create(path)
        with pytest.raises(RuntimeError, match="close it"):
            await left_open.write("INSERT INTO t VALUES (2)")
        with pytest.raises(RuntimeError, match="belongs to the event loop"):
            await left_open.query(count_rows)
        await left_open.aclose()
        async with SqliteSingleWriter.get_or_create(path) as fresh:
            assert fresh is not left_open
            assert await fresh.query(count_rows) == 1

    anyio.run(later, backend=second)


async def test_lifecycle_faults(tmp_path: Path) -> None:
    """An error or a deadline inside the block leaves no task behind, the accepted writes land, the
    connections close; a closed writer refuses entering; aclose is idempotent."""
    made: list[SqliteSingleWriter] = []

    def make() -> SqliteSingleWriter:
        made.append(SqliteSingleWriter(tmp_path / f"faults{len(made)}.db"))
        return made[-1]

    async def use(writer: SqliteSingleWriter) -> None:
        await writer.write("CREATE TABLE t (x)")
        await writer.write("INSERT INTO t VALUES (1)")

    await assert_lifecycle_faults(make, use, nested_entry=True)
    assert all(writer.closed for writer in made)
    async with SqliteSingleWriter(tmp_path / "faults0.db") as reopened:
        assert await reopened.query(count_rows) == 1
