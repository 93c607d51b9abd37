"""Keyed work with one slow key: do the other keys keep flowing?

Ten keys, one slow (each of its items takes SLOW seconds) and nine fast (FAST seconds each), arriving
interleaved, one item per key per round. Per-key order with one item of a key at a time, four at
once overall. Measured: when the last fast-key item finishes.

Contenders:
- ``EphemeralKeyedWorkCoordinator``: per-key queues, ready keys served in arrival order.
- A FIFO dispatcher with a global semaphore and one semaphore per key, taking items in arrival
  order (how the .NET original and a typical hand-rolled version work): while it waits for the slow
  key's semaphore, it holds a global slot and every item behind it waits (head-of-line blocking).
"""

from __future__ import annotations

from typing import Any

import anyio

from ephemeral.core import EphemeralKeyedWorkCoordinator, EphemeralOptions

KEYS = ["slow"] + [f"fast{i}" for i in range(9)]
ROUNDS = 20
SLOW = 0.05
FAST = 0.001
CONCURRENCY = 4


def workload(rounds: int) -> list[tuple[str, int]]:
    return [(key, i) for i in range(rounds) for key in KEYS]


async def _timed_body(item: tuple[str, int], done: dict[str, float], start: float) -> None:
    await anyio.sleep(SLOW if item[0] == "slow" else FAST)
    done[item[0]] = anyio.current_time() - start


async def run_ephemeral(rounds: int) -> dict[str, float]:
    """Seconds until the last fast item and the last slow item finished, through the keyed coordinator."""
    done: dict[str, float] = {}
    start = anyio.current_time()

    async def body(item: tuple[str, int]) -> None:
        await _timed_body(item, done, start)

    options = EphemeralOptions(max_concurrency=CONCURRENCY, max_concurrency_per_key=1)
    async with EphemeralKeyedWorkCoordinator(lambda item: item[0], body, options) as coordinator:
        await coordinator.enqueue_many(workload(rounds))
    return _summary(done)


async def run_fifo_semaphores(rounds: int) -> dict[str, float]:
    """The same through a FIFO dispatcher acquiring a global then a per-key semaphore, in arrival order."""
    done: dict[str, float] = {}
    start = anyio.current_time()
    global_slots = anyio.Semaphore(CONCURRENCY)
    key_slots: dict[str, anyio.Semaphore] = {key: anyio.Semaphore(1) for key in KEYS}

    async def run(item: tuple[str, int]) -> None:
        try:
            await _timed_body(item, done, start)
        finally:
            key_slots[item[0]].release()
            global_slots.release()

    async with anyio.create_task_group() as tg:
        for item in workload(rounds):
            await global_slots.acquire()
            await key_slots[item[0]].acquire()
            tg.start_soon(run, item)
    return _summary(done)


def _summary(done: dict[str, Any]) -> dict[str, float]:
    return {"fast": max(v for k, v in done.items() if k != "slow"), "slow": done["slow"]}
