"""Saves per second into SQLite: SqliteDataStorageAtom (batched and not) against what a Python user writes.

    python benchmarks/storage_sqlite.py [--quick] [--n N] [--repeat R]

Every contender upserts N JSON values (100 distinct keys) into a fresh WAL database file in a temporary
directory, with synchronous=FULL (SQLite's default), and is timed from the first save until every save
is committed. Contenders:

- atom, fire-and-forget: ``enqueue_save`` N times, then ``flush()`` (asyncio and trio).
- atom, 50 tasks: 50 tasks each ``await save(...)`` N/50 times (asyncio and trio).
- atom without batching: ``enable_batching=False``, one transaction per save (asyncio).
- aiosqlite, one statement per save: ``await db.execute(upsert)`` then ``await db.commit()`` per save, the
  code a Python user writes (asyncio only: aiosqlite does not run on trio).
- aiosqlite executemany: all N in one ``executemany`` and one commit (the floor for an async caller).
- sqlite3 executemany: the same, synchronously, in C (the floor of the machine).

Reported: best-of-R saves/s and each contender's ratio to aiosqlite one-statement-per-save.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from ephemeral.atoms.data import DataStorageConfig
from ephemeral.atoms.data_sqlite import SqliteDataStorageAtom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from storage_common import TASKS, in_tasks

UPSERT = (
    "INSERT INTO data (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = CURRENT_TIMESTAMP"
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS data (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, "
    "created_at TEXT DEFAULT CURRENT_TIMESTAMP, updated_at TEXT DEFAULT CURRENT_TIMESTAMP)"
)


def rows(n: int) -> list[tuple[str, str]]:
    return [(f"key-{i % 100}", f'{{"i":{i},"total":"42.00"}}') for i in range(n)]


def value(i: int) -> dict[str, Any]:
    return {"i": i, "total": "42.00"}


async def atom_enqueue(path: Path, n: int, batching: bool = True) -> None:
    config = DataStorageConfig(database_name="data", enable_batching=batching, max_pending_writes=max(n, 1))
    async with SqliteDataStorageAtom[str, Any](None, config, path) as storage:
        for i in range(n):
            storage.enqueue_save(f"key-{i % 100}", value(i))
        await storage.flush()


async def atom_tasks(path: Path, n: int) -> None:
    async with SqliteDataStorageAtom[str, Any](None, DataStorageConfig(database_name="data"), path) as storage:
        await in_tasks(n, lambda i: storage.save(f"key-{i % 100}", value(i)))


async def aiosqlite_per_statement(path: Path, n: int) -> None:
    import aiosqlite

    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(SCHEMA)
        await db.commit()
        for key, text in rows(n):
            await db.execute(UPSERT, (key, text))
            await db.commit()


async def aiosqlite_executemany(path: Path, n: int) -> None:
    import aiosqlite

    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(SCHEMA)
        await db.commit()
        await db.executemany(UPSERT, rows(n))
        await db.commit()


def sqlite3_executemany(path: Path, n: int) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SCHEMA)
        db.commit()
        db.executemany(UPSERT, rows(n))
        db.commit()
    finally:
        db.close()


Contender = tuple[str, str, Callable[[Path, int], Awaitable[None]] | Callable[[Path, int], None]]


def contenders() -> list[Contender]:
    async def unbatched(path: Path, n: int) -> None:
        await atom_enqueue(path, n, batching=False)

    return [
        ("SqliteDataStorageAtom enqueue_save + flush", "asyncio", atom_enqueue),
        ("SqliteDataStorageAtom enqueue_save + flush", "trio", atom_enqueue),
        (f"SqliteDataStorageAtom, {TASKS} tasks await save()", "asyncio", atom_tasks),
        (f"SqliteDataStorageAtom, {TASKS} tasks await save()", "trio", atom_tasks),
        ("SqliteDataStorageAtom enable_batching=False", "asyncio", unbatched),
        ("aiosqlite, execute + commit per save", "asyncio", aiosqlite_per_statement),
        ("aiosqlite executemany, one commit", "asyncio", aiosqlite_executemany),
        ("sqlite3 executemany, one commit (sync)", "-", sqlite3_executemany),
    ]


def timed(backend: str, run: Any, n: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        start = time.perf_counter()
        if backend == "-":
            run(path, n)
        else:
            anyio.run(run, path, n, backend=backend)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 saves, 2 repeats")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n, repeat = (1_000, 2) if args.quick else (args.n, args.repeat)
    # The per-statement baseline commits (fsyncs) every save: measured on a tenth of N, reported per save.
    slow = {"aiosqlite, execute + commit per save", "SqliteDataStorageAtom enable_batching=False"}
    best: dict[tuple[str, str], float] = {}
    for round_ in range(repeat):
        for name, backend, run in contenders():
            count = max(n // 10, 100) if name in slow else n
            seconds = timed(backend, run, count)
            rate = count / seconds
            best[(name, backend)] = max(best.get((name, backend), 0.0), rate)
            print(f"round {round_ + 1}: {name} [{backend}]: {rate:,.0f} saves/s", file=sys.stderr, flush=True)
    baseline = best[("aiosqlite, execute + commit per save", "asyncio")]
    print(f"\nSaves per second into SQLite (WAL), best of {repeat}, N = {n:,}\n")
    print("| contender | loop | saves/s | vs aiosqlite per statement |")
    print("|---|---|---:|---:|")
    for (name, backend), rate in best.items():
        print(f"| {name} | {backend} | {rate:,.0f} | {rate / baseline:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
