"""LoopBinding: sync callbacks from other threads reach the loop without blocking the thread."""

from __future__ import annotations

import logging
import threading
from functools import partial

import anyio
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink
from ephemeral.core.lowlevel import LoopBinding

pytestmark = pytest.mark.real_time  # real threads


async def test_call_from_a_thread_does_not_wait_for_the_loop() -> None:
    """The loop thread may wait synchronously for the calling thread: the call is handed off, not awaited.

    (A blocking hand-off deadlocks here: the thread waits for the loop, the loop for the thread.)
    """
    binding = LoopBinding()
    ran: list[str] = []
    thread = threading.Thread(target=lambda: binding.call(lambda: ran.append(threading.current_thread().name)))
    thread.start()
    thread.join(timeout=5)  # the loop thread is blocked here, as a sync join in a callback would block it
    assert not thread.is_alive(), "the calling thread waited for the blocked loop"
    assert ran == []  # handed off, not yet run
    await anyio.sleep(0.01)
    assert ran == [threading.current_thread().name]  # then run on the loop's thread


async def test_calls_from_a_thread_run_in_order() -> None:
    binding = LoopBinding()
    ran: list[int] = []

    def producer() -> None:
        for n in range(100):
            binding.call(partial(ran.append, n))

    await anyio.to_thread.run_sync(producer)
    await anyio.sleep(0.01)
    assert ran == list(range(100))


async def test_a_failing_callback_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    binding = LoopBinding()
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    def producer() -> None:
        binding.call(boom)
        binding.call(lambda: ran.append("after"))

    with caplog.at_level(logging.ERROR):
        await anyio.to_thread.run_sync(producer)
        await anyio.sleep(0.01)
    assert ran == ["after"]
    assert "boom" in caplog.text


async def test_call_on_the_loop_thread_runs_at_once() -> None:
    binding = LoopBinding()
    ran: list[int] = []
    binding.call(lambda: ran.append(1))
    assert ran == [1]


def test_call_after_the_loop_finished_is_ignored() -> None:
    bindings: list[LoopBinding] = []

    async def main() -> None:
        bindings.append(LoopBinding())

    anyio.run(main)
    ran: list[int] = []
    thread = threading.Thread(target=lambda: bindings[0].call(lambda: ran.append(1)))
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert ran == []


async def test_drain_signal_from_a_thread_the_loop_waits_for() -> None:
    """A drain signal emitted on a thread the loop thread joins synchronously neither deadlocks nor is lost."""
    sink = SignalSink()
    done: list[int] = []

    async def body(item: int) -> None:
        done.append(item)

    options = EphemeralOptions(max_concurrency=2, signals=sink, drain_on_signals="shutdown")
    async with EphemeralWorkCoordinator(body, options) as coordinator:
        await coordinator.enqueue(1)
        thread = threading.Thread(target=sink.emit, args=("shutdown",))
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "emit on the thread waited for the blocked loop"
        with anyio.fail_after(5):
            await coordinator.drain()  # returns once the drain signal completed the coordinator
        assert coordinator.is_completed
    assert done == [1]


async def test_anyio_works_inside_a_callback_from_a_thread() -> None:
    """The callback runs with the loop's async library known: anyio primitives work inside it."""
    binding = LoopBinding()
    seen: list[float] = []
    event = anyio.Event()

    def on_loop() -> None:
        seen.append(anyio.current_time())
        anyio.Event().set()
        event.set()

    await anyio.to_thread.run_sync(binding.call, on_loop)
    with anyio.fail_after(5):
        await event.wait()
    assert len(seen) == 1
