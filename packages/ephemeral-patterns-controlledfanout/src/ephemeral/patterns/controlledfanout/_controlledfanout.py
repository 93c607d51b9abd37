"""ControlledFanOut: global and per-key concurrency limits over core's keyed coordinator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ephemeral.core import EphemeralKeyedWorkCoordinator, EphemeralOptions, SignalSink
from ephemeral.core.lowlevel import AtomBase, check_int

__all__ = ("ControlledFanOut",)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class ControlledFanOut(AtomBase[EphemeralKeyedWorkCoordinator[T, K]], Generic[K, T]):
    """Runs ``body`` for each item with a global limit and a per-key limit, without head-of-line blocking.

    At most ``max_global_concurrency`` bodies run at once, and at most ``per_key_concurrency`` of one
    key (``key_selector(item)``, a tenant, a user, a host). Items of a key at its limit wait in that
    key's own queue, so a busy or flooding key never stalls the others: whenever a global slot frees up,
    it goes to the key whose next startable item arrived first. Each key's items start in enqueue order;
    with ``per_key_concurrency=1`` they also run one after another. At most ``max_pending`` items wait
    in all; beyond that ``enqueue`` waits (``try_enqueue`` returns False). With ``fair=True`` ready keys
    take turns instead (round-robin), so a key with a long backlog gets no more than its share of the
    free slots.

    Use it as an async context manager; leaving the block drains it (an exception cancels the waiting
    items). Every accepted item ends completed, failed or cancelled:
    ``total_completed + total_failed + total_cancelled == total_enqueued`` once closed.

    Args:
        key_selector: Maps an item to its key.
        body: ``async def body(item)``.
        max_global_concurrency: The most bodies running at once, over every key.
        per_key_concurrency: The most bodies of one key running at once.
        sink: A shared sink for the operations' signals (None: a private one).
        max_pending: How many accepted items may wait before ``enqueue`` waits.
        fair: Serve ready keys round-robin instead of by arrival.

    Raises:
        TypeError: ``key_selector`` or ``body`` is not callable, or a limit is not an int.
        ValueError: A limit is below 1, or ``per_key_concurrency`` exceeds ``max_global_concurrency``.

    Example:
        >>> async with ControlledFanOut(
        ...     key_selector=lambda req: req.tenant_id, body=handle, max_global_concurrency=100, per_key_concurrency=5
        ... ) as fanout:
        ...     await fanout.enqueue(request)
    """

    def __init__(
        self,
        *,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[object]],
        max_global_concurrency: int,
        per_key_concurrency: int = 1,
        sink: SignalSink | None = None,
        max_pending: int = 1000,
        fair: bool = False,
    ) -> None:
        check_int(max_global_concurrency, "max_global_concurrency")
        check_int(per_key_concurrency, "per_key_concurrency")
        check_int(max_pending, "max_pending")
        if per_key_concurrency > max_global_concurrency:
            raise ValueError(
                f"per_key_concurrency ({per_key_concurrency}) must not exceed "
                f"max_global_concurrency ({max_global_concurrency})"
            )
        options = EphemeralOptions(
            max_concurrency=max_global_concurrency,
            max_concurrency_per_key=per_key_concurrency,
            max_tracked_operations=max_pending,
            enable_fair_scheduling=fair,
            fair_scheduling_threshold=max_pending,
            signals=sink,
        )
        super().__init__(EphemeralKeyedWorkCoordinator(key_selector, body, options))

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` under its key, waiting while ``max_pending`` items wait; return its operation id.

        Raises:
            CoordinatorClosedError: The fan-out was drained or cancelled; the item was not accepted.
        """
        return await self.coordinator.enqueue(item)

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` if it can wait right now; False when ``max_pending`` items wait or intake has stopped."""
        return self.coordinator.try_enqueue(item)

    def get_pending_count_for_key(self, key: K) -> int:
        """Items of ``key`` waiting to start."""
        return self.coordinator.get_pending_count_for_key(key)

    def get_active_count_for_key(self, key: K) -> int:
        """Bodies of ``key`` running now."""
        return self.coordinator.get_active_count_for_key(key)

    @property
    def key_count(self) -> int:
        """Keys with something waiting or running (idle keys are forgotten)."""
        return self.coordinator.key_count
