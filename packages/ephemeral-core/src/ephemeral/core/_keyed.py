"""The keyed work coordinator: per-key order, a global bound, and no head-of-line blocking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from ._coordinator import CoordinatorBase
from ._events import SignalEvent
from ._operation import EphemeralOperationSnapshot
from ._options import EphemeralOptions
from ._queues import KeyedQueues

__all__ = ("EphemeralKeyedWorkCoordinator", "KeyedQueues")

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class EphemeralKeyedWorkCoordinator(CoordinatorBase[T, Any], Generic[T, K]):
    """Runs items in order per key, up to ``max_concurrency_per_key`` of a key at once.

    Items of a busy key wait in their own queue while other keys keep running: one slow key never
    holds up the rest. With ``enable_fair_scheduling`` keys take turns (round-robin), so a key with a
    long backlog cannot starve the others, and ``try_enqueue`` refuses an item whose key already has
    ``fair_scheduling_threshold`` waiting. Per-key state is released as soon as a key goes idle.

    Args:
        key_selector: Maps an item to its key.
        body: ``async def body(item)``.
        options: As for ``EphemeralWorkCoordinator``, plus ``max_concurrency_per_key``.
    """

    def __init__(
        self,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[Any]],
        options: EphemeralOptions | None = None,
    ) -> None:
        if not callable(key_selector):
            raise TypeError(f"key_selector must be callable, got {key_selector!r}")
        super().__init__(
            body,
            options,
            lambda options: KeyedQueues(options.max_concurrency_per_key, fair=options.enable_fair_scheduling),
        )
        self._key_selector = key_selector
        self._keys: KeyedQueues = self._queue  # type: ignore[assignment]

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` under its key, waiting while ``max_tracked_operations`` items wait."""
        key = self._key_selector(item)
        if self._refusing or len(self._queue) >= self._capacity:
            await self._wait_for_room()
        return self._accept(item, str(key), key)

    enqueue_with_id = enqueue

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` if there is room now and, with fair scheduling, its key is under the threshold."""
        if not self._can_wait_now():
            return False
        key = self._key_selector(item)
        options = self.options
        if options.enable_fair_scheduling and self._keys.pending_for(key) >= options.fair_scheduling_threshold:
            return False
        self._accept(item, str(key), key)
        return True

    def get_pending_count_for_key(self, key: K) -> int:
        """Items of ``key`` waiting to start."""
        return self._keys.pending_for(key)

    def get_active_count_for_key(self, key: K) -> int:
        """Items of ``key`` running."""
        return self._keys.running_for(key)

    @property
    def key_count(self) -> int:
        """Keys with something waiting or running (idle keys are forgotten)."""
        return self._keys.key_count

    def get_snapshot_for_key(self, key: K) -> list[EphemeralOperationSnapshot[Any]]:
        """The operations of ``key`` in the window."""
        name = str(key)
        return [s for s in self.get_snapshot() if s.key == name]

    def get_signals_by_key(self, key: Any) -> list[SignalEvent[Any]]:
        """Signals emitted by operations of ``key``."""
        return super().get_signals_by_key(str(key))
