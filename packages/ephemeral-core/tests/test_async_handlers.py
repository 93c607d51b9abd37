"""ephemeral.core.lowlevel.AsyncHandlerQueue: any item, bounded backlog either way, failures reported."""

from __future__ import annotations

import anyio
import pytest

from ephemeral.core.lowlevel import AsyncHandlerQueue, LoopBinding


class Recorder:
    def __init__(self) -> None:
        self.handled: list[str] = []
        self.failed: list[str] = []
        self.gate = anyio.Event()

    async def handle(self, item: str) -> None:
        await self.gate.wait()
        if item.startswith("bad"):
            raise ValueError(item)
        self.handled.append(item)


@pytest.mark.parametrize(
    ("overflow", "accepted", "handled"),
    [
        ("drop_oldest", [True] * 5, ["a", "d", "e"]),
        ("refuse_newest", [True, True, True, False, False], ["a", "b", "c"]),
    ],
)
async def test_a_full_queue_drops_its_oldest_or_refuses_the_newest(
    overflow: str, accepted: list[bool], handled: list[str]
) -> None:
    recorder = Recorder()
    queue: AsyncHandlerQueue[str] = AsyncHandlerQueue(recorder.handle, 1, 2, overflow=overflow)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        queue.start(tg, LoopBinding())
        assert queue.offer("a")
        await anyio.wait_all_tasks_blocked()  # "a" is being handled
        assert [queue.offer(item) for item in "bcde"] == accepted[1:]
        assert (queue.queued_count, queue.dropped_count) == (2, 2)
        recorder.gate.set()
        await queue.wait_idle()
    assert recorder.handled == handled
    assert (queue.accepted_count, queue.processed_count) == (accepted.count(True), 3)


async def test_a_failing_handler_is_reported_and_counted_and_the_others_carry_on() -> None:
    recorder = Recorder()
    recorder.gate.set()
    failures: list[str] = []
    queue: AsyncHandlerQueue[str] = AsyncHandlerQueue(recorder.handle, 2, 10, on_failure=failures.append)
    async with anyio.create_task_group() as tg:
        queue.start(tg, LoopBinding())
        for item in ("ok1", "bad", "ok2"):
            queue.submit(item)
        await queue.wait_idle()
    assert failures == ["bad"]
    assert (queue.processed_count, queue.failed_count, queue.accepted_count) == (2, 1, 3)
    assert sorted(recorder.handled) == ["ok1", "ok2"]


async def test_items_offered_before_start_or_after_close_are_dropped_and_counted() -> None:
    recorder = Recorder()
    queue: AsyncHandlerQueue[str] = AsyncHandlerQueue(recorder.handle, 1, 10)
    assert queue.offer("early") is False
    async with anyio.create_task_group() as tg:
        queue.start(tg, LoopBinding())
        assert queue.offer("a")
        await anyio.wait_all_tasks_blocked()
        assert queue.offer("b")
        queue.close()  # "a" is being handled: cancelled with the group below; "b" is dropped now
        assert queue.offer("late") is False
        tg.cancel_scope.cancel()
    assert (queue.accepted_count, queue.processed_count, queue.dropped_count) == (2, 0, 4)


def test_overflow_must_be_a_known_choice() -> None:
    async def handle(item: object) -> None:
        pass

    with pytest.raises(ValueError, match="overflow"):
        AsyncHandlerQueue(handle, 1, 1, overflow="drop_newest")  # type: ignore[arg-type]
