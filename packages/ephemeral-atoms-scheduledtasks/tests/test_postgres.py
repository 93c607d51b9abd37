"""PostgresTaskStore on the real PostgreSQL server: stored once, claimed under a lease, rerun after a lease expires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from ephemeral.atoms.scheduledtasks import (
    DurableTask,
    DurableTaskAtom,
    PostgresTaskStore,
    ScheduledTaskDefinition,
    ScheduledTasksAtom,
    ScheduledTasksOptions,
)

pytestmark = [pytest.mark.anyio, pytest.mark.real_time]
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
Admin = Callable[[str, "tuple[Any, ...] | None"], "list[tuple[Any, ...]]"]


async def test_each_occurrence_is_stored_once_and_runs_once(postgres_dsn: str, table: str, admin: Admin) -> None:
    seen: list[DurableTask] = []

    async def record(task: DurableTask) -> None:
        seen.append(task)

    async with DurableTaskAtom(record, PostgresTaskStore(postgres_dsn, table=table)) as atom:
        assert await atom.enqueue(DurableTask("a", "job.a", AT, key="k", payload={"n": [1, 2]}, description="d"))
        assert not await atom.enqueue(DurableTask("a", "job.a", AT))
        assert await atom.enqueue(DurableTask("a", "job.a", AT + timedelta(seconds=1)))
        await atom.wait_for_idle()
        assert await atom.store.last_scheduled("a") == AT + timedelta(seconds=1)
    assert seen[0] == DurableTask("a", "job.a", AT, key="k", payload={"n": [1, 2]}, description="d")
    assert len(seen) == 2
    assert admin(f"SELECT status, owner FROM {table} ORDER BY id", None) == [("done", None), ("done", None)]


async def test_a_dead_workers_lease_expires_and_the_task_runs_elsewhere(
    postgres_dsn: str, table: str, admin: Admin
) -> None:
    ran: list[str] = []

    async def stuck(task: DurableTask) -> None:
        ran.append("stuck")
        await anyio.sleep_forever()

    with anyio.move_on_after(0.5):  # the worker "dies" mid-handler: its claim stays, with a lease
        async with DurableTaskAtom(stuck, PostgresTaskStore(postgres_dsn, table=table, lease=1.0)) as atom:
            await atom.enqueue(DurableTask("job", "s", AT))
            await atom.wait_for_idle()
    assert admin(f"SELECT status FROM {table}", None) == [("running",)]

    async def record(task: DurableTask) -> None:
        ran.append("rerun")

    started = anyio.current_time()
    async with DurableTaskAtom(record, PostgresTaskStore(postgres_dsn, table=table, lease=1.0)) as other:
        await other.wait_for_idle()
    assert ran == ["stuck", "rerun"]
    assert anyio.current_time() - started < 5
    assert admin(f"SELECT status FROM {table}", None) == [("done",)]


async def test_a_long_handler_keeps_its_lease(postgres_dsn: str, table: str) -> None:
    runs: list[str] = []

    async def slow(task: DurableTask) -> None:
        runs.append(task.name)
        await anyio.sleep(2.0)  # over three times the lease: renewed every 0.2 s

    store = PostgresTaskStore(postgres_dsn, table=table, lease=0.6, poll_interval=0.1)
    async with (
        DurableTaskAtom(slow, store) as one,
        DurableTaskAtom(slow, PostgresTaskStore(postgres_dsn, table=table, poll_interval=0.1)) as two,
    ):
        await one.enqueue(DurableTask("long", "s", AT))
        await anyio.sleep(2.3)
        await one.wait_for_idle()
        await two.wait_for_idle()
    assert runs == ["long"]


async def test_two_workers_running_one_schedule_fire_each_tick_once(postgres_dsn: str, table: str) -> None:
    seen: list[tuple[str, datetime]] = []

    def recorder(worker: str) -> Callable[[DurableTask], Any]:
        async def record(task: DurableTask) -> None:
            seen.append((worker, task.scheduled_at))

        return record

    tick = ScheduledTaskDefinition("tick", "* * * * * *", "tick")
    options = ScheduledTasksOptions(poll_interval=5)
    async with (
        DurableTaskAtom(recorder("one"), PostgresTaskStore(postgres_dsn, table=table)) as one,
        DurableTaskAtom(recorder("two"), PostgresTaskStore(postgres_dsn, table=table)) as two,
        ScheduledTasksAtom(one, [tick], options),
        ScheduledTasksAtom(two, [tick], options),
    ):
        await anyio.sleep(2.5)
    async with DurableTaskAtom(recorder("drain"), PostgresTaskStore(postgres_dsn, table=table)) as drain:
        await drain.wait_for_idle()
    times = sorted(at for _, at in seen)
    assert len(times) >= 2
    assert times == [times[0] + timedelta(seconds=i) for i in range(len(times))]


def test_identifiers_are_validated(postgres_dsn: str) -> None:
    with pytest.raises(ValueError, match="table"):
        PostgresTaskStore(postgres_dsn, table='tasks"; DROP TABLE x; --')
    with pytest.raises(ValueError, match="schema"):
        PostgresTaskStore(postgres_dsn, schema="a.b")
    with pytest.raises(ValueError, match="lease"):
        PostgresTaskStore(postgres_dsn, lease=0)
    with pytest.raises(TypeError, match="conninfo"):
        PostgresTaskStore(5)  # type: ignore[arg-type]
