"""The result coordinator: results by operation id, also after the window moved on."""

from __future__ import annotations

import anyio
import pytest

from ephemeral.core import EphemeralOptions, EphemeralResultCoordinator, OperationStatus, ResultUnavailableError


async def double(item: int) -> int:
    await anyio.sleep(0.01)
    if item == 2:
        raise ValueError("two")
    return item * 2


async def test_results_are_collected() -> None:
    """get_results, get_successful and get_failed reflect the bodies' outcomes (reference tests 16-18)."""
    async with EphemeralResultCoordinator(double, EphemeralOptions(max_concurrency=4)) as c:
        for i in (1, 2, 3, 4, 5):
            await c.enqueue(i)
    assert sorted(c.get_results()) == [2, 6, 8, 10]
    assert len(c.get_successful()) == 4
    assert len(c.get_failed()) == 1


async def test_wait_for_result_returns_the_snapshot() -> None:
    """wait_for_result returns has_result and result on success, the error on failure (seed example)."""
    async with EphemeralResultCoordinator(double, EphemeralOptions(max_concurrency=2)) as c:
        ok = await c.enqueue_with_id(21)
        bad = await c.enqueue(2)
        snapshot = await c.wait_for_result(ok)
        assert snapshot.has_result and snapshot.result == 42
        failed = await c.wait_for_result(bad)
        assert not failed.has_result
        assert isinstance(failed.error, ValueError)
        assert failed.status is OperationStatus.FAILED


async def test_many_waiters_for_one_result() -> None:
    """Several tasks waiting for the same id all get it."""
    got: list[int | None] = []
    async with EphemeralResultCoordinator(double) as c:
        op = await c.enqueue(5)

        async def waiter() -> None:
            got.append((await c.wait_for_result(op)).result)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(waiter)
    assert got == [10, 10, 10]


async def test_result_outlives_the_window() -> None:
    """A result is still returned after its operation left the window."""
    async with EphemeralResultCoordinator(double, EphemeralOptions(max_tracked_operations=2, max_concurrency=1)) as c:
        first = await c.enqueue(1)
        for i in range(3, 8):
            await c.enqueue(i)
        await anyio.sleep(1)
        assert first not in [s.operation_id for s in c.get_snapshot()]
        assert (await c.wait_for_result(first)).result == 2


async def test_unknown_and_forgotten_results_raise_clearly() -> None:
    """An id never accepted, or whose outcome is no longer kept, raises ResultUnavailableError."""
    async with EphemeralResultCoordinator(double, EphemeralOptions(max_tracked_operations=1, max_concurrency=1)) as c:
        first = await c.enqueue(1)
        for i in range(3, 20):
            await c.enqueue(i)
        await anyio.sleep(5)
        with pytest.raises(ResultUnavailableError, match="no longer kept"):
            await c.wait_for_result(first)
        with pytest.raises(ResultUnavailableError):
            await c.wait_for_result(-1)


async def test_wait_for_result_timeout() -> None:
    """wait_for_result gives up after its timeout."""

    async def slow(item: int) -> int:
        await anyio.sleep(100)
        return item

    async with EphemeralResultCoordinator(slow) as c:
        op = await c.enqueue(1)
        with pytest.raises(TimeoutError):
            await c.wait_for_result(op, timeout=5)
        assert (await c.wait_for_result(op)).result == 1


async def test_cancelled_items_report_their_status() -> None:
    """Waiting for an item cancelled before it ran returns its cancelled snapshot."""

    async def slow(item: int) -> int:
        await anyio.sleep(100)
        return item

    async with EphemeralResultCoordinator(slow, EphemeralOptions(max_concurrency=1)) as c:
        await c.enqueue(1)
        second = await c.enqueue(2)
        await anyio.sleep(1)
        c.cancel()
        snapshot = await c.wait_for_result(second)
        assert snapshot.status is OperationStatus.CANCELLED
        assert not snapshot.has_result
