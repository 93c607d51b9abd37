"""SqliteRepository: CRUD with cached reads and invalidation, validated identifiers, and a borrowed writer."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ephemeral.core import CoordinatorClosedError
from ephemeral.core.sql import quote_identifier
from ephemeral.core.testing import assert_lifecycle_faults
from ephemeral.sqlite.singlewriter import (
    SqliteConnection,
    SqliteRepository,
    SqliteSingleWriter,
    SqlParams,
)


@dataclass(frozen=True)
class User:
    id: int | None
    name: str


class Users(SqliteRepository[User, int]):
    """A repository of users, counting how often it reads."""

    reads = 0

    async def read_entity(self, connection: SqliteConnection, entity_id: int) -> User | None:
        self.reads += 1
        row = await connection.execute_fetchone(
            f"SELECT id, name FROM {self.quoted_table} WHERE {self.quoted_id_column} = ?", (entity_id,)
        )
        return None if row is None else User(row[0], row[1])

    async def read_all_entities(self, connection: SqliteConnection) -> list[User]:
        self.reads += 1
        rows = await connection.execute_fetchall(f"SELECT id, name FROM {self.quoted_table} ORDER BY id")
        return [User(row[0], row[1]) for row in rows]

    def build_insert_command(self, entity: User) -> tuple[str, SqlParams]:
        return f"INSERT INTO {self.quoted_table} (id, name) VALUES (?, ?)", (entity.id, entity.name)

    def build_update_command(self, entity: User) -> tuple[str, SqlParams]:
        return f"UPDATE {self.quoted_table} SET name = :name WHERE id = :id", {"id": entity.id, "name": entity.name}

    def get_id(self, entity: User) -> int | None:
        return entity.id


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteSingleWriter]:
    async with SqliteSingleWriter(tmp_path / "repo.db") as writer:
        await writer.write("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        yield writer


async def test_crud_caches_reads_and_invalidates_on_change(writer: SqliteSingleWriter) -> None:
    """get_by_id and get_all are cached; insert, update and delete invalidate the keys they make stale."""
    users = Users(writer, "users")
    assert await users.get_all() == []
    assert await users.get_by_id(1) is None
    rowid = await users.insert(User(None, "ada"))
    assert rowid == 1
    assert await users.get_by_id(1) == User(1, "ada")  # the cached None was invalidated by the insert
    assert await users.get_all() == [User(1, "ada")]
    reads = users.reads
    assert await users.get_all() == [User(1, "ada")]
    assert await users.get_by_id(1) == User(1, "ada")
    assert users.reads == reads  # both from the cache

    assert await users.insert(User(7, "grace")) == 7
    assert await users.update(User(1, "ada lovelace")) == 1
    assert await users.get_by_id(1) == User(1, "ada lovelace")
    assert await users.get_all() == [User(1, "ada lovelace"), User(7, "grace")]
    assert await users.delete(7) == 1
    assert await users.get_by_id(7) is None
    assert await users.get_all() == [User(1, "ada lovelace")]
    assert await users.execute("DELETE FROM users WHERE name LIKE ?", ("ada%",), ids=[1]) == 1
    assert await users.get_all() == []
    assert await users.get_by_id(1) is None

    async def count(connection: SqliteConnection) -> int:
        row = await connection.execute_fetchone("SELECT COUNT(*) FROM users")
        return int(row[0]) if row else -1

    assert await users.query(count) == 0
    invalidated = {event.key for event in writer.get_signals("cache.invalidate:*")}
    assert invalidated == {"users:all", "users:1", "users:7"}


async def test_errors_reach_the_caller(writer: SqliteSingleWriter) -> None:
    """A duplicate insert raises IntegrityError; updating an entity without an id raises ValueError."""
    users = Users(writer, "users")
    await users.insert(User(1, "ada"))
    with pytest.raises(sqlite3.IntegrityError):
        await users.insert(User(1, "again"))
    with pytest.raises(ValueError, match="without an id"):
        await users.update(User(None, "nobody"))
    assert await users.get_all() == [User(1, "ada")]


@pytest.mark.parametrize("name", ["users; DROP TABLE users", 'us"ers', "us ers", "", "1users", "users--", "ü"])
async def test_bad_identifiers_are_refused_before_any_sql(writer: SqliteSingleWriter, name: str) -> None:
    """A table or id column name with a quote, semicolon, space or other character raises ValueError."""
    with pytest.raises(ValueError, match="table"):
        Users(writer, name)
    with pytest.raises(ValueError, match="id_column"):
        Users(writer, "users", id_column=name)
    assert writer.get_write_snapshot()[-1].write_id == 1  # nothing ran beyond the fixture's CREATE TABLE


def test_quote_identifier() -> None:
    """quote_identifier double-quotes a plain name and refuses anything else."""
    assert quote_identifier("users_2") == '"users_2"'
    assert quote_identifier("_x") == '"_x"'
    with pytest.raises(ValueError, match="index"):
        quote_identifier("a.b", "index")
    with pytest.raises(TypeError, match="identifier"):
        quote_identifier(None)  # type: ignore[arg-type]


async def test_closing_a_repository_leaves_the_shared_writer_open(tmp_path: Path) -> None:
    """Closing a repository refuses its own further calls but never closes the writer others share."""
    writer = SqliteSingleWriter.get_or_create(tmp_path / "shared.db")
    try:
        await writer.write("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        async with Users(writer, "users") as users:
            await users.insert(User(1, "ada"))
        assert users.closed
        with pytest.raises(CoordinatorClosedError, match="SqliteRepository"):
            await users.get_all()
        assert not writer.closed
        assert SqliteSingleWriter.get_or_create(tmp_path / "shared.db") is writer
        other = Users(writer, "users")
        assert await other.get_all() == [User(1, "ada")]
        assert other.writer is writer and other.table == "users" and other.all_key == "users:all"
    finally:
        await writer.aclose()


async def test_repository_lifecycle_faults(writer: SqliteSingleWriter) -> None:
    """An error or a deadline inside the block leaves no task behind; a closed repository refuses entering."""

    async def use(users: Users) -> None:
        await users.insert(User(None, "ada"))
        await users.get_all()

    await assert_lifecycle_faults(lambda: Users(writer, "users"), use, nested_entry=True)
    assert not writer.closed


def test_writer_must_be_a_writer() -> None:
    """The repository takes a SqliteSingleWriter (TypeError otherwise)."""
    with pytest.raises(TypeError, match="writer"):
        Users("app.db", "users")  # type: ignore[arg-type]
