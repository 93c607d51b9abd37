"""One-shot bounded parallel processing of an iterable."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from ._coordinator import CoordinatorBase, CoordinatorMetrics, EphemeralWorkCoordinator
from ._keyed import EphemeralKeyedWorkCoordinator
from ._options import EphemeralOptions

__all__ = ("ephemeral_for_each",)

T = TypeVar("T")


async def ephemeral_for_each(
    items: Iterable[T] | AsyncIterable[T],
    body: Callable[[T], Awaitable[Any]],
    options: EphemeralOptions | None = None,
    *,
    key_selector: Callable[[T], Hashable] | None = None,
) -> CoordinatorMetrics:
    """Run ``body`` over every item with bounded concurrency and return the final counters.

    Items are pulled lazily from a sync or async iterable: at most ``max_tracked_operations`` wait
    at a time, so an endless or huge source is fine. A body that raises is recorded and counted in
    ``total_failed``; the others carry on. If the source itself raises, the items already taken
    still run, then the source's exception propagates.

    With ``key_selector``, items of one key run in order, at most ``max_concurrency_per_key`` at once,
    under the global ``max_concurrency``, and a busy key never holds up the others.
    """
    source_error: Exception | None = None
    coordinator: CoordinatorBase[T, Any] = (
        EphemeralWorkCoordinator(body, options)
        if key_selector is None
        else EphemeralKeyedWorkCoordinator(key_selector, body, options)
    )
    async with coordinator:
        try:
            await coordinator.enqueue_many(items)
        except Exception as error:
            source_error = error
    if source_error is not None:
        raise source_error
    return coordinator.get_metrics()
