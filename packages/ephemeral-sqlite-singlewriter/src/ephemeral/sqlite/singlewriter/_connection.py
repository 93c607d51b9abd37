"""Connections: opening them with the writer's pragmas, the async read connection readers get, the read pool."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, TypeAlias, TypeVar

import anyio
import anyio.to_thread

from ephemeral.core import CoordinatorClosedError
from ephemeral.core.lowlevel import to_seconds

from ._jobs import Bound
from ._options import SqliteSingleWriterOptions
from ._target import DatabaseTarget

__all__ = (
    "ReadPool",
    "SqlParams",
    "SqliteConnection",
    "SqliteCursor",
    "bind_params",
    "close_quietly",
    "open_connection",
)

T = TypeVar("T")

#: Query parameters in the ``sqlite3`` style: a sequence for ``?`` placeholders, a mapping for
#: ``:name`` placeholders, or None for none.
SqlParams: TypeAlias = Sequence[Any] | Mapping[str, Any] | None


def bind_params(params: object, name: str = "params") -> Bound:
    """Check query parameters at the call that received them and put them in the form ``sqlite3`` binds.

    Raises:
        TypeError: ``params`` is a str or bytes (a common slip for a one-element tuple), or neither a
            sequence nor a mapping.
    """
    if params is None:
        return ()
    if isinstance(params, (str, bytes, bytearray)):
        raise TypeError(f"{name} must be a sequence or a mapping, not {type(params).__name__} (use a tuple: (value,))")
    if isinstance(params, dict):
        return params
    if isinstance(params, Mapping):
        return dict(params)
    if isinstance(params, Sequence):
        return params
    raise TypeError(f"{name} must be a sequence, a mapping or None, got {params!r}")


def open_connection(
    target: DatabaseTarget, options: SqliteSingleWriterOptions, *, read: bool
) -> tuple[sqlite3.Connection, list[str]]:
    """Open a connection (blocking: run it in a worker thread) and apply the pragmas.

    The connection is in autocommit mode (the writer issues BEGIN/COMMIT itself) and usable from any
    thread, one at a time. A read connection is ``query_only``; the write connection switches the
    database to WAL when the options ask for it.

    Returns:
        The connection and the signals naming the pragmas that took effect.
    """
    busy = to_seconds(options.busy_timeout, "busy_timeout", allow_zero=True)
    connection = sqlite3.connect(
        target.database, timeout=busy, isolation_level=None, check_same_thread=False, uri=target.uri
    )
    applied: list[str] = []
    try:
        milliseconds = round(busy * 1000)
        if milliseconds > 0:
            connection.execute(f"PRAGMA busy_timeout={milliseconds:d}")
            applied.append("pragma.busy_timeout")
        if options.enforce_foreign_keys:
            connection.execute("PRAGMA foreign_keys=ON")
            applied.append("pragma.foreign_keys.on")
        if read:
            connection.execute("PRAGMA query_only=ON")
        elif options.enable_write_ahead_logging and not target.is_memory:
            (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() == "wal":
                applied.append("pragma.wal.on")
    except BaseException:
        connection.close()
        raise
    return connection, applied


def close_quietly(connections: Sequence[sqlite3.Connection]) -> None:
    """Close every connection (blocking); one that fails to close does not keep the others open."""
    for connection in connections:
        try:
            connection.close()
        except sqlite3.Error:
            pass


def _fetchall(connection: sqlite3.Connection, sql: str, params: Bound) -> list[Any]:
    cursor = connection.execute(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _fetchone(connection: sqlite3.Connection, sql: str, params: Bound) -> Any:
    cursor = connection.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()  # ends the statement, and with it the read transaction (WAL snapshot)


class SqliteCursor:
    """A cursor of a read connection, with aiosqlite's ``Cursor`` API: ``await cursor.fetchone()``, ...

    Each fetch runs in a worker thread. Use it as ``async with connection.execute(sql) as cursor:`` or
    ``async for row in cursor``; close it (or let the reader return, which closes it) to end its read
    snapshot.
    """

    __slots__ = ("_connection", "_raw")

    def __init__(self, connection: SqliteConnection, raw: sqlite3.Cursor) -> None:
        self._connection = connection
        self._raw = raw

    async def execute(self, sql: str, params: SqlParams = None) -> SqliteCursor:
        """Run another statement on this cursor; returns the cursor."""
        bound = bind_params(params)
        await self._connection._call(partial(self._raw.execute, sql, bound))
        return self

    async def executemany(self, sql: str, params_seq: Iterable[SqlParams]) -> SqliteCursor:
        """Run a statement for each parameter set on this cursor; returns the cursor."""
        bound = [bind_params(params, f"params_seq[{i}]") for i, params in enumerate(params_seq)]
        await self._connection._call(partial(self._raw.executemany, sql, bound))
        return self

    async def fetchone(self) -> Any | None:
        """The next row, or None when there are no more."""
        return await self._connection._call(self._raw.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` next rows (``arraysize`` when None)."""
        count = self._raw.arraysize if size is None else size
        return await self._connection._call(partial(self._raw.fetchmany, count))

    async def fetchall(self) -> list[Any]:
        """Every remaining row."""
        return await self._connection._call(self._raw.fetchall)

    async def close(self) -> None:
        """Close the cursor (ending its statement and read snapshot). Idempotent."""
        self._connection._forget(self._raw)
        self._raw.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._rows()

    async def _rows(self) -> AsyncIterator[Any]:
        while True:
            rows = await self.fetchmany()  # a worker-thread hop per ``arraysize`` rows, not per row
            if not rows:
                return
            for row in rows:
                yield row

    async def __aenter__(self) -> SqliteCursor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def rowcount(self) -> int:
        """As ``sqlite3.Cursor.rowcount``."""
        return self._raw.rowcount

    @property
    def lastrowid(self) -> int | None:
        """As ``sqlite3.Cursor.lastrowid``."""
        return self._raw.lastrowid

    @property
    def description(self) -> Any:
        """The columns of the last query, as ``sqlite3.Cursor.description``."""
        return self._raw.description

    @property
    def arraysize(self) -> int:
        """How many rows ``fetchmany()`` and ``async for`` fetch per worker-thread hop."""
        return self._raw.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._raw.arraysize = value

    @property
    def row_factory(self) -> Any:
        """This cursor's row factory (``sqlite3.Row``, ...)."""
        return self._raw.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._raw.row_factory = factory

    @property
    def connection(self) -> SqliteConnection:
        """The read connection this cursor belongs to."""
        return self._connection


class _CursorCall:
    """What ``execute`` and ``executemany`` return, as in aiosqlite.

    Awaited, it gives the cursor; used with ``async with``, the cursor, closed on leaving.
    """

    __slots__ = ("_cursor", "_open")

    def __init__(self, open_cursor: Callable[[], Awaitable[SqliteCursor]]) -> None:
        self._open = open_cursor
        self._cursor: SqliteCursor | None = None

    def __await__(self) -> Generator[Any, None, SqliteCursor]:
        return self._start().__await__()

    async def _start(self) -> SqliteCursor:
        if self._cursor is not None:
            raise RuntimeError("this execute() was already awaited; call execute() again for another cursor")
        self._cursor = await self._open()
        return self._cursor

    async def __aenter__(self) -> SqliteCursor:
        return await self._start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class SqliteConnection:
    """A read connection, lent to a reader for the duration of one read.

    Its surface is aiosqlite's, so aiosqlite readers run unchanged: ``await connection.execute(sql,
    params)`` returns a ``SqliteCursor`` (``await cursor.fetchone()``, ``fetchall()``, ``fetchmany()``,
    ``async for row in cursor``), ``async with connection.execute(...) as cursor`` closes it on leaving,
    and ``executemany``, ``execute_fetchall`` and ``row_factory`` work as there. Each call runs the
    stdlib ``sqlite3`` call in a worker thread; calls on one connection run one at a time. The
    connection is ``query_only``: a statement that writes raises ``sqlite3.OperationalError`` (writes
    go through the writer). Every statement sees every write committed before it started.

    Once the reader returns, its cursors are closed, the connection goes back to the pool and this
    object refuses further use (``CoordinatorClosedError``, an ``anyio.ClosedResourceError``).
    """

    __slots__ = ("_cursors", "_lock", "_raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw: sqlite3.Connection | None = raw
        self._lock = anyio.Lock()
        self._cursors: set[sqlite3.Cursor] = set()  # open cursors, closed when the read ends

    def _connection(self) -> sqlite3.Connection:
        raw = self._raw
        if raw is None:
            raise CoordinatorClosedError("this SqliteConnection was lent to a reader that has returned")
        return raw

    async def _call(self, fn: Callable[[], T]) -> T:
        async with self._lock:
            self._connection()
            return await anyio.to_thread.run_sync(fn)

    def execute(self, sql: str, params: SqlParams = None) -> _CursorCall:
        """Run one statement; ``await`` it for a ``SqliteCursor``, or ``async with`` it (aiosqlite's shape).

        Raises:
            TypeError: ``params`` is neither a sequence, a mapping nor None (at the call).
            sqlite3.Error: Whatever SQLite raised (when awaited).
        """
        bound = bind_params(params)
        return _CursorCall(partial(self._cursor_call, lambda raw: raw.execute(sql, bound)))

    def executemany(self, sql: str, params_seq: Iterable[SqlParams]) -> _CursorCall:
        """Run one statement for each parameter set; ``await`` it for the cursor, or ``async with`` it."""
        bound = [bind_params(params, f"params_seq[{i}]") for i, params in enumerate(params_seq)]
        return _CursorCall(partial(self._cursor_call, lambda raw: raw.executemany(sql, bound)))

    async def _cursor_call(self, run: Callable[[sqlite3.Connection], sqlite3.Cursor]) -> SqliteCursor:
        raw = await self._call(partial(run, self._connection()))
        self._cursors.add(raw)
        return SqliteCursor(self, raw)

    def _forget(self, cursor: sqlite3.Cursor) -> None:
        self._cursors.discard(cursor)

    async def execute_fetchall(self, sql: str, params: SqlParams = None) -> list[Any]:
        """Run one statement and return all its rows (tuples, unless ``row_factory`` says otherwise).

        Raises:
            TypeError: ``params`` is neither a sequence, a mapping nor None.
            sqlite3.Error: Whatever SQLite raised.
        """
        bound = bind_params(params)
        return await self._call(partial(_fetchall, self._connection(), sql, bound))

    async def execute_fetchone(self, sql: str, params: SqlParams = None) -> Any | None:
        """Run one statement and return its first row, or None when it returns none."""
        bound = bind_params(params)
        return await self._call(partial(_fetchone, self._connection(), sql, bound))

    async def run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` with the raw ``sqlite3.Connection`` in a worker thread and return its result.

        For what the two helpers above do not cover (``executemany`` reads, iterating a cursor, ...).
        Close or exhaust the cursors ``fn`` opens: an unfinished statement holds its read snapshot.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        return await self._call(partial(fn, self._connection()))

    @property
    def row_factory(self) -> Any:
        """The ``sqlite3`` row factory of this read (for example ``sqlite3.Row``); reset after the read."""
        return self._connection().row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._connection().row_factory = factory

    def _release(self) -> sqlite3.Connection:
        raw = self._connection()
        self._raw = None
        for cursor in self._cursors:  # a cursor left open would hold its read snapshot in the pool
            cursor.close()
        self._cursors.clear()
        return raw


def _rollback(connection: sqlite3.Connection) -> None:
    connection.execute("ROLLBACK")


class ReadPool:
    """Up to ``size`` read connections, opened on demand and kept open for the next read."""

    __slots__ = ("_idle", "_on_open", "_open", "_opened", "_slots")

    def __init__(self, size: int, open_one: Callable[[], sqlite3.Connection], on_open: Callable[[], None]) -> None:
        self._slots = anyio.Semaphore(size)
        self._idle: list[sqlite3.Connection] = []
        self._open = open_one
        self._on_open = on_open
        self._opened = 0

    @property
    def open_count(self) -> int:
        """How many read connections are open (idle or lent)."""
        return self._opened

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqliteConnection]:
        """Lend a connection (waiting, first come first served, while all ``size`` are lent)."""
        async with self._slots:
            if self._idle:
                raw = self._idle.pop()
            else:
                raw = await anyio.to_thread.run_sync(self._open)
                self._opened += 1
                self._on_open()
            lent = SqliteConnection(raw)
            try:
                yield lent
            finally:
                lent._release()
                with anyio.CancelScope(shield=True):
                    await self._take_back(raw)

    async def _take_back(self, raw: sqlite3.Connection) -> None:
        raw.row_factory = None
        if raw.in_transaction:  # the reader began one through run_sync: end it, so the next read is fresh
            try:
                await anyio.to_thread.run_sync(_rollback, raw)
            except sqlite3.Error:
                self._opened -= 1
                await anyio.to_thread.run_sync(close_quietly, [raw])
                return
        self._idle.append(raw)

    def detach_idle(self) -> list[sqlite3.Connection]:
        """Hand over every idle connection (to be closed); the pool forgets them."""
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        return idle
