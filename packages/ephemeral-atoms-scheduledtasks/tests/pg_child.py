"""A worker process for the multi-process test: runs one every-second schedule on a shared PostgreSQL table.

    python pg_child.py DSN TASKS RUNS [hang-after-seconds]

Each handler run inserts a row into RUNS. The worker schedules until its standard input is closed, then
stops scheduling and helps until no task is left unfinished. With a last argument, the first task it
claims after that many seconds hangs (the parent kills the process then).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import anyio.to_thread
import psycopg

from ephemeral.atoms.scheduledtasks import (
    DurableTask,
    DurableTaskAtom,
    PostgresTaskStore,
    ScheduledTaskDefinition,
    ScheduledTasksAtom,
    ScheduledTasksOptions,
)


async def main(dsn: str, tasks: str, runs: str, hang_after: float | None) -> None:
    conn: psycopg.Connection[tuple[Any, ...]] = await anyio.to_thread.run_sync(
        lambda: psycopg.connect(dsn, autocommit=True)
    )
    started = anyio.current_time()

    async def handler(task: DurableTask) -> None:
        if hang_after is not None and anyio.current_time() - started >= hang_after:
            print("hanging", flush=True)
            await anyio.sleep_forever()
        await anyio.to_thread.run_sync(
            lambda: conn.execute(
                f"INSERT INTO {runs} (scheduled_at, pid) VALUES (%s, %s)", (task.scheduled_at, os.getpid())
            )
        )
        await anyio.sleep(0.05)

    tick = ScheduledTaskDefinition("tick", "* * * * * *", "tick")
    store = PostgresTaskStore(dsn, table=tasks, lease=2.0, poll_interval=0.5)
    async with DurableTaskAtom(handler, store) as durable:  # one at a time: a kill interrupts only the hang
        async with ScheduledTasksAtom(durable, [tick], ScheduledTasksOptions(poll_interval=5)):
            print("started", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)  # until the parent closes it
        await durable.wait_for_idle()
    conn.close()


if __name__ == "__main__":
    hang = float(sys.argv[4]) if len(sys.argv) > 4 else None
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], hang)
