"""Connections: opening them with the writer's pragmas, the async read connection readers get, the read pool."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeAlias, TypeVar

import anyio
import anyio.to_thread

from ephemeral.core.lowlevel import to_seconds

from ._jobs import Bound
from ._options import SqliteSingleWriterOptions
from ._target import DatabaseTarget

__all__ = ("ReadPool", "SqlParams", "SqliteConnection", "bind_params", "close_quietly", "open_connection")

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


class SqliteConnection:
    """A read connection, lent to a reader for the duration of one read.

    Its surface follows aiosqlite's, so aiosqlite-style readers port with few changes; each call runs
    the stdlib ``sqlite3`` call in a worker thread. Calls on one connection run one at a time. The
    connection is ``query_only``: a statement that writes raises ``sqlite3.OperationalError`` (writes
    go through the writer). Every statement sees every write committed before it started.

    Once the reader returns, the connection goes back to the pool and this object refuses further use
    (``anyio.ClosedResourceError``).
    """

    __slots__ = ("_lock", "_raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw: sqlite3.Connection | None = raw
        self._lock = anyio.Lock()

    def _connection(self) -> sqlite3.Connection:
        raw = self._raw
        if raw is None:
            raise anyio.ClosedResourceError("this read connection was lent to a reader that has returned")
        return raw

    async def _call(self, fn: Callable[[], T]) -> T:
        async with self._lock:
            self._connection()
            return await anyio.to_thread.run_sync(fn)

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
