"""SqliteTaskStore: real SQLite files, real threads and a real child process killed with SIGKILL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest

from ephemeral.atoms.scheduledtasks import (
    DurableTask,
    DurableTaskAtom,
    ScheduledTaskDefinition,
    ScheduledTasksAtom,
    ScheduledTasksOptions,
    SqliteTaskStore,
)

pytestmark = [pytest.mark.anyio, pytest.mark.real_time]
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def rows(db: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:  # `with conn` alone does not close it
        return conn.execute("SELECT name, status FROM ephemeral_tasks ORDER BY id").fetchall()


async def test_a_task_is_on_disk_before_enqueue_returns(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    release = anyio.Event()
    ran: list[str] = []

    async def handler(task: DurableTask) -> None:
        await release.wait()
        ran.append(task.name)

    async with DurableTaskAtom(handler, SqliteTaskStore(db)) as atom:
        assert await atom.enqueue(DurableTask("one", "s", AT, payload={"n": 1}))
        assert rows(db)[0][0] == "one"  # read through another connection
        assert not await atom.enqueue(DurableTask("one", "s", AT))  # stored once
        release.set()
        await atom.wait_for_idle()
    assert ran == ["one"]
    assert rows(db) == [("one", "done")]


async def test_finished_tasks_never_run_again_and_unfinished_ones_do(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    ran: list[str] = []

    scope = anyio.CancelScope()
    stored = anyio.Event()

    async def slow(task: DurableTask) -> None:
        await stored.wait()
        ran.append(task.name)
        if task.name == "second":
            scope.cancel()  # the process "stops" while "second" runs
            await anyio.sleep_forever()

    with scope:
        async with DurableTaskAtom(slow, SqliteTaskStore(db)) as atom:
            for name in ("first", "second", "third"):
                await atom.enqueue(DurableTask(name, "s", AT, payload=[name]))
            stored.set()
            await atom.wait_for_idle()
    assert ran == ["first", "second"]
    assert rows(db) == [("first", "done"), ("second", "running"), ("third", "pending")]

    seen: list[DurableTask] = []

    async def record(task: DurableTask) -> None:
        seen.append(task)

    async with DurableTaskAtom(record, SqliteTaskStore(db)) as atom:
        await atom.wait_for_idle()
    assert [(t.name, t.payload, t.scheduled_at) for t in seen] == [("second", ["second"], AT), ("third", ["third"], AT)]


async def test_failures_are_retried_then_marked_failed(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    attempts: list[float] = []

    async def failing(task: DurableTask) -> None:
        attempts.append(anyio.current_time())
        raise ValueError("nope")

    async with DurableTaskAtom(failing, SqliteTaskStore(db), max_attempts=3, retry_delay=0.05) as atom:
        await atom.enqueue(DurableTask("bad", "s", AT))
        await atom.wait_for_idle()
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] >= 0.1 - 0.01  # doubled delay
    with contextlib.closing(sqlite3.connect(db)) as conn:  # `with conn` alone does not close it
        assert conn.execute("SELECT status, attempt, error FROM ephemeral_tasks").fetchall() == [
            ("failed", 3, "ValueError: nope")
        ]


async def test_a_restarted_scheduler_catches_up_from_the_file(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    seen: list[datetime] = []

    async def record(task: DurableTask) -> None:
        seen.append(task.scheduled_at)

    every_second = ScheduledTaskDefinition("tick", "* * * * * *", "tick")
    origin = time.monotonic()
    # A wall clock running 5x fast (the same one across the restart), so real seconds are not spent waiting;
    # the scheduler sleeps by that clock's seconds, so poll_interval (real seconds) keeps it on time.
    options = ScheduledTasksOptions(
        poll_interval=0.02, clock=lambda: AT + timedelta(seconds=5 * (time.monotonic() - origin))
    )
    for _ in range(2):
        async with (
            DurableTaskAtom(record, SqliteTaskStore(db)) as durable,
            ScheduledTasksAtom(durable, [every_second], options),
        ):
            await anyio.sleep(0.26)
        await anyio.sleep(0.22)  # down for a while: the second start catches up on what it missed
    assert len(seen) >= 3
    assert seen == [seen[0] + timedelta(seconds=i) for i in range(len(seen))]  # every second, once
