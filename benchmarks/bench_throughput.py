"""Coordinator throughput on no-op bodies against the queues and limiters a Python user would pick instead.

Every contender is an ``async def run(n, concurrency, bound)`` that pushes ``n`` items through ``body``
with at most ``concurrency`` bodies at once and returns when every body has finished. The caller
times it inside the event loop (loop start-up is not counted; creating and draining the workers is).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiometer
import anyio

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator

Runner = Callable[[int, int, int], Awaitable[None]]

#: The coordinator's default pending bound (``EphemeralOptions.max_tracked_operations``).
DEFAULT_BOUND = EphemeralOptions().max_tracked_operations


async def body(item: int) -> None:
    """The no-op body every contender runs."""


async def coordinator(n: int, concurrency: int, bound: int) -> None:
    """EphemeralWorkCoordinator, default options except max_concurrency; producer awaits enqueue."""
    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=concurrency)) as c:
        enqueue = c.enqueue
        for i in range(n):
            await enqueue(i)
    if c.total_completed != n:
        raise RuntimeError(f"coordinator completed {c.total_completed} of {n} items")


async def asyncio_queue(n: int, concurrency: int, bound: int) -> None:
    """asyncio.Queue(maxsize=bound) with `concurrency` worker tasks, stopped by sentinels (asyncio only)."""
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=bound)
    done = 0

    async def worker() -> None:
        nonlocal done
        get = queue.get
        while True:
            item = await get()
            if item is None:
                return
            await body(item)
            done += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    put = queue.put
    for i in range(n):
        await put(i)
    for _ in range(concurrency):
        await put(None)
    await asyncio.gather(*tasks)
    if done != n:
        raise RuntimeError(f"asyncio.Queue workers completed {done} of {n} items")


async def trio_channel(n: int, concurrency: int, bound: int) -> None:
    """trio.open_memory_channel(bound) with `concurrency` workers on clones of the receive end (trio only)."""
    import trio

    send, receive = trio.open_memory_channel[int](bound)
    done = 0

    async def worker(channel: trio.MemoryReceiveChannel[int]) -> None:
        nonlocal done
        async with channel:
            async for item in channel:
                await body(item)
                done += 1

    async with trio.open_nursery() as nursery:
        async with receive:
            for _ in range(concurrency):
                nursery.start_soon(worker, receive.clone())
        async with send:
            for i in range(n):
                await send.send(i)
    if done != n:
        raise RuntimeError(f"trio channel workers completed {done} of {n} items")


async def anyio_deque_workers(n: int, concurrency: int, bound: int) -> None:
    """`concurrency` anyio workers taking from a collections.deque and parking on an anyio.Event when empty.

    The pattern measured before choosing primitives; the producer waits on an Event while `bound` items wait.
    """
    pending: deque[int] = deque()
    parked: list[anyio.Event] = []
    space: anyio.Event | None = None
    finished = False
    done = 0

    async def worker() -> None:
        nonlocal space, done
        while True:
            if pending:
                item = pending.popleft()
                if space is not None:
                    space.set()
                    space = None
                await body(item)
                done += 1
            elif finished:
                return
            else:
                event = anyio.Event()
                parked.append(event)
                await event.wait()

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
        for i in range(n):
            while len(pending) >= bound:
                space = anyio.Event()
                await space.wait()
            pending.append(i)
            if parked:
                parked.pop().set()
        finished = True
        for event in parked:
            event.set()
        parked.clear()
    if done != n:
        raise RuntimeError(f"deque workers completed {done} of {n} items")


async def capacity_limiter(n: int, concurrency: int, bound: int) -> None:
    """anyio.CapacityLimiter(concurrency), one task per item; the producer acquires before spawning."""
    limiter = anyio.CapacityLimiter(concurrency)
    done = 0

    async def one(item: int, token: object) -> None:
        nonlocal done
        try:
            await body(item)
            done += 1
        finally:
            limiter.release_on_behalf_of(token)

    async with anyio.create_task_group() as tg:
        acquire = limiter.acquire_on_behalf_of
        for i in range(n):
            token = object()
            await acquire(token)
            tg.start_soon(one, i, token)
    if done != n:
        raise RuntimeError(f"CapacityLimiter tasks completed {done} of {n} items")


async def aiometer_run_on_each(n: int, concurrency: int, bound: int) -> None:
    """aiometer.run_on_each(body, range(n), max_at_once=concurrency)."""
    await aiometer.run_on_each(body, range(n), max_at_once=concurrency)


@dataclass(frozen=True)
class Contender:
    name: str
    run: Runner
    #: Targets for coordinator / this contender: ">= 0.75" (at least three quarters as fast), "> 1" (faster).
    target: tuple[str, float] | None


COORDINATOR = Contender("EphemeralWorkCoordinator", coordinator, None)


def contenders(backend: str) -> list[Contender]:
    """The coordinator first, then the baselines that run on `backend`."""
    queue_like: list[Contender]
    if backend == "asyncio":
        queue_like = [Contender("asyncio.Queue(200) + 64 workers", asyncio_queue, (">=", 0.75))]
    else:
        queue_like = [Contender("trio memory channel(200) + 64 workers", trio_channel, (">=", 4.0))]
    return [
        COORDINATOR,
        *queue_like,
        Contender("anyio deque + Event, 64 workers", anyio_deque_workers, None),
        Contender("anyio CapacityLimiter(64), task per item", capacity_limiter, (">", 1.0)),
        Contender("aiometer.run_on_each(max_at_once=64)", aiometer_run_on_each, (">", 1.0)),
    ]


def cpu_ratios(backend: str, n: int, runs: int) -> list[tuple[float, float]]:
    """(coordinator items/s, queue-workers items/s) by the thread's CPU time, ``runs`` interleaved pairs.

    Thread CPU time (``time.thread_time``) counts only this process's own work, so other processes on a
    shared machine count far less than in wall time; the figures are otherwise those of section 1.
    """
    import time

    baseline = asyncio_queue if backend == "asyncio" else trio_channel

    def cpu(run: Runner) -> float:
        async def main() -> float:
            start = time.thread_time()
            await run(n, 64, DEFAULT_BOUND)
            return time.thread_time() - start

        return anyio.run(main, backend=backend)

    cpu(coordinator), cpu(baseline)  # warm-up
    pairs = []
    for index in range(runs):
        first, second = (coordinator, baseline) if index % 2 == 0 else (baseline, coordinator)
        seconds = {first: cpu(first), second: cpu(second)}
        pairs.append((n / seconds[coordinator], n / seconds[baseline]))
    return pairs


if __name__ == "__main__":
    import argparse
    import statistics
    import sys

    parser = argparse.ArgumentParser(description="Coordinator vs queue workers by thread CPU time, interleaved.")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    ratios = []
    for own, other in cpu_ratios(arguments.backend, arguments.items, arguments.runs):
        ratios.append(own / other)
        print(
            f"coordinator {own:,.0f} items/s, queue workers {other:,.0f} items/s: {own / other:.2f}x", file=sys.stderr
        )
    print(f"{arguments.backend}: median coordinator ÷ queue workers (thread CPU) {statistics.median(ratios):.2f}x")
