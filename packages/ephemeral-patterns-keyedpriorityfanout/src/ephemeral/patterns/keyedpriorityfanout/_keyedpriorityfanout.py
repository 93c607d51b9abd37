"""KeyedPriorityFanOut: a priority lane per key over core's keyed coordinator."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

from ephemeral.core import CoordinatorMetrics, EphemeralKeyedWorkCoordinator, EphemeralOptions, SignalSink
from ephemeral.core.lowlevel import AtomBase, check_async_callable, check_int

__all__ = ("KeyedPriorityFanOut", "PendingCounts")

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class PendingCounts(NamedTuple):
    """Items accepted and not started yet, per lane: ``priority, normal = fanout.pending_counts``."""

    priority: int
    normal: int


class KeyedPriorityFanOut(AtomBase[EphemeralKeyedWorkCoordinator[K, K]], Generic[K, T]):
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
    what waits. Every accepted item ends completed, failed or cancelled:
    ``total_completed + total_failed + total_cancelled == total_enqueued`` once closed.

    Args:
        key_selector: Maps an item to its key.
        body: ``async def body(item)``.
        max_concurrency: The most bodies running at once, over every key.
        per_key_concurrency: The most bodies of one key running at once.
        sink: A shared sink for the operations' signals (None: a private one).
        max_priority_depth: The most priority items waiting (None: no limit but ``max_pending``).
        max_pending: How many accepted items may wait, both lanes together, before enqueueing waits.

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
    ) -> None:
        if not callable(key_selector):
            raise TypeError(f"key_selector must be callable, got {key_selector!r}")
        check_async_callable(body, "body")
        check_int(max_concurrency, "max_concurrency")
        check_int(per_key_concurrency, "per_key_concurrency")
        check_int(max_pending, "max_pending")
        if max_priority_depth is not None:
            check_int(max_priority_depth, "max_priority_depth")
        if per_key_concurrency > max_concurrency:
            raise ValueError(
                f"per_key_concurrency ({per_key_concurrency}) must not exceed max_concurrency ({max_concurrency})"
            )
        self._key_selector = key_selector
        self._body = body
        self.max_priority_depth = max_priority_depth
        # Per key: (priority queue, normal queue). The coordinator queues one token (the key) per item and
        # keeps the limits and per-key order of tokens; which item a token runs is chosen when it starts.
        self._queues: dict[K, tuple[deque[T], deque[T]]] = {}
        self._priority = 0
        self._normal = 0
        self._reserved = 0
        options = EphemeralOptions(
            max_concurrency=max_concurrency,
            max_concurrency_per_key=per_key_concurrency,
            max_tracked_operations=max_pending,
            signals=sink,
        )
        coordinator: EphemeralKeyedWorkCoordinator[K, K] = EphemeralKeyedWorkCoordinator(
            lambda key: key, self._run, options
        )
        super().__init__(coordinator)

    def _on_error_exit(self) -> None:
        super()._on_error_exit()
        self._forget_waiting()

    def _forget_waiting(self) -> None:
        """Items whose tokens were cancelled never start: drop them (the coordinator counted them cancelled)."""
        if self.coordinator.is_cancelled and self._queues:
            self._queues.clear()
            self._priority = self._normal = 0

    async def _run(self, key: K) -> None:
        priority, normal = self._queues[key]
        if priority:
            item = priority.popleft()
            self._priority -= 1
        else:
            item = normal.popleft()
            self._normal -= 1
        if not priority and not normal:
            del self._queues[key]
        await self._body(item)

    def _queue(self, key: K, item: T, lane: int) -> None:
        # Called right after the coordinator accepted the key's token, with no await in between, so the
        # token cannot have started yet: it will find this item.
        queues = self._queues.get(key)
        if queues is None:
            queues = self._queues[key] = (deque(), deque())
        queues[lane].append(item)
        if lane:
            self._normal += 1
        else:
            self._priority += 1

    def _priority_full(self) -> bool:
        depth = self.max_priority_depth
        return depth is not None and self._priority + self._reserved >= depth

    async def enqueue(self, item: T) -> int:
        """Queue ``item`` in its key's normal lane, waiting while ``max_pending`` items wait.

        Returns:
            The id of the operation that will run it.

        Raises:
            CoordinatorClosedError: The fan-out was drained or cancelled; the item was not accepted.
        """
        key = self._key_selector(item)
        operation_id = await self.coordinator.enqueue(key)
        self._queue(key, item, 1)
        return operation_id

    async def enqueue_priority(self, item: T) -> bool:
        """Queue ``item`` in its key's priority lane, ahead of the key's waiting normal items.

        Returns:
            False, accepting nothing, when ``max_priority_depth`` priority items already wait; True once
            accepted (it waits while ``max_pending`` items wait).

        Raises:
            CoordinatorClosedError: The fan-out was drained or cancelled; the item was not accepted.
        """
        if self._priority_full():
            return False
        key = self._key_selector(item)
        self._reserved += 1
        try:
            await self.coordinator.enqueue(key)
        finally:
            self._reserved -= 1
        self._queue(key, item, 0)
        return True

    def try_enqueue(self, item: T, *, priority: bool = False) -> bool:
        """Queue ``item`` (in the priority lane with ``priority=True``) if it can wait right now; else False."""
        if priority and self._priority_full():
            return False
        key = self._key_selector(item)
        if not self.coordinator.try_enqueue(key):
            return False
        self._queue(key, item, 0 if priority else 1)
        return True

    @property
    def pending_counts(self) -> PendingCounts:
        """Items accepted and not started, per lane."""
        self._forget_waiting()  # a cancellation may have reached the coordinator from outside
        return PendingCounts(self._priority, self._normal)

    @property
    def pending_count(self) -> int:
        """Items accepted and not started, both lanes."""
        self._forget_waiting()
        return self._priority + self._normal

    @property
    def active_count(self) -> int:
        """Bodies running now."""
        return self.coordinator.active_count

    def get_pending_counts_for_key(self, key: K) -> PendingCounts:
        """Items of ``key`` accepted and not started, per lane."""
        queues = self._queues.get(key)
        return PendingCounts(0, 0) if queues is None else PendingCounts(len(queues[0]), len(queues[1]))

    def get_metrics(self) -> CoordinatorMetrics:
        """Every counter at once: ``total_enqueued``, ``total_completed``, ``total_failed``, ``total_cancelled``, ..."""
        return self.coordinator.get_metrics()

    def cancel(self) -> None:
        """Refuse new items, cancel waiting ones and interrupt running bodies (counted as cancelled)."""
        self.coordinator.cancel()
        self._forget_waiting()
