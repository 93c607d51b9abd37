"""PostgresTaskStore: one task table shared by many processes; each occurrence stored once, claimed under a lease."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from ephemeral.core.lowlevel import to_seconds
from ephemeral.core.sql import derived_identifier, quote_identifier

from ._store import DurableTask, StoredTask, prepare_or_close

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ("PostgresTaskStore",)

R = TypeVar("R")
_UTC = timezone.utc
_COLUMNS = "id, name, scheduled_at, signal, key, payload::text, description, attempt"


class PostgresTaskStore:
    """Tasks in a PostgreSQL table that several processes share (psycopg 3; the ``[postgres]`` extra).

    Every process may run the same schedules: an occurrence is inserted once (``(name, scheduled_at)`` is
    unique) and claimed by one worker with ``FOR UPDATE SKIP LOCKED``, under a lease the worker renews while
    its handler runs. A worker that dies stops renewing; once the lease expires, another worker claims the
    task and runs it. So N processes running one schedule run each occurrence once (a handler that outlives
    its lease without renewing it, say a frozen process, may run twice: at least once, never lost).
    Statements run on anyio worker threads through psycopg's sync pool (psycopg's async API is
    asyncio-only). Times (due, lease) are the server's.

    Args:
        conninfo: A libpq connection string or URI.
        table: The table's name (validated and quoted).
        schema: Its schema.
        lease: Seconds a claim lasts; renewed every third of it while the handler runs.
        poll_interval: Seconds between looks for tasks other processes stored (each process also looks
            whenever it stores one, and when a lease it saw expires).
        max_connections: The pool's size.

    Raises:
        TypeError: ``conninfo`` is not a string.
        ValueError: A bad identifier, or ``lease``/``poll_interval`` <= 0.
        ImportError: psycopg is not installed (install ``ephemeral-atoms-scheduledtasks[postgres]``).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        table: str = "ephemeral_tasks",
        schema: str = "public",
        lease: float | timedelta = 30.0,
        poll_interval: float | timedelta = 5.0,
        max_connections: int = 4,
    ) -> None:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as error:  # pragma: no cover - the extra is installed in the tests
            raise ImportError(
                "PostgresTaskStore needs psycopg 3: pip install 'ephemeral-atoms-scheduledtasks[postgres]'"
            ) from error
        if not isinstance(conninfo, str):
            raise TypeError(f"conninfo must be a connection string, got {conninfo!r}")
        self.conninfo = conninfo
        self.lease: float | None = to_seconds(lease, "lease")
        self.poll_interval: float | None = to_seconds(poll_interval, "poll_interval")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 2:
            raise ValueError(f"max_connections must be an int >= 2, got {max_connections!r}")
        self._max = max_connections
        self._table = f"{quote_identifier(schema, 'schema')}.{quote_identifier(table, 'table')}"
        self._lock_name = f"ephemeral_tasks:{schema}.{table}"
        self._index = quote_identifier(derived_identifier("ix_", table, "_due"), "table")
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = None

    async def _call(self, work: Callable[[psycopg.Connection[tuple[Any, ...]]], R]) -> R:
        pool = self._pool
        if pool is None:
            raise RuntimeError("the store is not open")

        def run() -> R:
            with pool.connection() as conn:  # commits on leaving, rolls back on an error
                return work(conn)

        return await anyio.to_thread.run_sync(run)

    async def open(self) -> None:
        """Connect and create the table if needed (under an advisory lock, so several processes may race)."""
        from psycopg_pool import ConnectionPool

        pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            self.conninfo, min_size=1, max_size=self._max, open=False, name="ephemeral-tasks"
        )
        await anyio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=30))
        self._pool = pool

        def prepare(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_name,))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                " id BIGSERIAL PRIMARY KEY,"
                " name TEXT NOT NULL, scheduled_at TIMESTAMPTZ NOT NULL, signal TEXT NOT NULL,"
                " key TEXT, payload JSONB, description TEXT,"
                " status TEXT NOT NULL DEFAULT 'pending', attempt INTEGER NOT NULL DEFAULT 1,"
                " not_before TIMESTAMPTZ NOT NULL DEFAULT now(), owner TEXT, lease_until TIMESTAMPTZ,"
                " error TEXT, finished_at TIMESTAMPTZ,"
                " UNIQUE (name, scheduled_at))"
            )
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self._index} ON {self._table} (not_before)"
                " WHERE status IN ('pending', 'running')"
            )

        await prepare_or_close(self, self._call(prepare))

    async def close(self) -> None:
        """Close the pool; tasks stay in the table (claims this process held expire with their lease)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await anyio.to_thread.run_sync(pool.close)

    async def add(self, task: DurableTask, now: datetime) -> bool:
        """Insert ``task`` and commit; False when another worker (or an earlier run) already stored it."""
        payload = task.payload_json()

        def add(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            cursor = conn.execute(
                f"INSERT INTO {self._table} (name, scheduled_at, signal, key, payload, description)"
                " VALUES (%s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (name, scheduled_at) DO NOTHING",
                (task.name, task.scheduled_at, task.signal, task.key, payload, task.description),
            )
            return cursor.rowcount == 1

        return await self._call(add)

    async def claim(self, worker: str, now: datetime) -> StoredTask | None:
        """Lease the oldest due task (or one whose lease expired) to ``worker``, skipping rows others hold."""

        def claim(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[Any, ...] | None:
            return conn.execute(
                f"UPDATE {self._table} SET status = 'running', owner = %s,"
                " lease_until = now() + make_interval(secs => %s)"
                f" WHERE id = (SELECT id FROM {self._table}"
                "  WHERE (status = 'pending' AND not_before <= now()) OR (status = 'running' AND lease_until < now())"
                "  ORDER BY not_before, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_COLUMNS}",
                (worker, self.lease),
            ).fetchone()

        row = await self._call(claim)
        if row is None:
            return None
        task_id, name, scheduled_at, signal, key, payload, description, attempt = row
        task = DurableTask(
            name, signal, scheduled_at, key, None if payload is None else json.loads(payload), description
        )
        return StoredTask(task_id, task, attempt)

    async def next_due(self, now: datetime) -> float | None:
        """Seconds until a waiting task is due or a lease expires, or None when no task is unfinished."""

        def next_due(conn: psycopg.Connection[tuple[Any, ...]]) -> Any:
            row = conn.execute(
                "SELECT EXTRACT(EPOCH FROM MIN(CASE WHEN status = 'pending' THEN not_before ELSE lease_until END)"
                f" - now()) FROM {self._table} WHERE status IN ('pending', 'running')"
            ).fetchone()
            return None if row is None else row[0]

        seconds = await self._call(next_due)
        return None if seconds is None else max(0.0, float(seconds))

    async def renew(self, stored: StoredTask, worker: str) -> bool:
        """Extend the lease; False when ``worker`` no longer holds the task."""

        def renew(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            cursor = conn.execute(
                f"UPDATE {self._table} SET lease_until = now() + make_interval(secs => %s)"
                " WHERE id = %s AND owner = %s AND status = 'running'",
                (self.lease, stored.id, worker),
            )
            return cursor.rowcount == 1

        return await self._call(renew)

    async def finish(self, stored: StoredTask, worker: str, now: datetime) -> bool:
        """Mark the task done: it never runs again."""
        return await self._update(
            stored, worker, "status = 'done', finished_at = now(), owner = NULL, lease_until = NULL", ()
        )

    async def fail(self, stored: StoredTask, worker: str, now: datetime, retry_after: float | None, error: str) -> bool:
        """Put the task back to wait ``retry_after`` seconds, or mark it failed."""
        if retry_after is None:
            return await self._update(
                stored, worker, "status = 'failed', finished_at = now(), owner = NULL, error = %s", (error,)
            )
        return await self._update(
            stored,
            worker,
            "status = 'pending', attempt = attempt + 1, not_before = now() + make_interval(secs => %s),"
            " owner = NULL, lease_until = NULL, error = %s",
            (retry_after, error),
        )

    async def _update(self, stored: StoredTask, worker: str, assignments: str, params: tuple[Any, ...]) -> bool:
        def update(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            cursor = conn.execute(
                f"UPDATE {self._table} SET {assignments} WHERE id = %s AND owner = %s AND status = 'running'",
                (*params, stored.id, worker),
            )
            return cursor.rowcount == 1

        return await self._call(update)

    async def last_scheduled(self, name: str) -> datetime | None:
        """The latest occurrence of ``name`` in the table, from any process."""

        def last(conn: psycopg.Connection[tuple[Any, ...]]) -> Any:
            row = conn.execute(f"SELECT MAX(scheduled_at) FROM {self._table} WHERE name = %s", (name,)).fetchone()
            return None if row is None else row[0]

        found: datetime | None = await self._call(last)
        return None if found is None else found.astimezone(_UTC)
