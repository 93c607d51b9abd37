"""FlushBuffer: batches cut when full, or when their first item has waited the interval, in virtual time."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from ephemeral.core.lowlevel import FlushBuffer


def test_add_returns_the_batch_it_filled() -> None:
    buffer: FlushBuffer[int] = FlushBuffer(3, 1.0, clock=lambda: 0.0)
    assert buffer.add(1) is None
    assert buffer.add(2) is None
    assert buffer.add(3) == [1, 2, 3]
    assert len(buffer) == 0 and not buffer
    assert buffer.deadline is None


def test_the_deadline_runs_from_the_first_item() -> None:
    now = [10.0]
    buffer: FlushBuffer[str] = FlushBuffer(10, timedelta(seconds=2), clock=lambda: now[0])
    buffer.add("a")
    now[0] = 11.0
    buffer.add("b")
    assert buffer.deadline == 12.0
    assert not buffer.due()
    now[0] = 12.0
    assert buffer.due()
    assert buffer.take() == ["a", "b"]
    assert buffer.take() == []
    assert not buffer.due()


async def test_wait_returns_true_when_the_open_batch_falls_due() -> None:
    buffer: FlushBuffer[int] = FlushBuffer(10, 0.5)
    batches: list[tuple[float, list[int]]] = []
    start = anyio.current_time()

    async def flusher() -> None:
        while True:
            if await buffer.wait():
                batches.append((anyio.current_time() - start, buffer.take()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(flusher)
        await anyio.sleep(1.0)  # an idle buffer never falls due
        buffer.add(1)
        await anyio.sleep(0.2)
        buffer.add(2)
        await anyio.sleep(1.0)
        buffer.add(3)
        await anyio.sleep(1.0)
        tg.cancel_scope.cancel()
    assert [items for _, items in batches] == [[1, 2], [3]]
    assert batches[0][0] == pytest.approx(1.5, abs=1e-5)
    assert batches[1][0] == pytest.approx(2.7, abs=1e-5)


async def test_wake_interrupts_the_wait() -> None:
    buffer: FlushBuffer[int] = FlushBuffer(10, 60.0)
    buffer.add(1)
    start = anyio.current_time()

    async def waker() -> None:
        await anyio.sleep(1.0)
        buffer.wake()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waker)
        assert await buffer.wait() is False  # the first add's wake was kept: a look at the state
        assert await buffer.wait() is False  # woken after a second, not due
    assert anyio.current_time() - start == pytest.approx(1.0)
    assert buffer.take() == [1]


@pytest.mark.parametrize(
    ("max_items", "interval", "error", "name"),
    [
        (0, 1.0, ValueError, "max_items"),
        (1.5, 1.0, TypeError, "max_items"),
        (1, 0.0, ValueError, "interval"),
        (1, "1s", TypeError, "interval"),
    ],
)
def test_bad_arguments_are_named(max_items: object, interval: object, error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        FlushBuffer(max_items, interval)  # type: ignore[arg-type]


def test_repr_and_properties() -> None:
    buffer: FlushBuffer[int] = FlushBuffer(4, 0.25)
    assert (buffer.max_items, buffer.interval) == (4, 0.25)
    assert repr(buffer) == "<FlushBuffer 0/4 interval=0.25>"
