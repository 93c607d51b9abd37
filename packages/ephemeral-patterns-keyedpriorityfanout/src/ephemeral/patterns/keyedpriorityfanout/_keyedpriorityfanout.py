"""KeyedPriorityFanOut: a priority lane within each key, over core's keyed priority coordinator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, NamedTuple, TypeVar

from ephemeral.core import (
    EphemeralOptions,
    PriorityKeyedWorkCoordinator,
    PriorityLane,
    PriorityWorkCoordinatorOptions,
    SignalSink,
)
from ephemeral.core.lowlevel import AtomBase, check_int

__all__ = ("KeyedPriorityFanOut", "PendingCounts")

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class PendingCounts(NamedTuple):
    """Items accepted and not started yet, per lane: ``priority, normal = fanout.pending_counts``."""

    priority: int
    normal: int


class KeyedPriorityFanOut(AtomBase[PriorityKeyedWorkCoordinator[T, K]], Generic[K, T]):
    """Keyed work with a priority lane: a priority item runs before every waiting normal item of its key.

    Each key (``key_selector(item)``) has two queues, priority and normal. When the key may start an
    item (fewer than ``per_key_concurrency`` of it run, and a global slot is free, ``max_concurrency``
    in all), it starts its oldest priority item, or else its oldest normal one: a priority item jumps
    its own key's queue and only that. Which key gets a free slot is unchanged by priority (keys take
    slots in the order their work arrived), so an urgent command of one user never delays another
    user's work, and a busy key never stalls the others. Within each lane a key's items start in
    enqueue order; with ``per_key_concurrency=1`` a key's items run one at a time.

    ``enqueue_priority`` returns False, accepting nothing, while ``max_priority_depth`` priority items
    wait (over every key). At most ``max_pending`` items wait in all; beyond that both ``enqueue``
    calls wait. Use it as an async context manager; leaving the block drains it, an exception cancels
    what waits. Each lane may skip its waiting items while a signal is live (``cancel_priority_on``,
    ``cancel_normal_on``; counted in ``total_skipped``) or hold them back (``defer_priority_on``,
    ``defer_normal_on``: a held priority lane lets the key's normal items go). Every accepted item ends
    completed, failed, skipped or cancelled:
    ``total_completed + total_failed + total_skipped + total_cancelled == total_enqueued`` once closed.

    It is ``PriorityKeyedWorkCoordinator`` with two lanes, ``priority`` and ``normal``, ordered within
    each key (``lanes_within_key=True``).

    Args:
        key_selector: Maps an item to its key.
        body: ``async def body(item)``.
        max_concurrency: The most bodies running at once, over every key.
        per_key_concurrency: The most bodies of one key running at once.
        sink: A shared sink for the operations' signals (None: a private one).
        max_priority_depth: The most priority items waiting (None: no limit but ``max_pending``).
        max_pending: How many accepted items may wait, both lanes together, before enqueueing waits.
        cancel_priority_on: While a matching signal is live, waiting priority items are skipped.
        defer_priority_on: While a matching signal is live, priority items are held back.
        cancel_normal_on: While a matching signal is live, waiting normal items are skipped.
        defer_normal_on: While a matching signal is live, normal items are held back.

    Raises:
        TypeError: ``key_selector`` or ``body`` is not callable, or a limit is not an int.
        ValueError: A limit is below 1, or ``per_key_concurrency`` exceeds ``max_concurrency``.

    Example:
        >>> async with KeyedPriorityFanOut(
        ...     key_selector=lambda cmd: cmd.user_id, body=handle, max_concurrency=32, max_priority_depth=100
        ... ) as fanout:
        ...     await fanout.enqueue(normal_command)
        ...     accepted = await fanout.enqueue_priority(urgent_command)
    """

    def __init__(
        self,
        *,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[object]],
        max_concurrency: int,
        per_key_concurrency: int = 1,
        sink: SignalSink | None = None,
        max_priority_depth: int | None = None,
        max_pending: int = 1000,
        cancel_priority_on: Iterable[str] | str | None = None,
        defer_priority_on: Iterable[str] | str | None = None,
        cancel_normal_on: Iterable[str] | str | None = None,
        defer_normal_on: Iterable[str] | str | None = None,
    ) -> None:
        check_int(per_key_concurrency, "per_key_concurrency")
        check_int(max_pending, "max_pending")
        if max_priority_depth is not None:
            check_int(max_priority_depth, "max_priority_depth")
        if check_int(max_concurrency, "max_concurrency") < per_key_concurrency:
            raise ValueError(
                f"per_key_concurrency ({per_key_concurrency}) must not exceed max_concurrency ({max_concurrency})"
            )
        lanes = (
            PriorityLane(
                "priority",
                max_depth=max_priority_depth,
                cancel_on_signals=cancel_priority_on,
                defer_on_signals=defer_priority_on,
            ),
            PriorityLane("normal", cancel_on_signals=cancel_normal_on, defer_on_signals=defer_normal_on),
        )
        options = EphemeralOptions(
            max_concurrency=max_concurrency,
            max_concurrency_per_key=per_key_concurrency,
            max_tracked_operations=max_pending,
            signals=sink,
        )
        super().__init__(
            PriorityKeyedWorkCoordinator(
                key_selector,
                body,
                PriorityWorkCoordinatorOptions(lanes=lanes, ephemeral_options=options),
                lanes_within_key=True,
            )
        )
        self.max_priority_depth = max_priority_depth

    async def enqueue(self, item: T) -> int:
        """Queue ``item`` in its key's normal lane, waiting while ``max_pending`` items wait.

        Returns:
            The id of the operation that will run it.

        Raises:
            CoordinatorClosedError: The fan-out was drained or cancelled; the item was not accepted.
        """
        return await self.coordinator.enqueue(item, "normal")

    async def enqueue_priority(self, item: T) -> bool:
        """Queue ``item`` in its key's priority lane, ahead of the key's waiting normal items.

        Returns:
            False, accepting nothing, when ``max_priority_depth`` priority items already wait; True once
            accepted (it waits while ``max_pending`` items wait).

        Raises:
            CoordinatorClosedError: The fan-out was drained or cancelled; the item was not accepted.
        """
        return bool(await self.coordinator.enqueue(item, "priority"))

    def try_enqueue(self, item: T, *, priority: bool = False) -> bool:
        """Queue ``item`` (in the priority lane with ``priority=True``) if it can wait right now; else False."""
        return self.coordinator.try_enqueue(item, "priority" if priority else "normal")

    @property
    def pending_counts(self) -> PendingCounts:
        """Items accepted and not started, per lane."""
        return PendingCounts(*self.coordinator.pending_counts.values())

    def get_pending_counts_for_key(self, key: K) -> PendingCounts:
        """Items of ``key`` accepted and not started, per lane."""
        return PendingCounts(*self.coordinator.get_pending_counts_for_key(key).values())
