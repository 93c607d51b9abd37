"""What the storage benchmarks share: saves spread over concurrent tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

TASKS = 50


async def in_tasks(n: int, save: Callable[[int], Awaitable[object]]) -> None:
    """Run ``await save(i)`` for i in range(n), spread over ``TASKS`` tasks (task t takes t, t + TASKS, ...)."""

    async def worker(offset: int) -> None:
        for i in range(offset, n, TASKS):
            await save(i)

    async with anyio.create_task_group() as tg:
        for t in range(TASKS):
            tg.start_soon(worker, t)
