"""Saves per second into PostgreSQL: PostgresDataStorageAtom (batched and not) against what a Python user writes.

    python benchmarks/storage_postgres.py [--quick] [--n N] [--repeat R] [--dsn DSN]

The server comes from --dsn, else EPHEMERAL_TEST_POSTGRES_DSN, else postgresql://postgres@127.0.0.1:5432/test.
Every contender upserts N JSONB values under N distinct keys into an emptied table
``(key TEXT PRIMARY KEY, value JSONB, created_at, updated_at)``, timed inside the event loop from the first
save until every save is committed (opening the atom or the connection is not timed). Contenders:

- atom, fire-and-forget: ``enqueue_save`` N times, then ``flush()`` (asyncio and trio).
- atom, 50 tasks: 50 tasks each ``await save(...)`` N/50 times (asyncio and trio).
- atom without batching: ``enable_batching=False``, one transaction per save (fire-and-forget and 50 tasks).
- psycopg AsyncConnection, one ``INSERT ... ON CONFLICT`` + commit per save, awaited one after the other: the
  code a Python user writes (asyncio only: psycopg's async API does not run on trio).
- the same with 50 tasks sharing the connection (autocommit: each upsert its own transaction), and with 50 tasks
  on an ``AsyncConnectionPool`` of 10 connections.
- psycopg ``executemany`` of all N in one transaction on an AsyncConnection: the floor (no per-save work at all).

Reported: best-of-R saves/s, and each contender's ratio to the per-save-commit baseline and to the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import psycopg
from psycopg_pool import AsyncConnectionPool

from ephemeral.atoms.data import DataStorageConfig
from ephemeral.atoms.data_postgres import PostgresDataStorageAtom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storage_common import TASKS, in_tasks

TABLE = "ephemeral_bench_storage"
UPSERT = (
    f'INSERT INTO "public"."{TABLE}" (key, value) VALUES (%s, %s::jsonb) '
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
)
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"

#: A contender: ``run(dsn, n)`` saves n values and returns the seconds the saves took.
Run = Callable[[str, int], Awaitable[float]]


def value(i: int) -> dict[str, Any]:
    return {"id": f"order-{i}", "total": "42.00", "customer": {"name": "Dana", "city": "Paris"}, "lines": [1, 2, 3]}


def key(i: int) -> str:
    return f"order-{i}"


def config(batching: bool, n: int) -> DataStorageConfig:
    return DataStorageConfig(database_name=TABLE, enable_batching=batching, max_pending_writes=max(n, 1))


async def atom_enqueue(dsn: str, n: int, batching: bool = True) -> float:
    async with PostgresDataStorageAtom[str, Any](None, config(batching, n), dsn) as storage:
        start = time.perf_counter()
        for i in range(n):
            storage.enqueue_save(key(i), value(i))
        await storage.flush()
        return time.perf_counter() - start


async def atom_tasks(dsn: str, n: int, batching: bool = True) -> float:
    async with PostgresDataStorageAtom[str, Any](None, config(batching, n), dsn) as storage:
        start = time.perf_counter()
        await in_tasks(n, lambda i: storage.save(key(i), value(i)))
        return time.perf_counter() - start


async def unbatched_enqueue(dsn: str, n: int) -> float:
    return await atom_enqueue(dsn, n, batching=False)


async def unbatched_tasks(dsn: str, n: int) -> float:
    return await atom_tasks(dsn, n, batching=False)


async def psycopg_per_save(dsn: str, n: int) -> float:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        start = time.perf_counter()
        for i in range(n):
            await conn.execute(UPSERT, (key(i), json.dumps(value(i))))
            await conn.commit()
        return time.perf_counter() - start


async def psycopg_tasks_one_connection(dsn: str, n: int) -> float:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        await in_tasks(n, lambda i: conn.execute(UPSERT, (key(i), json.dumps(value(i)))))
        return time.perf_counter() - start


async def psycopg_tasks_pool(dsn: str, n: int) -> float:
    pool = AsyncConnectionPool(dsn, min_size=10, max_size=10, kwargs={"autocommit": True}, open=False)
    async with pool:
        await pool.wait()

        async def save(i: int) -> None:
            async with pool.connection() as conn:
                await conn.execute(UPSERT, (key(i), json.dumps(value(i))))

        start = time.perf_counter()
        await in_tasks(n, save)
        return time.perf_counter() - start


async def psycopg_executemany(dsn: str, n: int) -> float:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        start = time.perf_counter()
        async with conn.cursor() as cursor:
            await cursor.executemany(UPSERT, [(key(i), json.dumps(value(i))) for i in range(n)])
        await conn.commit()
        return time.perf_counter() - start


BASELINE = "psycopg AsyncConnection, upsert + commit per save"
FLOOR = "psycopg executemany, one transaction"

CONTENDERS: list[tuple[str, str, Run]] = [
    ("atom enqueue_save + flush", "asyncio", atom_enqueue),
    ("atom enqueue_save + flush", "trio", atom_enqueue),
    (f"atom, {TASKS} tasks await save()", "asyncio", atom_tasks),
    (f"atom, {TASKS} tasks await save()", "trio", atom_tasks),
    ("atom enable_batching=False, enqueue_save + flush", "asyncio", unbatched_enqueue),
    (f"atom enable_batching=False, {TASKS} tasks await save()", "asyncio", unbatched_tasks),
    (BASELINE, "asyncio", psycopg_per_save),
    (f"psycopg AsyncConnection, {TASKS} tasks, autocommit upsert", "asyncio", psycopg_tasks_one_connection),
    (f"psycopg AsyncConnectionPool(10), {TASKS} tasks, autocommit upsert", "asyncio", psycopg_tasks_pool),
    (FLOOR, "asyncio", psycopg_executemany),
]


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "public"."{TABLE}" (key TEXT PRIMARY KEY, value JSONB NOT NULL, '
            "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        conn.execute(f'TRUNCATE "public"."{TABLE}"')


def check(dsn: str, n: int) -> None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f'SELECT count(*) FROM "public"."{TABLE}"').fetchone()
    if row is None or row[0] != n:
        raise RuntimeError(f"expected {n} rows after the run, found {row}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 saves")
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", default=os.environ.get("EPHEMERAL_TEST_POSTGRES_DSN", DEFAULT_DSN))
    args = parser.parse_args(argv)
    n = 1_000 if args.quick else args.n
    best: dict[tuple[str, str], float] = {}
    try:
        for round_ in range(args.repeat):
            for name, backend, run in CONTENDERS:
                reset(args.dsn)
                seconds = anyio.run(run, args.dsn, n, backend=backend)
                check(args.dsn, n)
                rate = n / seconds
                best[(name, backend)] = max(best.get((name, backend), 0.0), rate)
                print(f"round {round_ + 1}: {name} [{backend}]: {rate:,.0f} saves/s", file=sys.stderr, flush=True)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "public"."{TABLE}"')
    baseline = best[(BASELINE, "asyncio")]
    floor = best[(FLOOR, "asyncio")]
    print(f"\nSaves per second into PostgreSQL (JSONB upserts), best of {args.repeat}, N = {n:,}\n")
    print("| contender | loop | saves/s | vs upsert + commit per save | vs executemany floor |")
    print("|---|---|---:|---:|---:|")
    for (name, backend), rate in best.items():
        print(f"| {name} | {backend} | {rate:,.0f} | {rate / baseline:.2f}x | {rate / floor:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
