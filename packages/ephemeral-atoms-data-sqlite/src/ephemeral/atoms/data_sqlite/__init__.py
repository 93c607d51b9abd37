"""SQLite storage atom: a key/value table written by one writer in batched transactions, read beside it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from itertools import groupby
from typing import Any, TypeVar

from ephemeral.atoms.data import DataSerializer, DataStorageAtomBase, DataStorageConfig, WriteItem
from ephemeral.core import SignalSink, TypedSignalSink
from ephemeral.core.sql import derived_identifier, quote_identifier, table_identifier
from ephemeral.sqlite.singlewriter import SqliteConnection, SqliteSingleWriter, SqliteSingleWriterOptions

__all__ = ("SqliteDataStorageAtom",)

K = TypeVar("K")
V = TypeVar("V")

_TRANSIENT = ("database is locked", "database table is locked", "database is busy")


class SqliteDataStorageAtom(DataStorageAtomBase[K, V]):
    """Stores values in a SQLite table ``(key TEXT PRIMARY KEY, value TEXT, created_at, updated_at)``.

    Every write goes through one ``SqliteSingleWriter`` (one connection, WAL journal, foreign keys on):
    the writes waiting while it is busy are upserted together in one transaction, with ``executemany``,
    in one worker-thread call. Reads use the writer's pooled read connections, so they run while a write
    is in progress and see every write completed before them. "database is locked" (another process
    holding the write lock beyond ``busy_timeout``) is retried with backoff, like a lost connection.

    Args:
        sink: Where signals go (and come from); see ``DataStorageAtomBase``.
        config: Names, signal prefixes and pacing.
        path: The database file (created if missing), ``":memory:"``, or a ``"Data Source=..."`` string.
        table_name: The table (created if missing); ``config.database_name`` when None. Validated as a
            plain SQL identifier and quoted.
        options: Options of the atom's own writer (WAL, busy timeout, read connections).
        writer: A ``SqliteSingleWriter`` to share (for instance with other tables of the same file);
            the atom then uses it and leaves closing it to its owner. Excludes ``path`` and ``options``.
        value_type: The type loads rebuild with the default JSON serializer.
        serializer: How values become text and back; JSON when None.

    Raises:
        ValueError: The table name is not a plain identifier (before any SQL runs or any file opens).
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None,
        config: DataStorageConfig,
        path: str | os.PathLike[str] | None = None,
        *,
        table_name: str | None = None,
        options: SqliteSingleWriterOptions | None = None,
        writer: SqliteSingleWriter | None = None,
        value_type: Any = None,
        serializer: DataSerializer[V] | None = None,
    ) -> None:
        super().__init__(sink, config, value_type=value_type, serializer=serializer)
        table = table_identifier(table_name, config.database_name)
        self._table = quote_identifier(table, "table_name")
        self._index = quote_identifier(derived_identifier("idx_", table, "_updated"), "index name")
        if writer is not None:
            if not isinstance(writer, SqliteSingleWriter):
                raise TypeError(f"writer must be a SqliteSingleWriter, got {writer!r}")
            if path is not None or options is not None:
                raise TypeError("give path (and options) or writer, not both")
            self._sqlite = writer
            self._owns_writer = False
        else:
            if path is None:
                raise TypeError("path is required (or pass writer=)")
            self._sqlite = SqliteSingleWriter(path, options)
            self._owns_writer = True
        t = self._table
        self._upsert = (
            f"INSERT INTO {t} (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = CURRENT_TIMESTAMP"
        )
        self._delete = f"DELETE FROM {t} WHERE key = ?"
        self._select = f"SELECT value FROM {t} WHERE key = ?"

    @property
    def writer(self) -> SqliteSingleWriter:
        """The single writer every write of this atom goes through."""
        return self._sqlite

    @property
    def table_name(self) -> str:
        """The table, quoted."""
        return self._table

    async def _open(self) -> None:
        table, index = self._table, self._index

        def create(connection: sqlite3.Connection) -> None:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                "key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, "
                "created_at TEXT DEFAULT CURRENT_TIMESTAMP, updated_at TEXT DEFAULT CURRENT_TIMESTAMP)"
            )
            connection.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} (updated_at)")

        try:
            await self._sqlite.execute_in_transaction(create)
        except BaseException:
            await self._close()
            raise

    async def _close(self) -> None:
        if self._owns_writer:
            await self._sqlite.aclose()

    async def _write(self, items: Sequence[WriteItem]) -> None:
        upsert, delete = self._upsert, self._delete

        def store(connection: sqlite3.Connection) -> None:
            # Consecutive saves (and consecutive deletes) go in one executemany; order is kept.
            for is_delete, run in groupby(items, key=lambda item: item[1] is None):
                if is_delete:
                    connection.executemany(delete, [(key,) for key, _ in run])
                else:
                    connection.executemany(upsert, run)

        await self._sqlite.execute_in_transaction(store)

    async def _read(self, key: str) -> str | None:
        select = self._select

        async def read(connection: SqliteConnection) -> str | None:
            row = await connection.execute_fetchone(select, (key,))
            return None if row is None else str(row[0])

        return await self._sqlite.query(read)

    async def _scalar(self, sql: str) -> Any:
        async def read(connection: SqliteConnection) -> Any:
            row = await connection.execute_fetchone(sql)
            return None if row is None else row[0]

        return await self._sqlite.query(read)

    async def _contains(self, key: str) -> bool:
        async def read(connection: SqliteConnection) -> bool:
            return await connection.execute_fetchone(f"SELECT 1 FROM {self._table} WHERE key = ?", (key,)) is not None

        return await self._sqlite.query(read)

    async def _count(self) -> int:
        return int(await self._scalar(f"SELECT COUNT(*) FROM {self._table}"))

    async def _keys(self) -> list[str]:
        async def read(connection: SqliteConnection) -> list[str]:
            rows = await connection.execute_fetchall(f"SELECT key FROM {self._table} ORDER BY key")
            return [str(row[0]) for row in rows]

        return await self._sqlite.query(read)

    async def _clear(self) -> int:
        return await self._sqlite.write(f"DELETE FROM {self._table}")

    def _is_transient(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and any(m in str(error) for m in _TRANSIENT)
