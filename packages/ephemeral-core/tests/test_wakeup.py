"""Wakeup, sleep_time and time_until: sleeping until a deadline or until woken, in virtual time."""

from __future__ import annotations

import anyio
import pytest

from ephemeral.core.lowlevel import Wakeup, sleep, sleep_time, time_until


def test_sleeps_are_whole_microseconds_and_never_negative() -> None:
    assert sleep_time(0.1234567) == 0.123457
    assert sleep_time(-1.0) == 0.0
    assert sleep_time(0.0) == 0.0


def test_a_sleep_towards_a_deadline_ends_just_past_it() -> None:
    assert time_until(1.5, 1.0) == 0.500001
    assert time_until(1.0, 2.0) == 0.000001  # overdue: wake at once, still moving the clock
    # clock arithmetic that lands a hair short still wakes past the deadline
    now = 0.1 + 0.2
    assert now + time_until(0.3000000001, now) >= 0.3000000001


async def test_wait_returns_false_when_the_deadline_passes() -> None:
    wakeup = Wakeup()
    start = anyio.current_time()
    assert await wakeup.wait(anyio.current_time() + 2.0) is False
    assert anyio.current_time() - start == pytest.approx(2.0, abs=1e-5)
    assert anyio.current_time() - start >= 2.0


async def test_wait_returns_true_when_woken_before_the_deadline() -> None:
    wakeup = Wakeup()
    start = anyio.current_time()

    async def waker() -> None:
        await anyio.sleep(0.5)
        assert wakeup.waiting
        wakeup.wake()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waker)
        assert await wakeup.wait(start + 10.0) is True
    assert anyio.current_time() - start == pytest.approx(0.5)
    assert not wakeup.waiting


async def test_a_wake_while_nobody_waits_is_kept_for_the_next_wait() -> None:
    wakeup = Wakeup()
    wakeup.wake()
    start = anyio.current_time()
    assert await wakeup.wait(start + 5.0) is True
    assert anyio.current_time() == start  # returned at once
    assert await wakeup.wait(start + 1.0) is False  # the kept wake was used up


async def test_wait_without_a_deadline_sleeps_until_woken() -> None:
    wakeup = Wakeup()
    with anyio.move_on_after(100.0) as scope:
        await wakeup.wait()
    assert scope.cancelled_caught
    assert not wakeup.waiting  # a cancelled wait leaves nothing behind


async def test_an_overdue_deadline_returns_at_once() -> None:
    wakeup = Wakeup()
    now = anyio.current_time()
    assert await wakeup.wait(now - 3.0) is False
    assert anyio.current_time() - now < 1e-5


async def test_a_given_clock_reads_the_deadlines() -> None:
    readings = [100.0]
    wakeup = Wakeup(clock=lambda: readings[0])
    start = anyio.current_time()
    assert await wakeup.wait(101.0) is False  # one second from the given clock's reading
    assert anyio.current_time() - start == pytest.approx(1.0, abs=1e-5)


def test_clock_must_be_callable() -> None:
    with pytest.raises(TypeError, match="clock"):
        Wakeup(clock=1.0)  # type: ignore[arg-type]
    assert "idle" in repr(Wakeup())


async def test_ready_is_checked_once_the_task_counts_as_waiting() -> None:
    wakeup = Wakeup()
    seen: list[bool] = []

    def ready() -> bool:
        seen.append(wakeup.waiting)  # a waker on another thread that checks `waiting` now sees True
        return True

    start = anyio.current_time()
    assert await wakeup.wait(start + 5.0, ready=ready) is True
    assert seen == [True]
    assert anyio.current_time() == start
    assert await wakeup.wait(start + 1.0, ready=lambda: False) is False


async def test_sleeps_end_on_whole_microseconds_of_the_loops_clock() -> None:
    """``now + delay`` in floating point falls between microseconds (1.0 + 0.500001); the wake does not."""
    start = anyio.current_time()
    await sleep(1.0)
    await sleep(0.500001)
    elapsed = anyio.current_time() - start
    assert elapsed == pytest.approx(1.500001, abs=1e-9)
    await sleep(-1.0)  # a negative sleep is no sleep
    assert anyio.current_time() - start == pytest.approx(1.500001, abs=1e-9)


async def test_a_wait_from_an_off_tick_moment_still_ends() -> None:
    """The case that hangs looptime 0.7 with a plain relative timeout: a deadline set at t=1.0 for t=1.5."""
    await anyio.sleep(1.0)
    wakeup = Wakeup()
    now = anyio.current_time()

    async def bystander() -> None:
        await anyio.sleep(0.2)
        await anyio.sleep(1.0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(bystander)
        assert await wakeup.wait(now + 0.5) is False
    assert anyio.current_time() - now == pytest.approx(1.2, abs=1e-5)
