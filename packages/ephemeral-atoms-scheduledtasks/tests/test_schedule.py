"""ScheduledTasksAtom with the in-memory store, in virtual time on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import anyio
import pytest

from ephemeral.atoms.scheduledtasks import (
    DurableTask,
    DurableTaskAtom,
    InMemoryTaskStore,
    ScheduledTaskDefinition,
    ScheduledTasksAtom,
    ScheduledTasksOptions,
)
from ephemeral.core import CoordinatorClosedError, SignalEvent, SignalSink

pytestmark = pytest.mark.anyio
UTC = timezone.utc
START = datetime(2026, 1, 1, tzinfo=UTC)


def virtual_clock(start: datetime = START) -> Callable[[], datetime]:
    """A UTC clock that starts at ``start`` and moves with the event loop's (virtual) time."""
    origin = anyio.current_time()
    return lambda: start + timedelta(seconds=anyio.current_time() - origin)


class Recorder:
    """A handler that keeps every task it ran, and a sink listener that keeps every signal."""

    def __init__(self, sink: SignalSink | None = None) -> None:
        self.tasks: list[DurableTask] = []
        self.signals: list[SignalEvent[Any]] = []
        self.sink = sink or SignalSink()
        self.sink.subscribe(self.signals.append)

    async def __call__(self, task: DurableTask) -> None:
        self.tasks.append(task)

    def named(self, prefix: str) -> list[SignalEvent[Any]]:
        return [event for event in self.signals if event.signal.startswith(prefix)]


async def test_every_five_minutes_over_a_virtual_hour_fires_twelve_tasks() -> None:
    recorder = Recorder()
    definition = ScheduledTaskDefinition(
        "report", "*/5 * * * *", "report.due", key="finance", payload={"file": "q1.csv"}, description="Quarterly"
    )
    options = ScheduledTasksOptions(clock=virtual_clock())
    async with (
        DurableTaskAtom(recorder, signals=recorder.sink) as durable,
        ScheduledTasksAtom(durable, [definition], options) as scheduler,
    ):
        await anyio.sleep(3601)
        await durable.wait_for_idle()
        assert scheduler.wake_count <= 12 + 60  # the due ticks plus at most one per poll_interval
    assert [task.scheduled_at for task in recorder.tasks] == [START + timedelta(minutes=5 * i) for i in range(1, 13)]
    assert {(t.name, t.signal, t.key, str(t.payload), t.description) for t in recorder.tasks} == {
        ("report", "report.due", "finance", "{'file': 'q1.csv'}", "Quarterly")
    }
    assert len(recorder.named("schedule.fired:report")) == 12
    assert len(recorder.named("task.started:report")) == 12
    assert len(recorder.named("report.due")) == 12
    assert len(recorder.named("task.completed:report")) == 12
    assert {event.key for event in recorder.signals} == {"finance"}


async def test_run_on_startup_fires_at_once_then_follows_the_cron() -> None:
    recorder = Recorder()
    start = START + timedelta(minutes=1, seconds=30, microseconds=250)
    definition = ScheduledTaskDefinition("warm", "0 * * * *", "cache.warm", run_on_startup=True)
    async with (
        DurableTaskAtom(recorder) as durable,
        ScheduledTasksAtom(durable, [definition], ScheduledTasksOptions(clock=virtual_clock(start))),
    ):
        await durable.wait_for_idle()
        assert [t.scheduled_at for t in recorder.tasks] == [start.replace(microsecond=0)]
        await anyio.sleep(3600)
        await durable.wait_for_idle()
    assert [t.scheduled_at for t in recorder.tasks] == [start.replace(microsecond=0), START + timedelta(hours=1)]


async def test_six_field_cron_with_seconds() -> None:
    recorder = Recorder()
    definition = ScheduledTaskDefinition("fast", "*/10 * * * * *", "tick")
    async with (
        DurableTaskAtom(recorder) as durable,
        ScheduledTasksAtom(durable, [definition], ScheduledTasksOptions(clock=virtual_clock())),
    ):
        await anyio.sleep(60.5)
        await durable.wait_for_idle()
    assert [t.scheduled_at for t in recorder.tasks] == [START + timedelta(seconds=10 * i) for i in range(1, 7)]


async def test_europe_london_across_both_dst_changes() -> None:
    spring = datetime(2026, 3, 27, 12, tzinfo=UTC)
    fall = datetime(2026, 10, 23, 12, tzinfo=UTC)
    definition = ScheduledTaskDefinition("night", "30 1 * * *", "nightly", time_zone="Europe/London")
    for start, expected in [
        (spring, [(3, 28, 1, 30), (3, 29, 1, 0), (3, 30, 0, 30), (3, 31, 0, 30)]),
        (fall, [(10, 24, 0, 30), (10, 25, 0, 30), (10, 26, 1, 30), (10, 27, 1, 30)]),
    ]:
        recorder = Recorder()
        async with (
            DurableTaskAtom(recorder) as durable,
            ScheduledTasksAtom(
                durable, [definition], ScheduledTasksOptions(clock=virtual_clock(start), poll_interval=3600)
            ),
        ):
            await anyio.sleep(4 * 86400)
            await durable.wait_for_idle()
        assert [t.scheduled_at for t in recorder.tasks] == [datetime(2026, *md, tzinfo=UTC) for md in expected]


@pytest.mark.parametrize(
    ("policy", "ran_after_gap", "missed"),
    [("catch_up", 36, 0), ("latest", 1, 35), ("skip", 0, 36)],
)
async def test_misfire_policy_after_a_three_hour_gap(
    policy: Literal["catch_up", "latest", "skip"], ran_after_gap: int, missed: int
) -> None:
    store = InMemoryTaskStore()  # outlives the first process's atoms, as a durable store would
    definition = ScheduledTaskDefinition("five", "*/5 * * * *", "tick")
    clock = virtual_clock(START + timedelta(minutes=2))
    options = ScheduledTasksOptions(clock=clock, misfire=policy)
    first = Recorder()
    async with DurableTaskAtom(first, store) as durable, ScheduledTasksAtom(durable, [definition], options):
        await anyio.sleep(10 * 60)  # 00:05 and 00:10
        await durable.wait_for_idle()
    assert len(first.tasks) == 2
    await anyio.sleep(3 * 3600)  # down from 00:12 to 03:12: 00:15 ... 03:10 are overdue (36 occurrences)
    second = Recorder()
    async with (
        DurableTaskAtom(second, store, signals=second.sink) as durable,
        ScheduledTasksAtom(durable, [definition], options),
    ):
        await durable.wait_for_idle()
        assert len(second.tasks) == ran_after_gap
        assert len(second.named("schedule.missed:five")) == missed
        await anyio.sleep(3 * 60 + 1)  # 03:15 is on time again
        await durable.wait_for_idle()
    times = [t.scheduled_at for t in second.tasks]
    assert times[-1] == START + timedelta(hours=3, minutes=15)
    assert times == sorted(set(times))
    if policy == "latest":
        assert times == [START + timedelta(hours=3, minutes=10), START + timedelta(hours=3, minutes=15)]


async def test_a_clock_jump_is_noticed_within_poll_interval() -> None:
    jump = timedelta()
    base = virtual_clock()
    recorder = Recorder()
    definition = ScheduledTaskDefinition("hourly", "0 * * * *", "tick")
    options = ScheduledTasksOptions(clock=lambda: base() + jump, poll_interval=30, misfire="skip")
    async with (
        DurableTaskAtom(recorder, signals=recorder.sink) as durable,
        ScheduledTasksAtom(durable, [definition], options),
    ):
        await anyio.sleep(60)
        jump = timedelta(hours=3)  # the wall clock jumps; the scheduler sleeps until 01:00 by the old reading
        await anyio.sleep(31)
        await durable.wait_for_idle()
        assert len(recorder.named("schedule.missed:hourly")) == 3
        assert recorder.tasks == []


async def test_a_failing_handler_never_stops_the_schedule_and_is_retried() -> None:
    calls: list[tuple[datetime, float]] = []
    sink = SignalSink()
    events: list[str] = []
    sink.subscribe(lambda e: events.append(e.signal))

    async def handler(task: DurableTask) -> None:
        calls.append((task.scheduled_at, anyio.current_time()))
        if len(calls) <= 2:
            raise RuntimeError("boom")

    definition = ScheduledTaskDefinition("m", "* * * * *", "tick")
    async with (
        DurableTaskAtom(handler, max_attempts=2, retry_delay=5, signals=sink) as durable,
        ScheduledTasksAtom(durable, [definition], ScheduledTasksOptions(clock=virtual_clock())),
    ):
        await anyio.sleep(181)
        await durable.wait_for_idle()
    scheduled = [at for at, _ in calls]
    # 00:01 fails twice (attempt 1, then a retry 5 s later) and is given up; 00:02 and 00:03 run.
    assert scheduled == [START + timedelta(minutes=m) for m in (1, 1, 2, 3)]
    assert calls[1][1] - calls[0][1] == pytest.approx(5)
    assert events.count("task.failed:m") == 2
    assert events.count("task.completed:m") == 2
    assert durable.stats().failed == 2


async def test_wait_for_idle_waits_for_running_and_waiting_tasks() -> None:
    done: list[str] = []

    async def handler(task: DurableTask) -> None:
        await anyio.sleep(10)
        done.append(task.name)

    async with DurableTaskAtom(handler, max_concurrency=2) as durable:
        for name in "abc":
            assert await durable.enqueue(DurableTask(name, "s", START))
        assert not await durable.enqueue(DurableTask("a", "s", START))  # the same occurrence is stored once
        before = anyio.current_time()
        await durable.wait_for_idle()
        assert sorted(done) == ["a", "b", "c"]
        assert anyio.current_time() - before == pytest.approx(20)
        assert await durable.enqueue(DurableTask("a", "s", START))  # finished: a new one may be stored
        await durable.wait_for_idle()
    assert len(done) == 4


async def test_waiting_for_idle_after_leaving_raises_instead_of_hanging() -> None:
    """The block left by an error while a handler runs: wait_for_idle and drain afterwards raise, and a
    waiter already blocked when the block ends is woken with the same error."""

    async def handler(task: DurableTask) -> None:
        await anyio.sleep_forever()

    class Stop(Exception):
        pass

    errors: list[BaseException] = []

    async def wait(atom: DurableTaskAtom) -> None:
        try:
            await atom.wait_for_idle()
        except RuntimeError as error:
            errors.append(error)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            with pytest.raises(Stop):
                async with DurableTaskAtom(handler) as durable:
                    assert await durable.enqueue(DurableTask("stuck", "s", START))
                    tg.start_soon(wait, durable)
                    await anyio.sleep(1)
                    raise Stop
        assert len(errors) == 1 and "enter the atom first" in str(errors[0])
        with pytest.raises(RuntimeError, match="enter the atom first"):
            await durable.wait_for_idle()
        with pytest.raises(RuntimeError, match="enter the atom first"):
            await durable.drain()


async def test_bad_arguments() -> None:
    async def handler(task: DurableTask) -> None:
        pass

    durable = DurableTaskAtom(handler)
    definition = ScheduledTaskDefinition("m", "* * * * *", "tick")
    with pytest.raises(ValueError, match="definitions"):
        ScheduledTasksAtom(durable, [])
    with pytest.raises(ValueError, match="two schedules named 'm'"):
        ScheduledTasksAtom(durable, [definition, definition])
    with pytest.raises(TypeError, match="durable"):
        ScheduledTasksAtom(object(), [definition])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="misfire"):
        ScheduledTasksOptions(misfire="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        ScheduledTasksOptions(poll_interval=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        DurableTaskAtom(handler, max_concurrency=0)
    with pytest.raises(TypeError, match="store"):
        DurableTaskAtom(handler, store=object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="enter the atom first"):
        await durable.enqueue(DurableTask("m", "s", START))
    with pytest.raises(RuntimeError, match="enter the atom first"):
        await durable.wait_for_idle()
    with pytest.raises(RuntimeError, match="enter the atom first"):
        await durable.drain()
    with pytest.raises(ValueError, match="timezone-aware"):
        DurableTask("m", "s", datetime(2026, 1, 1))


@pytest.mark.parametrize("seed", range(4))
async def test_cancelled_at_a_random_moment_nothing_starts_after_and_every_task_completes_once(seed: int) -> None:
    import random

    rng = random.Random(seed)
    store = InMemoryTaskStore()
    started: list[float] = []
    completed: list[datetime] = []

    async def handler(task: DurableTask) -> None:
        started.append(anyio.current_time())
        await anyio.sleep(rng.randint(0, 40))  # whole seconds: looptime 0.7 (Python 3.10) hangs on some floats
        completed.append(task.scheduled_at)

    definition = ScheduledTaskDefinition("m", "* * * * *", "tick")
    options = ScheduledTasksOptions(clock=virtual_clock())
    deadline = anyio.current_time() + rng.randint(60, 600) + 0.5
    with anyio.move_on_after(deadline - anyio.current_time()):
        async with (
            DurableTaskAtom(handler, store, max_concurrency=2) as durable,
            ScheduledTasksAtom(durable, [definition], options),
        ):
            await anyio.sleep_forever()
    assert all(moment <= deadline for moment in started)
    fired = await store.last_scheduled("m")
    assert fired is not None
    async with DurableTaskAtom(handler, store) as durable:  # a restart finishes what was interrupted
        await durable.wait_for_idle()
    assert sorted(completed) == [START + timedelta(minutes=m) for m in range(1, len(completed) + 1)]
    assert completed and max(completed) == fired


async def test_an_exception_in_the_block_propagates_unchanged() -> None:
    async def handler(task: DurableTask) -> None:
        await anyio.sleep(100)

    definition = ScheduledTaskDefinition("m", "* * * * *", "tick")
    with pytest.raises(KeyError, match="mine"):
        async with (
            DurableTaskAtom(handler) as durable,
            ScheduledTasksAtom(durable, [definition], ScheduledTasksOptions(clock=virtual_clock())),
        ):
            await anyio.sleep(90)
            raise KeyError("mine")


async def test_latest_runs_one_occurrence_even_when_more_than_a_burst_were_missed() -> None:
    """A 20-minute gap on an every-second schedule is 1,200 missed occurrences: "latest" still runs one."""
    store = InMemoryTaskStore()
    definition = ScheduledTaskDefinition("sec", "* * * * * *", "tick")
    options = ScheduledTasksOptions(clock=virtual_clock(), misfire="latest")
    first = Recorder()
    async with DurableTaskAtom(first, store) as durable, ScheduledTasksAtom(durable, [definition], options):
        await anyio.sleep(2.5)
        await durable.wait_for_idle()
    assert len(first.tasks) == 2
    await anyio.sleep(20 * 60)  # down from 00:00:02.5 to 00:20:02.5
    second = Recorder()
    async with (
        DurableTaskAtom(second, store, signals=second.sink) as durable,
        ScheduledTasksAtom(durable, [definition], options),
    ):
        await anyio.sleep(0.1)  # less than a second: no occurrence is on time yet
        await durable.wait_for_idle()
        assert [task.scheduled_at for task in second.tasks] == [START + timedelta(minutes=20, seconds=2)]
        assert len(second.named("schedule.missed:sec")) == 20 * 60 - 1


async def test_the_durable_atom_must_be_entered_first() -> None:
    async def handler(task: DurableTask) -> None:
        pass

    durable = DurableTaskAtom(handler)
    definition = ScheduledTaskDefinition("m", "* * * * *", "tick")
    with pytest.raises(RuntimeError, match="enter the DurableTaskAtom first"):
        async with ScheduledTasksAtom(durable, [definition], ScheduledTasksOptions(clock=virtual_clock())):
            await anyio.sleep(120)  # without the check every occurrence failed to store, logged, forever


async def test_a_clock_jumping_back_fires_nothing_twice() -> None:
    jump = timedelta()
    base = virtual_clock()
    recorder = Recorder()
    definition = ScheduledTaskDefinition("m", "* * * * *", "tick")
    options = ScheduledTasksOptions(clock=lambda: base() + jump, poll_interval=30)
    async with (
        DurableTaskAtom(recorder, signals=recorder.sink) as durable,
        ScheduledTasksAtom(durable, [definition], options),
    ):
        await anyio.sleep(181)
        await durable.wait_for_idle()
        assert len(recorder.tasks) == 3
        jump = -timedelta(hours=1)  # 00:03 reads as 23:03 the day before
        await anyio.sleep(600)
        await durable.wait_for_idle()
        assert len(recorder.tasks) == 3  # 23:04 ... 23:13 are before what already ran
        await anyio.sleep(3600)  # the clock passes 00:03 again
        await durable.wait_for_idle()
    times = [task.scheduled_at for task in recorder.tasks]
    assert times == [START + timedelta(minutes=m) for m in range(1, len(times) + 1)]
    assert len(times) == 13


@asynccontextmanager
async def two_slow_tasks(ran: list[str]) -> AsyncIterator[DurableTaskAtom]:
    """An atom holding tasks "a" and "b", each taking 1 s and then recording its name in ``ran``."""

    async def handler(task: DurableTask) -> None:
        await anyio.sleep(1)
        ran.append(task.name)

    async with DurableTaskAtom(handler) as durable:
        await durable.enqueue(DurableTask("a", "s", START))
        await durable.enqueue(DurableTask("b", "s", START))
        yield durable


async def test_drain_runs_every_stored_task_then_refuses_new_ones() -> None:
    ran: list[str] = []
    async with two_slow_tasks(ran) as durable:
        await durable.drain()  # waits for the stored tasks, not only those already handed to a worker
        assert ran == ["a", "b"]
        with pytest.raises(CoordinatorClosedError):
            await durable.enqueue(DurableTask("c", "s", START))
        await anyio.sleep(5)  # the atom stays healthy: nothing crashes behind the block
    assert ran == ["a", "b"]


async def test_complete_refuses_new_tasks_while_stored_ones_still_run() -> None:
    ran: list[str] = []
    async with two_slow_tasks(ran) as durable:
        durable.complete()
        with pytest.raises(CoordinatorClosedError):
            await durable.enqueue(DurableTask("c", "s", START))
        await durable.wait_for_idle()
        assert ran == ["a", "b"]
