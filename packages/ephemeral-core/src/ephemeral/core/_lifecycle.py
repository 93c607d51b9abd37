"""Owning a task group on behalf of an object's ``async with`` block."""

from __future__ import annotations

from types import TracebackType

import anyio
from anyio.abc import TaskGroup

__all__ = ("close_task_group", "open_task_group")


async def open_task_group() -> TaskGroup:
    """Enter a new task group for an object's background tasks (close it with ``close_task_group``)."""
    tg = anyio.create_task_group()
    await tg.__aenter__()
    return tg


async def close_task_group(
    tg: TaskGroup,
    exc_type: type[BaseException] | None = None,
    exc: BaseException | None = None,
    tb: TracebackType | None = None,
) -> None:
    """Cancel the background tasks of ``tg`` and leave it.

    The task group sees a cancellation, so it absorbs its own, but never the caller's own exception:
    that one propagates from the caller's ``async with`` unchanged, not wrapped in an exception group.
    """
    tg.cancel_scope.cancel()
    if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
        await tg.__aexit__(None, None, None)
    else:
        await tg.__aexit__(exc_type, exc, tb)
