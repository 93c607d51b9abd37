"""SqliteRepository: an abstract CRUD base over a shared writer, with cached reads and invalidation."""

from __future__ import annotations

import sqlite3
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from ephemeral.core.lowlevel import ClosableResource
from ephemeral.core.sql import quote_identifier

from ._connection import SqliteConnection, SqlParams, bind_params
from ._writer import SqliteSingleWriter

__all__ = ("SqliteRepository",)

E = TypeVar("E")
K = TypeVar("K")
T = TypeVar("T")


class SqliteRepository(ClosableResource, Generic[E, K]):
    """CRUD for one table over a ``SqliteSingleWriter``, with reads cached and invalidated on change.

    Subclass it and implement the five abstract methods (how to read one entity, read them all, build
    the INSERT and UPDATE statements, and get an entity's id). ``get_by_id`` caches under
    ``"{table}:{id}"`` and ``get_all`` under ``"{table}:all"``; ``insert`` invalidates ``:all`` (and
    the new entity's id), ``update`` and ``delete`` invalidate ``:{id}`` and ``:all``.

    The repository borrows the writer: closing the repository (``aclose()``, or leaving ``async with``)
    refuses further calls on it but never closes the writer (several repositories, and anything else,
    may share one writer; its owner closes it).

    Args:
        writer: The writer to run on (often ``SqliteSingleWriter.get_or_create(path)``).
        table: The table name; validated and quoted, since it is spliced into SQL.
        id_column: The primary-key column ``delete`` matches on; validated and quoted too.

    Raises:
        TypeError: ``writer`` is not a SqliteSingleWriter, or a name is not a str.
        ValueError: ``table`` or ``id_column`` is not a plain identifier.
    """

    def __init__(self, writer: SqliteSingleWriter, table: str, *, id_column: str = "id") -> None:
        if not isinstance(writer, SqliteSingleWriter):
            raise TypeError(f"writer must be a SqliteSingleWriter, got {writer!r}")
        self._quoted_table = quote_identifier(table, "table")
        self._quoted_id = quote_identifier(id_column, "id_column")
        self._writer = writer
        self._table = table
        self._id_column = id_column

    # -- what a subclass supplies -------------------------------------------------------------

    @abstractmethod
    async def read_entity(self, connection: SqliteConnection, entity_id: K) -> E | None:
        """Read the entity with this id, or None when there is none."""

    @abstractmethod
    async def read_all_entities(self, connection: SqliteConnection) -> list[E]:
        """Read every entity of the table."""

    @abstractmethod
    def build_insert_command(self, entity: E) -> tuple[str, SqlParams]:
        """The INSERT statement and its parameters for ``entity``."""

    @abstractmethod
    def build_update_command(self, entity: E) -> tuple[str, SqlParams]:
        """The UPDATE statement and its parameters for ``entity``."""

    @abstractmethod
    def get_id(self, entity: E) -> K | None:
        """The id of ``entity``, or None when the database assigns it on insert."""

    # -- lifecycle ----------------------------------------------------------------------------

    def _closed_message(self) -> str:
        return f"the SqliteRepository of table {self._table!r} is closed"

    # -- keys and names -----------------------------------------------------------------------

    def cache_key(self, entity_id: object) -> str:
        """The cache key of one entity: ``"{table}:{id}"``."""
        return f"{self._table}:{entity_id}"

    @property
    def all_key(self) -> str:
        """The cache key of ``get_all``: ``"{table}:all"``."""
        return f"{self._table}:all"

    @property
    def table(self) -> str:
        """The table name, as given."""
        return self._table

    @property
    def quoted_table(self) -> str:
        """The table name, double-quoted for SQL text."""
        return self._quoted_table

    @property
    def quoted_id_column(self) -> str:
        """The id column, double-quoted for SQL text."""
        return self._quoted_id

    @property
    def writer(self) -> SqliteSingleWriter:
        """The writer the repository runs on."""
        return self._writer

    # -- CRUD ---------------------------------------------------------------------------------

    async def get_by_id(self, entity_id: K) -> E | None:
        """The entity with this id (cached under ``"{table}:{id}"``), or None."""
        self._check_open()

        async def reader(connection: SqliteConnection) -> E | None:
            return await self.read_entity(connection, entity_id)

        return await self._writer.read(self.cache_key(entity_id), reader)

    async def get_all(self) -> list[E]:
        """Every entity (cached under ``"{table}:all"``)."""
        self._check_open()
        return await self._writer.read(self.all_key, self.read_all_entities)

    async def insert(self, entity: E) -> int:
        """Insert ``entity``; invalidates ``:all`` and the entity's id key.

        Returns:
            The rowid of the inserted row (``cursor.lastrowid``).
        """
        self._check_open()
        sql, params = self.build_insert_command(entity)
        bound = bind_params(params)

        def run(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(sql, bound)
            try:
                return cursor.lastrowid or 0
            finally:
                cursor.close()

        rowid = await self._writer.execute_in_transaction(run)
        entity_id = self.get_id(entity)
        self._invalidate(*((rowid,) if entity_id is None else (entity_id, rowid)))
        return rowid

    async def update(self, entity: E) -> int:
        """Update ``entity``; invalidates its id key and ``:all``. Returns the rows changed."""
        self._check_open()
        sql, params = self.build_update_command(entity)
        entity_id = self.get_id(entity)
        if entity_id is None:
            raise ValueError("entity: an entity without an id cannot be updated")
        return await self._writer.write_and_invalidate(sql, params, [self.cache_key(entity_id), self.all_key])

    async def delete(self, entity_id: K) -> int:
        """Delete the row whose id column equals ``entity_id``; invalidates its key and ``:all``."""
        self._check_open()
        sql = f"DELETE FROM {self._quoted_table} WHERE {self._quoted_id} = ?"
        return await self._writer.write_and_invalidate(sql, (entity_id,), [self.cache_key(entity_id), self.all_key])

    async def query(self, reader: Callable[[SqliteConnection], Awaitable[T]]) -> T:
        """Run ``reader`` on a read connection, uncached (``SqliteSingleWriter.query``)."""
        self._check_open()
        return await self._writer.query(reader)

    async def execute(self, sql: str, params: SqlParams = None, *, ids: Iterable[K] = ()) -> int:
        """Run a write statement; invalidates ``:all`` and the key of each of ``ids``. Returns the rows changed."""
        self._check_open()
        keys = [self.all_key, *(self.cache_key(entity_id) for entity_id in ids)]
        return await self._writer.write_and_invalidate(sql, params, keys)

    def _invalidate(self, *entity_ids: object) -> None:
        self._writer.invalidate_cache(self.all_key)
        for entity_id in entity_ids:
            self._writer.invalidate_cache(self.cache_key(entity_id))
