"""FixedWorkAtom: a fixed-concurrency worker pool with stats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Generic, TypeVar

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink
from ephemeral.core.lowlevel import AtomBase, check_int

__all__ = ("FixedWorkAtom",)

T = TypeVar("T")


class FixedWorkAtom(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """A worker pool of fixed size: items run in enqueue order, at most ``max_concurrency`` at once.

    Use it as an async context manager; leaving the block drains it. ``stats()`` gives
    ``(pending, active, completed, failed)``, ``snapshot()`` the operations in the window, and
    ``drain()`` stops intake and waits for every accepted item. A body that raises is recorded as
    failed; it never stops the pool.

    Args:
        body: ``async def body(item)``, run once per item.
        max_concurrency: The most bodies running at once (default: the number of CPUs).
        max_tracked: How many operations stay visible, and how many items may wait before
            ``enqueue`` waits (default 200).
        signals: A shared ``SignalSink``; without one the atom has a private sink.

    Raises:
        TypeError: ``body`` is not callable, or an argument has the wrong type.
        ValueError: ``max_concurrency`` or ``max_tracked`` is below 1.

    Example:
        >>> async with FixedWorkAtom(process, max_concurrency=4, max_tracked=200) as atom:
        ...     await atom.enqueue(item)
        ...     pending, active, completed, failed = atom.stats()
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[object]],
        *,
        max_concurrency: int | None = None,
        max_tracked: int | None = None,
        signals: SignalSink | None = None,
    ) -> None:
        options = EphemeralOptions(signals=signals)
        if max_concurrency is not None:
            options = replace(options, max_concurrency=max_concurrency)
        if max_tracked is not None:
            options = replace(options, max_tracked_operations=check_int(max_tracked, "max_tracked"))
        super().__init__(EphemeralWorkCoordinator(body, options))

    async def enqueue(self, item: T) -> int:
        """Accept ``item``, waiting while ``max_tracked`` items already wait; return its operation id.

        Raises:
            CoordinatorClosedError: The atom was drained or completed; the item was not accepted.
        """
        return await self.coordinator.enqueue(item)
