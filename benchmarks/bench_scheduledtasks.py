"""Durable scheduled tasks: enqueue + handle throughput on SQLite and PostgreSQL, and the scheduler's idle wake-ups.

    python benchmarks/bench_scheduledtasks.py [--n N] [--repeat R] [--dsn DSN]

Throughput: N tasks, each stored and then handled once by a no-op async handler, timed from the first
store until the last is marked done (asyncio). Contenders, per database:

- ``DurableTaskAtom`` on ``SqliteTaskStore`` / ``PostgresTaskStore``: ``await enqueue(task)`` N times, then
  ``await wait_for_idle()``. Each task is one insert, one claim and one completion, each committed.
- APScheduler 3 (``AsyncIOScheduler`` with ``SQLAlchemyJobStore``): N ``date`` jobs due now, each added
  (insert, committed), run once and removed (delete, committed); ``misfire_grace_time=None`` so none is
  skipped. Left out when APScheduler or SQLAlchemy is not installed.
- A bare loop: one insert + commit per task on one connection (sqlite3; psycopg), the floor a store that
  keeps every task on disk cannot go below.

Reported: best-of-R tasks/s and the atom's ratio to each alternative (> 1 means the atom is faster).

Idle wake-ups: an hourly schedule (``0 * * * *``) with the default ``poll_interval`` (60 s) runs for 24
virtual hours (trio's MockClock); the scheduler's wake-ups per hour are at most 3600 / poll_interval plus
the due ticks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio

from ephemeral.atoms.scheduledtasks import (
    DurableTask,
    DurableTaskAtom,
    PostgresTaskStore,
    ScheduledTaskDefinition,
    ScheduledTasksAtom,
    ScheduledTasksOptions,
    SqliteTaskStore,
    TaskStore,
)

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
_done: dict[str, Any] = {}


async def atom_run(store: TaskStore, n: int) -> float:
    handled = 0

    async def handler(task: DurableTask) -> None:
        nonlocal handled
        handled += 1

    async with DurableTaskAtom(handler, store) as atom:
        start = time.perf_counter()
        for i in range(n):
            await atom.enqueue(DurableTask("bench", "bench.tick", AT + timedelta(seconds=i)))
        await atom.wait_for_idle()
        elapsed = time.perf_counter() - start
    assert handled == n
    return elapsed


async def aps_job(i: int) -> None:
    """An APScheduler job (module level, so its job store can refer to it)."""
    _done["count"] += 1
    if _done["count"] == _done["n"]:
        _done["event"].set()


async def aps_run(url: str, n: int) -> float:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped,import-not-found,unused-ignore]

    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename="aps_bench_jobs")},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=timezone.utc,
    )
    scheduler.remove_all_jobs()
    _done.update(count=0, n=n, event=asyncio.Event())
    scheduler.start()
    try:
        start = time.perf_counter()
        now = datetime.now(timezone.utc)
        for i in range(n):
            scheduler.add_job(aps_job, "date", run_date=now, id=f"job-{i}", args=[i])
            await asyncio.sleep(0)
        await _done["event"].wait()
        elapsed = time.perf_counter() - start
    finally:
        scheduler.shutdown(wait=True)
    return elapsed


def sqlite_bare(path: str, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, scheduled_at TEXT, UNIQUE (name, scheduled_at))")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (name, scheduled_at) VALUES (?, ?)", ("bench", str(i)))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def postgres_bare(dsn: str, table: str, n: int) -> float:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, name TEXT, scheduled_at TIMESTAMPTZ)")
        conn.commit()
        start = time.perf_counter()
        for i in range(n):
            conn.execute(f"INSERT INTO {table} (name, scheduled_at) VALUES (%s, %s)", ("bench", AT + timedelta(i)))
            conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    return elapsed


def drop_postgres(dsn: str, *tables: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def best(repeat: int, run: Callable[[int], float]) -> float:
    return min(run(i) for i in range(repeat))


def idle_wakeups(hours: int) -> float:
    import trio
    import trio.testing

    async def main() -> float:
        async def handler(task: DurableTask) -> None:
            pass

        hourly = ScheduledTaskDefinition("hourly", "0 * * * *", "tick")
        async with (
            DurableTaskAtom(handler) as durable,
            ScheduledTasksAtom(durable, [hourly], ScheduledTasksOptions()) as scheduler,
        ):
            await anyio.sleep(hours * 3600)
            return scheduler.wake_count / hours

    result: float = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="tasks per run (default 100)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender, best is kept (default 2)")
    parser.add_argument(
        "--dsn", default=os.environ.get("EPHEMERAL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    n, repeat = args.n, args.repeat
    try:
        import apscheduler  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
        import sqlalchemy  # noqa: F401

        have_aps = True
    except ImportError:
        have_aps = False

    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:

        def fresh(name: str) -> Callable[[int], str]:
            return lambda i: str(Path(tmp) / f"{name}-{i}.db")

        atom_db, aps_db, bare_db = fresh("atom"), fresh("aps"), fresh("bare")
        rows.append(
            (
                "SQLite",
                "DurableTaskAtom + SqliteTaskStore",
                n / best(repeat, lambda i: asyncio.run(atom_run(SqliteTaskStore(atom_db(i)), n))),
            )
        )
        if have_aps:
            rows.append(
                (
                    "SQLite",
                    "APScheduler 3 + SQLAlchemyJobStore",
                    n / best(repeat, lambda i: asyncio.run(aps_run(f"sqlite:///{aps_db(i)}", n))),
                )
            )
        rows.append(
            ("SQLite", "bare sqlite3 insert + commit loop", n / best(repeat, lambda i: sqlite_bare(bare_db(i), n)))
        )

    suffix = os.getpid()
    table = f"bench_scheduledtasks_{suffix}"

    def pg_atom(i: int) -> float:
        drop_postgres(args.dsn, table)
        try:
            return asyncio.run(atom_run(PostgresTaskStore(args.dsn, table=table), n))
        finally:
            drop_postgres(args.dsn, table)

    def pg_aps(i: int) -> float:
        url = args.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            return asyncio.run(aps_run(url, n))
        finally:
            drop_postgres(args.dsn, "aps_bench_jobs")

    rows.append(("PostgreSQL", "DurableTaskAtom + PostgresTaskStore", n / best(repeat, pg_atom)))
    if have_aps:
        rows.append(("PostgreSQL", "APScheduler 3 + SQLAlchemyJobStore", n / best(repeat, pg_aps)))
    rows.append(
        (
            "PostgreSQL",
            "bare psycopg insert + commit loop",
            n / best(repeat, lambda i: postgres_bare(args.dsn, f"{table}_bare", n)),
        )
    )

    print(f"# Durable scheduled tasks: {n} tasks stored and handled, best of {repeat} (asyncio)\n")
    print("| database | contender | tasks/s | atom ÷ this |")
    print("|---|---|---:|---:|")
    for database, contender, rate in rows:
        atom_rate = next(r for d, c, r in rows if d == database and c.startswith("DurableTaskAtom"))
        print(f"| {database} | {contender} | {rate:,.0f} | {atom_rate / rate:.2f} |")
    per_hour = idle_wakeups(24)
    print(
        f"\nIdle scheduler, hourly schedule, poll_interval=60 s, 24 virtual hours: {per_hour:.1f} wake-ups per hour "
        f"(bound: 3600/60 + 1 = 61)."
    )


if __name__ == "__main__":
    main()
