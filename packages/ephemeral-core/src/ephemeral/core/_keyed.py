"""The keyed work coordinator: per-key order, a global bound, and no head-of-line blocking."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from ._coordinator import CoordinatorBase, Entry
from ._events import SignalEvent
from ._operation import EphemeralOperationSnapshot
from ._options import EphemeralOptions

__all__ = ("EphemeralKeyedWorkCoordinator", "KeyedQueues")

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class KeyedQueues:
    """One FIFO per key, and the keys ready to start an item (queue not empty, key below its limit).

    Ready keys are served either in arrival order of their head items (a heap on ``rank``), or, with
    ``fair=True``, round-robin so that a key with a long backlog cannot starve the others. A key's
    state is dropped as soon as it has nothing waiting and nothing running, so memory follows the
    number of active keys, not the number of keys ever seen.
    """

    __slots__ = ("_fair", "_heap", "_key_of", "_queues", "_rank", "_ready", "_ring", "_running", "per_key", "size")

    def __init__(
        self,
        per_key: int,
        *,
        fair: bool = False,
        rank: Callable[[Entry], Any] | None = None,
        key_of: Callable[[Entry], Any] | None = None,
    ) -> None:
        self.per_key = per_key
        self._fair = fair
        self._rank: Callable[[Entry], Any] = rank if rank is not None else (lambda entry: entry[1])
        self._key_of: Callable[[Entry], Any] = key_of if key_of is not None else (lambda entry: entry[3])
        self._queues: dict[Any, deque[Entry]] = {}
        self._running: dict[Any, int] = {}
        self._ready: set[Any] = set()
        self._heap: list[tuple[Any, int, Any]] = []
        self._ring: deque[Any] = deque()
        self.size = 0

    def pending_for(self, key: Any) -> int:
        """Items of ``key`` waiting."""
        queue = self._queues.get(key)
        return 0 if queue is None else len(queue)

    def running_for(self, key: Any) -> int:
        """Items of ``key`` running."""
        return self._running.get(key, 0)

    @property
    def key_count(self) -> int:
        """Keys with something waiting or running."""
        return len(self._queues.keys() | self._running.keys())

    @property
    def ready_count(self) -> int:
        """Keys that could start an item now."""
        return len(self._ready)

    def _mark_ready(self, key: Any) -> None:
        if key in self._ready or self._running.get(key, 0) >= self.per_key:
            return
        queue = self._queues.get(key)
        if not queue:
            return
        self._ready.add(key)
        if self._fair:
            self._ring.append(key)
        else:
            head = queue[0]
            heapq.heappush(self._heap, (self._rank(head), head[1], key))

    def push(self, entry: Entry) -> None:
        """Queue an accepted item under its key."""
        key = self._key_of(entry)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(entry)
        self.size += 1
        self._mark_ready(key)

    def _next_ready_key(self, allowed: Callable[[Entry], bool] | None) -> Any:
        skipped: list[Any] = []
        found: Any = _NONE
        while found is _NONE:
            if self._fair:
                if not self._ring:
                    break
                key = self._ring.popleft()
            else:
                if not self._heap:
                    break
                key = heapq.heappop(self._heap)[2]
            if allowed is not None and not allowed(self._queues[key][0]):
                skipped.append(key)
                continue
            found = key
        # Keys not allowed now stay ready, in their place.
        if self._fair:
            self._ring.extendleft(reversed(skipped))
        else:
            for key in skipped:
                head = self._queues[key][0]
                heapq.heappush(self._heap, (self._rank(head), head[1], key))
        return found

    def take(self, allowed: Callable[[Entry], bool] | None = None) -> Entry | None:
        """Remove the next item allowed to start and count it as running under its key."""
        key = self._next_ready_key(allowed)
        if key is _NONE:
            return None
        self._ready.discard(key)
        queue = self._queues[key]
        entry = queue.popleft()
        if not queue:
            del self._queues[key]
        self.size -= 1
        self._running[key] = self._running.get(key, 0) + 1
        self._mark_ready(key)
        return entry

    def release(self, key: Any) -> None:
        """An item of ``key`` finished: free its slot, forget the key if it is idle."""
        running = self._running.get(key, 0) - 1
        if running > 0:
            self._running[key] = running
        else:
            self._running.pop(key, None)
        self._mark_ready(key)

    def remove_where(self, predicate: Callable[[Entry], bool]) -> list[Entry]:
        """Remove the waiting items matching ``predicate``, oldest first (running counts stay)."""
        removed: list[Entry] = []
        for key, queue in list(self._queues.items()):
            kept = deque(entry for entry in queue if not predicate(entry))
            removed.extend(entry for entry in queue if predicate(entry))
            if kept:
                self._queues[key] = kept
            else:
                del self._queues[key]
        self.size -= len(removed)
        self._ready.clear()
        self._heap.clear()
        self._ring.clear()
        for key in list(self._queues):
            self._mark_ready(key)
        removed.sort(key=lambda entry: entry[1])
        return removed


_NONE: Any = object()


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

    _tracks_release = True

    def __init__(
        self,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[Any]],
        options: EphemeralOptions | None = None,
    ) -> None:
        if not callable(key_selector):
            raise TypeError(f"key_selector must be callable, got {key_selector!r}")
        super().__init__(body, options)
        self._key_selector = key_selector
        self._keys = KeyedQueues(self.options.max_concurrency_per_key, fair=self.options.enable_fair_scheduling)

    def _pending(self) -> int:
        return self._keys.size

    def _push(self, entry: Entry) -> None:
        self._keys.push(entry)

    def _take(self) -> Entry | None:
        return self._keys.take()

    def _ready_count(self) -> int:
        return self._keys.ready_count

    def _take_all(self) -> list[Entry]:
        return self._keys.remove_where(lambda entry: True)

    def _release(self, group: Any) -> None:
        self._keys.release(group)

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` under its key, waiting while ``max_tracked_operations`` items wait."""
        key = self._key_selector(item)
        if self._pool is None or self._completed or not self._has_room(item):
            await self._wait_for_room(item)
        return self._accept(item, str(key), key)

    enqueue_with_id = enqueue

    def try_enqueue(self, item: T) -> bool:
        """Accept ``item`` if there is room now and, with fair scheduling, its key is under the threshold."""
        if self._pool is None:
            raise self._not_entered("coordinator", "c")
        key = self._key_selector(item)
        if self._completed or not self._has_room(item):
            return False
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
