"""PostgreSQL storage atom: a key/value table written by one writer in batched transactions."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import groupby
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed

from ephemeral.atoms.data import (
    DataSerializer,
    DataStorageAtomBase,
    DataStorageConfig,
    JsonSerializer,
    WriteItem,
)
from ephemeral.core import SignalSink, TypedSignalSink
from ephemeral.core.lowlevel import BackoffPolicy, check_int, check_optional_int, to_seconds
from ephemeral.core.sql import derived_identifier, quote_identifier, table_identifier, validate_identifier

__all__ = ("PostgresDataStorageAtom",)

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

Pool = ConnectionPool[psycopg.Connection[tuple[Any, ...]]]

# SQLSTATEs that pass on retry: connection exceptions (08), serialization failure and deadlock,
# insufficient resources (53: too many connections, disk full), lock not available, the server shutting
# down or starting up (57P01-57P03), an idle session closed by the server (57P05), system I/O errors (58).
# Errors without a SQLSTATE are client-side connection failures (refused, reset, closed) and pool timeouts.
_TRANSIENT_STATES = ("08", "40001", "40P01", "53", "55P03", "57P01", "57P02", "57P03", "57P05", "58")
# A \u0000 escape in JSON text (not an escaped backslash followed by "u0000"): json and jsonb refuse it.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# The longest key the primary key's btree index takes, in UTF-8 bytes: an index row holds at most 2704 bytes
# (with the default 8 kB pages), of which 12 are the row's and the text's headers. Longer keys would fail at
# the write with ProgramLimitExceeded (unless they happen to compress); they are refused at the call instead.
_MAX_KEY_BYTES = 2692
_CONNECT_BACKOFF = BackoffPolicy(0.05, max_delay=1.0)


# What the server says when it refuses a connection for good (libpq gives these no SQLSTATE): a missing
# database or role, failed authentication, no pg_hba.conf entry, a role not allowed to log in or connect.
_PERMANENT_REFUSALS = re.compile(
    r"FATAL:.*(does not exist|authentication failed|no pg_hba\.conf entry|not permitted to log in|"
    r"permission denied for database)"
)


def _permanent_refusal(error: BaseException) -> str | None:
    """The server's words when ``error`` is a connection it refused for good (wrong database, role or password)."""
    if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
        match = _PERMANENT_REFUSALS.search(str(error))
        if match is not None:
            return str(error)[match.start() :].splitlines()[0]
    return None


def _is_connection_error(error: BaseException) -> bool:
    if isinstance(error, PoolClosed) or not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    if state is None:
        return _permanent_refusal(error) is None
    return state.startswith(_TRANSIENT_STATES)


def _path_keys(path: str | Sequence[str]) -> list[str]:
    if isinstance(path, str):
        keys = path.split(".")
        if not all(keys):
            raise ValueError(
                f"path {path!r} has an empty segment; give a sequence of keys to match keys that contain dots"
            )
        return keys
    if not isinstance(path, Sequence) or not path or not all(isinstance(k, str) for k in path):
        raise TypeError(f"path must be a dotted str or a non-empty sequence of str keys, got {path!r}")
    return list(path)


class PostgresDataStorageAtom(DataStorageAtomBase[K, V]):
    """Stores values in a PostgreSQL table ``(key TEXT PRIMARY KEY, value JSONB, created_at, updated_at)``.

    The writes that wait while the writer is busy are stored together in one transaction: runs of saves
    as one ``INSERT ... ON CONFLICT (key) DO UPDATE`` ``executemany`` (pipelined by psycopg), runs of
    deletes as one ``DELETE ... WHERE key = ANY(...)``, in acceptance order. psycopg's async API is
    asyncio-only, so the atom uses psycopg's sync ``ConnectionPool`` and runs each batch and each read in a
    worker thread: one thread hop per batch or read, on asyncio and on trio.

    Entry connects (retrying refused connections until ``connect_timeout``, so a server still starting is
    waited for), creates the schema, table and ``updated_at`` index when missing, checks an existing
    table's value column has the expected type, then opens the pool. A server unreachable for all of
    ``connect_timeout`` makes entry raise ``ConnectionError``. Once running, a lost connection (a server
    restart, ``pg_terminate_backend``, a network cut) is discarded, the pool reconnects, and the batch is
    retried with backoff for up to ``config.write_retry_timeout`` (signalled ``retrying.data.{db}:{Error}``);
    saves and deletes are idempotent, so a batch whose commit was cut off is safe to store again.

    Args:
        sink: Where signals go (and come from); see ``DataStorageAtomBase``.
        config: Names, signal prefixes and pacing.
        conninfo: A libpq connection string (``"host=... dbname=..."``) or URL
            (``"postgresql://user@host/db"``).
        table_name: The table; ``config.database_name`` when None. Validated as a plain SQL identifier and
            quoted.
        schema: The table's schema (created when missing), validated and quoted likewise.
        use_jsonb: Store values in a ``JSONB`` column (queryable with ``query_by_json_path``). False: a
            ``JSON`` column, which keeps the text as written, or ``TEXT`` when a ``serializer`` is given
            (its text need not be JSON).
        pool_min_size: Connections the pool keeps open.
        pool_max_size: The most connections; ``config.max_concurrency + 1`` (the readers and the writer)
            when None.
        connect_timeout: How long entry waits for the server, and how long one attempt waits for a
            connection from the pool (seconds or a timedelta).
        value_type: The type loads rebuild with the default JSON serializer.
        serializer: How values become text and back; JSON when None.

    Raises:
        TypeError, ValueError: An argument is invalid: a table or schema name that is not a plain
            identifier, a malformed ``conninfo``, pool sizes out of range (before any connection).
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None,
        config: DataStorageConfig,
        conninfo: str,
        *,
        table_name: str | None = None,
        schema: str = "public",
        use_jsonb: bool = True,
        pool_min_size: int = 1,
        pool_max_size: int | None = None,
        connect_timeout: float | timedelta = 10.0,
        value_type: Any = None,
        serializer: DataSerializer[V] | None = None,
    ) -> None:
        super().__init__(sink, config, value_type=value_type, serializer=serializer)
        if not isinstance(conninfo, str):
            raise TypeError(f"conninfo must be a str (a libpq connection string or URL), got {type(conninfo)!r}")
        if not conninfo.strip():
            raise ValueError("conninfo must not be empty: give a libpq connection string or a postgresql:// URL")
        try:
            conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as error:
            raise ValueError(f"conninfo is not a valid libpq connection string or URL: {error}") from None
        table = table_identifier(table_name, config.database_name)
        validate_identifier(schema, "schema")
        if not isinstance(use_jsonb, bool):
            raise TypeError(f"use_jsonb must be a bool, got {use_jsonb!r}")
        check_int(pool_min_size, "pool_min_size", minimum=0)
        max_size = check_int(
            config.max_concurrency + 1 if pool_max_size is None else pool_max_size,
            "pool_max_size (>= pool_min_size)",
            minimum=max(1, pool_min_size),
        )
        self._conninfo = conninfo
        self._table_name = table
        self._schema = schema
        self._pool_min_size = pool_min_size
        self._pool_max_size = max_size
        self._connect_timeout = to_seconds(connect_timeout, "connect_timeout")
        # libpq counts its connect_timeout in whole seconds, at least 2.
        self._libpq_timeout = max(2, math.ceil(self._connect_timeout))
        if use_jsonb:
            self._column = "jsonb"
        elif serializer is None or isinstance(serializer, JsonSerializer):
            self._column = "json"
        else:
            self._column = "text"
        # query_by_json_path turns values into JSON as saves do (the default serializer when a custom one is set).
        self._pattern_serializer: JsonSerializer[Any] = (
            self.serializer if isinstance(self.serializer, JsonSerializer) else JsonSerializer()
        )
        self._pool: Pool | None = None

        self._quoted_schema = quote_identifier(schema, "schema")
        qualified = f"{self._quoted_schema}.{quote_identifier(table, 'table_name')}"
        cast_to = "" if self._column == "text" else f"::{self._column}"
        self._qualified = qualified
        self._create_sql = (
            f"CREATE TABLE IF NOT EXISTS {qualified} ("
            f"key TEXT PRIMARY KEY, value {self._column.upper()} NOT NULL, "
            "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        index = quote_identifier(derived_identifier("idx_", table, "_updated"), "index name")
        self._index_sql = f"CREATE INDEX IF NOT EXISTS {index} ON {qualified} (updated_at)"
        self._upsert_sql = (
            f"INSERT INTO {qualified} (key, value) VALUES (%s, %s{cast_to}) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
        )
        self._delete_sql = f"DELETE FROM {qualified} WHERE key = ANY(%s)"
        self._select_sql = f"SELECT value::text FROM {qualified} WHERE key = %s"
        self._exists_sql = f"SELECT EXISTS (SELECT 1 FROM {qualified} WHERE key = %s)"
        self._count_sql = f"SELECT count(*) FROM {qualified}"
        self._keys_sql = f'SELECT key FROM {qualified} ORDER BY key COLLATE "C"'
        self._clear_sql = f"DELETE FROM {qualified}"
        self._query_sql = (
            f'SELECT key, value::text FROM {qualified} WHERE value @> %s::jsonb ORDER BY key COLLATE "C" LIMIT %s'
        )

    @property
    def table_name(self) -> str:
        """The table's name (unquoted)."""
        return self._table_name

    @property
    def schema(self) -> str:
        """The table's schema (unquoted)."""
        return self._schema

    @property
    def value_column_type(self) -> str:
        """The value column's type: ``"jsonb"``, ``"json"`` or ``"text"``."""
        return self._column

    def _check_key(self, key: str) -> None:
        if "\x00" in key:
            raise ValueError(f"key {key[:80]!r} contains NUL, which PostgreSQL text cannot hold")
        if len(key) * 4 > _MAX_KEY_BYTES and (size := len(key.encode("utf-8"))) > _MAX_KEY_BYTES:
            raise ValueError(
                f"key {key[:40]!r}... is {size} bytes in UTF-8; PostgreSQL's primary key index takes keys of at "
                f"most {_MAX_KEY_BYTES} bytes (its btree index row limit is 2704 bytes)"
            )

    def _check_text(self, key: str, text: str) -> None:
        if "\x00" in text or (self._column != "text" and _JSON_NUL.search(text)):
            raise ValueError(f"value for key {key!r} contains NUL (\\u0000), which PostgreSQL cannot store")

    def _is_transient(self, error: BaseException) -> bool:
        return _is_connection_error(error)

    def _configure_connection(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """Bound every statement and lock wait by the retry budget.

        A held row lock cannot stall the writer (or a shutdown) for longer: a lock wait fails with 55P03,
        which is retried within the budget.
        """
        budget = to_seconds(self.config.write_retry_timeout, "write_retry_timeout", allow_zero=True)
        statement = max(1000, math.ceil(budget * 1000))
        conn.execute(f"SET statement_timeout = {statement}")
        conn.execute(f"SET lock_timeout = {max(100, statement // 4)}")  # a lock wait fails first, and is retried

    # -- lifecycle ------------------------------------------------------------------------------

    async def _open(self) -> None:
        deadline = anyio.current_time() + self._connect_timeout
        failures = 0
        while True:
            try:
                await anyio.to_thread.run_sync(self._prepare_table)
                break
            except psycopg.Error as error:
                refusal = _permanent_refusal(error)
                if refusal is not None:
                    raise ConnectionError(
                        f"{type(self).__name__}: PostgreSQL refused the connection: {refusal}"
                    ) from error
                if not _is_connection_error(error):
                    raise
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    raise ConnectionError(
                        f"{type(self).__name__} could not reach PostgreSQL within connect_timeout="
                        f"{self._connect_timeout:g}s: {error}"
                    ) from error
                failures += 1
                await anyio.sleep(min(_CONNECT_BACKOFF.delay(failures), remaining))  # the last attempt at the deadline
        pool: Pool = ConnectionPool(
            self._conninfo,
            min_size=self._pool_min_size,
            max_size=self._pool_max_size,
            kwargs={"autocommit": True, "connect_timeout": self._libpq_timeout},
            configure=self._configure_connection,
            open=False,
            timeout=self._connect_timeout,
            reconnect_timeout=self._connect_timeout,
            name=f"ephemeral.data.{self.config.database_name}",
        )
        pool.open(wait=False)  # fills in the background: the server just answered
        self._pool = pool

    def _prepare_table(self) -> None:
        """Create the schema, table and index when missing (serialised across processes); check the column."""
        with (
            psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._libpq_timeout) as conn,
            conn.transaction(),
        ):
            lock = f"ephemeral.atoms.data_postgres:{self._qualified}"
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self._qualified,)).fetchone()
            if not (row and row[0]):
                # Only when missing: a role allowed to write an existing table need not be allowed to create.
                row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (self._quoted_schema,)).fetchone()
                if not (row and row[0]):
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._quoted_schema}")
                conn.execute(self._create_sql)
                conn.execute(self._index_sql)
            row = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attname = 'value' AND NOT attisdropped",
                (self._qualified,),
            ).fetchone()
        found = None if row is None else row[0]
        if found != self._column:
            raise ValueError(
                f"table {self._qualified} exists with a value column of type {found or 'none'}, but this atom "
                f"stores {self._column} (use_jsonb and serializer choose it); use a matching table_name"
            )

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await anyio.to_thread.run_sync(pool.close)

    # -- store --------------------------------------------------------------------------------

    def _using_connection(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], R]) -> R:
        """Run ``work`` on a pooled connection (in a worker thread); on a lost one, weed out its dead siblings."""
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        with pool.connection() as conn:
            try:
                return work(conn)
            except psycopg.OperationalError:
                if conn.broken:
                    pool.check()  # a restart or terminate kills the idle connections too: drop them now
                raise

    async def _on_connection(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], R]) -> R:
        return await anyio.to_thread.run_sync(self._using_connection, work)

    async def _write(self, items: Sequence[WriteItem]) -> None:
        runs = [(delete, list(group)) for delete, group in groupby(items, key=lambda item: item[1] is None)]

        def execute(cursor: psycopg.Cursor[tuple[Any, ...]]) -> None:
            for delete, run in runs:
                if delete:
                    cursor.execute(self._delete_sql, ([key for key, _ in run],))
                elif len(run) == 1:
                    cursor.execute(self._upsert_sql, run[0])
                else:
                    cursor.executemany(self._upsert_sql, run)

        def write(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
            with conn.cursor() as cursor:
                if len(runs) == 1 and (runs[0][0] or len(runs[0][1]) == 1):
                    execute(cursor)  # one statement is atomic by itself: no BEGIN/COMMIT round trips
                else:
                    with conn.transaction():
                        execute(cursor)

        await self._on_connection(write)

    async def _read(self, key: str) -> str | None:
        def read(conn: psycopg.Connection[tuple[Any, ...]]) -> str | None:
            row = conn.execute(self._select_sql, (key,)).fetchone()
            return None if row is None else cast(str, row[0])

        return await self._on_connection(read)

    async def _contains(self, key: str) -> bool:
        def contains(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            row = conn.execute(self._exists_sql, (key,)).fetchone()
            return bool(row and row[0])

        return await self._on_connection(contains)

    async def _count(self) -> int:
        def count(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
            row = conn.execute(self._count_sql).fetchone()
            return 0 if row is None else int(row[0])

        return await self._on_connection(count)

    async def _keys(self) -> list[str]:
        def keys(conn: psycopg.Connection[tuple[Any, ...]]) -> list[str]:
            return [row[0] for row in conn.execute(self._keys_sql)]

        return await self._on_connection(keys)

    async def _clear(self) -> int:
        def clear(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
            return conn.execute(self._clear_sql).rowcount

        return await self._on_connection(clear)

    # -- queries ----------------------------------------------------------------------------------

    async def query_by_json_path(
        self, path: str | Sequence[str], value: Any, *, limit: int | None = None
    ) -> dict[str, V]:
        """The stored values whose document holds ``value`` at ``path``, by key (in key order).

        ``path`` is a dotted string (``"customer.address.city"``) or a sequence of keys (for keys that
        contain dots). The match is JSONB containment (``value @> {"customer": {"address": {"city": ...}}}``),
        sent as a parameter: an object or array ``value`` matches documents that contain it, a scalar must
        be equal. ``value`` is turned into JSON as saved values are (dataclasses, pydantic models,
        decimals, ...); give the keys as they are stored. Sees every write accepted before the call.

        Args:
            path: Where in the document to look.
            value: What must be found there.
            limit: The most values to return (None: all).

        Raises:
            RuntimeError: The value column is not JSONB (``use_jsonb=False``): json has no containment.
            TypeError, ValueError: A malformed ``path``, a ``value`` that cannot be JSON, a bad ``limit``.
        """
        if self._column != "jsonb":
            raise RuntimeError(
                f"query_by_json_path needs a JSONB value column; {self._qualified} stores {self._column} "
                "(use_jsonb=False)"
            )
        check_optional_int(limit, "limit")
        pattern: Any = value
        for key in reversed(_path_keys(path)):
            pattern = {key: pattern}
        document = self._pattern_serializer.dumps(pattern)

        def query(conn: psycopg.Connection[tuple[Any, ...]]) -> list[tuple[str, str]]:
            return [(row[0], row[1]) for row in conn.execute(self._query_sql, (document, limit))]

        await self.flush()
        rows = await self._reading(lambda: self._on_connection(query), None)
        loads = self.serializer.loads
        return {key: loads(text) for key, text in rows}
