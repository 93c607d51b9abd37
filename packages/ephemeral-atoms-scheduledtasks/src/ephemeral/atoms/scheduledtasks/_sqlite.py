"""SqliteTaskStore: tasks in a SQLite file (stdlib sqlite3 on worker threads), committed before enqueue returns."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import anyio.to_thread

from ephemeral.core.sql import derived_identifier, quote_identifier

from ._store import DurableTask, StoredTask, prepare_or_close

__all__ = ("SqliteTaskStore",)

R = TypeVar("R")
_UTC = timezone.utc


def _iso(moment: datetime) -> str:
    """A UTC instant as fixed-width ISO text, so text order is time order."""
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_UTC)


class SqliteTaskStore:
    """Tasks in one SQLite file: a task is committed before ``enqueue`` returns, and survives a crash.

    One process uses a file at a time. When it opens the store, tasks left running by the previous
    process (it crashed or was killed mid-handler) wait again and run; finished tasks stay in the table,
    marked ``done`` or ``failed``, and never run again. Statements run on anyio worker threads, one at a
    time, with ``synchronous=FULL`` in WAL mode.

    Args:
        path: The database file (created if missing).
        table: The table's name (validated: letters, digits and underscores).

    Raises:
        TypeError: ``path`` is not a path.
        ValueError: ``table`` is not a plain identifier.
    """

    lease: float | None = None
    poll_interval: float | None = None

    def __init__(self, path: str | os.PathLike[str], *, table: str = "ephemeral_tasks") -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
        self.path = os.fspath(path)
        self._table = quote_identifier(table, "table")
        self._index = quote_identifier(derived_identifier("ix_", table, "_due"), "table")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def _call(self, work: Callable[[sqlite3.Connection], R]) -> R:
        def run() -> R:
            with self._lock:
                conn = self._conn
                if conn is None:
                    raise RuntimeError("the store is not open")
                with conn:  # one transaction, committed (or rolled back) on leaving
                    return work(conn)

        return await anyio.to_thread.run_sync(run)

    async def open(self) -> None:
        """Create the table if needed and requeue tasks the last process left running."""

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.isolation_level = "IMMEDIATE"  # ``with conn`` then opens BEGIN IMMEDIATE transactions
            return conn

        self._conn = await anyio.to_thread.run_sync(connect)

        def prepare(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " name TEXT NOT NULL, scheduled_at TEXT NOT NULL, signal TEXT NOT NULL,"
                " key TEXT, payload TEXT, description TEXT,"
                " status TEXT NOT NULL DEFAULT 'pending', attempt INTEGER NOT NULL DEFAULT 1,"
                " not_before TEXT NOT NULL, error TEXT, finished_at TEXT,"
                " UNIQUE (name, scheduled_at))"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self._index} ON {self._table} (status, not_before)")
            conn.execute(f"UPDATE {self._table} SET status = 'pending' WHERE status = 'running'")

        await prepare_or_close(self, self._call(prepare))

    async def close(self) -> None:
        """Close the connection; tasks stay in the file."""
        conn, self._conn = self._conn, None
        if conn is not None:

            def close() -> None:
                with self._lock:
                    conn.close()

            await anyio.to_thread.run_sync(close)

    async def add(self, task: DurableTask, now: datetime) -> bool:
        """Insert ``task`` and commit; False when ``(name, scheduled_at)`` is already in the table."""
        payload = task.payload_json()

        def add(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"INSERT OR IGNORE INTO {self._table}"
                " (name, scheduled_at, signal, key, payload, description, not_before) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (task.name, _iso(task.scheduled_at), task.signal, task.key, payload, task.description, _iso(now)),
            )
            return cursor.rowcount == 1

        return await self._call(add)

    async def claim(self, worker: str, now: datetime) -> StoredTask | None:
        """Mark the oldest due waiting task running and return it."""

        def claim(conn: sqlite3.Connection) -> StoredTask | None:
            row = conn.execute(
                f"SELECT id, name, scheduled_at, signal, key, payload, description, attempt FROM {self._table}"
                " WHERE status = 'pending' AND not_before <= ? ORDER BY not_before, id LIMIT 1",
                (_iso(now),),
            ).fetchone()
            if row is None:
                return None
            conn.execute(f"UPDATE {self._table} SET status = 'running' WHERE id = ?", (row[0],))
            return _stored(row)

        return await self._call(claim)

    async def next_due(self, now: datetime) -> float | None:
        """Seconds until the first waiting task is due, or None."""

        def next_due(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(f"SELECT MIN(not_before) FROM {self._table} WHERE status = 'pending'").fetchone()
            return None if row is None else row[0]

        first = await self._call(next_due)
        return None if first is None else max(0.0, (_from_iso(first) - now).total_seconds())

    async def renew(self, stored: StoredTask, worker: str) -> bool:
        """Claims do not expire here."""
        return True

    async def finish(self, stored: StoredTask, worker: str, now: datetime) -> bool:
        """Mark the task done and commit."""
        return await self._set(stored, "done", now, None, None)

    async def fail(self, stored: StoredTask, worker: str, now: datetime, retry_after: float | None, error: str) -> bool:
        """Wait ``retry_after`` seconds before the next attempt, or mark the task failed."""
        if retry_after is None:
            return await self._set(stored, "failed", now, None, error)
        return await self._set(stored, "pending", now, retry_after, error)

    async def _set(
        self, stored: StoredTask, status: str, now: datetime, retry_after: float | None, error: str | None
    ) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            if retry_after is not None:
                not_before = _iso(datetime.fromtimestamp(now.timestamp() + retry_after, _UTC))
                cursor = conn.execute(
                    f"UPDATE {self._table} SET status = 'pending', attempt = attempt + 1, not_before = ?, error = ?"
                    " WHERE id = ? AND status = 'running'",
                    (not_before, error, stored.id),
                )
            else:
                cursor = conn.execute(
                    f"UPDATE {self._table} SET status = ?, finished_at = ?, error = ?"
                    " WHERE id = ? AND status = 'running'",
                    (status, _iso(now), error, stored.id),
                )
            return cursor.rowcount == 1

        return await self._call(update)

    async def last_scheduled(self, name: str) -> datetime | None:
        """The latest occurrence of ``name`` in the table."""

        def last(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(f"SELECT MAX(scheduled_at) FROM {self._table} WHERE name = ?", (name,)).fetchone()
            return None if row is None else row[0]

        found = await self._call(last)
        return None if found is None else _from_iso(found)


def _stored(row: tuple[Any, ...]) -> StoredTask:
    task_id, name, scheduled_at, signal, key, payload, description, attempt = row
    task = DurableTask(name, signal, _from_iso(scheduled_at), key, json.loads(payload), description)
    return StoredTask(task_id, task, attempt)
