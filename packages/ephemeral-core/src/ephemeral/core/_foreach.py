"""One-shot bounded parallel processing of an iterable."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from ._coordinator import CoordinatorMetrics, EphemeralWorkCoordinator
from ._options import EphemeralOptions

__all__ = ("ephemeral_for_each",)

T = TypeVar("T")


async def ephemeral_for_each(
    items: Iterable[T] | AsyncIterable[T],
    body: Callable[[T], Awaitable[Any]],
    options: EphemeralOptions | None = None,
) -> CoordinatorMetrics:
    """Run ``body`` over every item with bounded concurrency and return the final counters.

    Items are pulled lazily from a sync or async iterable: at most ``max_tracked_operations`` wait
    at a time, so an endless or huge source is fine. A body that raises is recorded and counted in
    ``total_failed``; the others carry on. If the source itself raises, the items already taken
    still run, then the source's exception propagates.
    """
    source_error: Exception | None = None
    coordinator: EphemeralWorkCoordinator[T] = EphemeralWorkCoordinator(body, options)
    async with coordinator:
        try:
            await coordinator.enqueue_many(items)
        except Exception as error:
            source_error = error
    if source_error is not None:
        raise source_error
    return coordinator.get_metrics()
