"""The early-exit result coordinator: the first exit signal cancels running and waiting work."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from ephemeral.core import EarlyExitResultCoordinator, EphemeralOptions, SignalSink, current_operation


async def test_exit_signal_stops_the_run() -> None:
    """Item 3 emitting verdict.confirmed stops the run with 2 results; the rest is cancelled (reference test)."""
    sink = SignalSink()
    processed: list[int] = []

    async def body(item: int) -> int:
        if item == 3:
            sink.emit("verdict.confirmed", key="bot")
        await anyio.sleep(0.05)
        processed.append(item)
        return item

    options = EphemeralOptions(max_concurrency=1, signals=sink)
    async with EarlyExitResultCoordinator(body, {"verdict.*"}, options) as c:
        for i in range(1, 11):
            await c.enqueue(i)
        result = await c.finish()
    assert result.exited and result.exit_signal == "verdict.confirmed" and result.exit_key == "bot"
    assert processed == [1, 2] and result.results == (1, 2)
    assert (result.completed_count, result.failed_count, result.cancelled_count) == (2, 0, 8)
    assert c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled == c.total_enqueued == 10
    assert c.early_exited and c.exit_signal == "verdict.confirmed"
    assert [(e.signal, e.key) for e in sink.sense("coordinator.early_exit:*")] == [
        ("coordinator.early_exit:verdict.confirmed", "bot")
    ]


async def test_no_exit_gives_every_result() -> None:
    """Without an exit signal every item runs and the result is not marked exited."""

    async def body(item: int) -> int:
        await anyio.sleep(0.05)
        return item * 10

    async with EarlyExitResultCoordinator(body, "verdict.*") as c:
        for i in range(3):
            await c.enqueue(i)
        result = await c.finish()
    assert not result.exited and result.exit_signal is None
    assert sorted(result.results) == [0, 10, 20] and result.cancelled_count == 0


async def test_exit_cancels_in_flight_bodies() -> None:
    """An exit emitted by one operation interrupts every other running body at once (fix of the reference)."""
    interrupted: list[int] = []

    async def body(item: int) -> int:
        if item == 0:
            await anyio.sleep(1)
            current_operation().emit("answer.found")
            await anyio.lowlevel.checkpoint()
            return -1
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            interrupted.append(item)
            raise
        return item

    origin = anyio.current_time()
    async with EarlyExitResultCoordinator(body, "answer.*", EphemeralOptions(max_concurrency=4)) as c:
        for i in range(6):
            await c.enqueue(i)
    result = c.get_result()
    assert anyio.current_time() - origin == pytest.approx(1)
    assert sorted(interrupted) == [1, 2, 3]
    assert result.exited and result.results == ()
    assert (result.cancelled_count, c.total_enqueued) == (6, 6)


async def test_enqueue_after_exit_returns_minus_one() -> None:
    """An exit signal emitted on the sink from outside stops intake: later enqueues return -1."""
    sink = SignalSink()

    async def body(item: int) -> int:
        await anyio.sleep(10)
        return item

    async with EarlyExitResultCoordinator(body, "halt", EphemeralOptions(signals=sink)) as c:
        assert await c.enqueue(1) > 0
        sink.emit("halt")
        assert await c.enqueue(2) == -1
        assert await c.enqueue_with_id(3) == -1
        assert not c.try_enqueue(4)
    assert c.total_enqueued == 1 and c.total_cancelled == 1


async def test_exit_signals_from_before_entering_are_ignored() -> None:
    """A matching signal already in the window when the coordinator starts does not stop it."""
    sink = SignalSink()
    sink.emit("halt")

    async def body(item: int) -> int:
        return item

    async with EarlyExitResultCoordinator(body, "halt", EphemeralOptions(signals=sink)) as c:
        await c.enqueue(1)
    assert not c.get_result().exited and c.get_result().results == (1,)


async def test_exit_after_the_work_is_done_changes_nothing() -> None:
    """An exit signal arriving after everything drained leaves the outcome as it was."""
    sink = SignalSink()

    async def body(item: int) -> int:
        return item

    async with EarlyExitResultCoordinator(body, "halt", EphemeralOptions(signals=sink)) as c:
        await c.enqueue(1)
        await c.drain()
        sink.emit("halt")
    assert not c.early_exited and not sink.detect("coordinator.early_exit:*")


@pytest.mark.real_time
async def test_exit_signal_from_another_thread() -> None:
    """An exit signal emitted on a worker thread cancels the work on the loop."""
    sink = SignalSink()

    async def body(item: int) -> int:
        await anyio.sleep(3600)
        return item

    async with EarlyExitResultCoordinator(body, "halt", EphemeralOptions(signals=sink)) as c:
        await c.enqueue(1)
        await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(sink.emit, "halt")
        result = await c.finish()
    assert result.exited and result.cancelled_count == 1


def test_exit_signals_are_required() -> None:
    """An empty set of exit signals raises ValueError naming it."""

    async def body(item: int) -> int:
        return item

    with pytest.raises(ValueError, match="exit_signals"):
        EarlyExitResultCoordinator(body, [])
