"""Work queues: how accepted items wait, and which one may start next.

A coordinator is a choice of queue plus its intake methods. Every queue follows ``WorkQueue``:
``FifoQueue`` (arrival order), ``KeyedQueues`` (order per key, a limit per key, no head-of-line
blocking, optionally round-robin between keys) and ``LaneQueue`` (priority lanes, each with its own
concurrency, depth and signal rules; optionally keyed across lanes).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ._gates import Deferral
from ._matcher import PatternSet

if TYPE_CHECKING:
    from ._priority import PriorityLane
    from ._sink import SignalSink

__all__ = ("Entry", "FifoQueue", "KeyLanes", "KeyedQueues", "Lane", "LaneQueue", "Room", "WorkQueue")

#: An accepted item waiting to run: (item, operation id, key shown on the operation, group). The group is
#: the queue's own bookkeeping: the raw key of a keyed queue, the lane (and key) of a lane queue.
Entry = tuple[Any, int, "str | None", Any]


class WorkQueue(Protocol):
    """How accepted items wait. ``len(queue)`` is how many wait."""

    #: Whether ``release(group)`` must be called when a body of the queue finishes.
    tracks_release: bool
    #: Whether ``gate`` has rules (lanes skipping or holding on signals).
    gated: bool

    def __len__(self) -> int: ...

    def push(self, entry: Entry) -> None:
        """Store an accepted item."""

    def take(self) -> Entry | None:
        """The next item allowed to start now, removed; None when there is none."""

    def ready(self) -> int:
        """How many waiting items could start now."""

    def take_all(self) -> list[Entry]:
        """Remove and return every waiting item."""

    def release(self, group: Any) -> None:
        """A body of ``group`` finished (called only when ``tracks_release`` is set)."""

    def gate(self, sink: SignalSink, now: float) -> tuple[list[Entry], float | None]:
        """Apply the queue's own signal rules.

        Returns:
            The items they removed (to count as skipped), and how long to hold when all waiting work is
            held back (None: no hold).
        """


class Room:
    """The bound on waiting items: producers wait while ``capacity`` items wait; taking one makes room.

    Args:
        queue: The queue whose length is bounded.
        capacity: The most items waiting.
    """

    __slots__ = ("capacity", "queue", "space")

    def __init__(self, queue: WorkQueue, capacity: int) -> None:
        self.queue = queue
        self.capacity = capacity
        #: Set while a producer waits for room.
        self.space: anyio.Event | None = None

    def free(self) -> bool:
        """Whether one more item may wait now."""
        return len(self.queue) < self.capacity

    async def wait(self) -> None:
        """Wait until woken (an item was taken or dropped, or intake stopped)."""
        if self.space is None:
            self.space = anyio.Event()
        await self.space.wait()

    def wake(self) -> None:
        """Wake the producers waiting for room (they look again)."""
        space = self.space
        if space is not None:
            self.space = None
            space.set()


class FifoQueue(deque[Entry]):
    """Arrival order: the oldest waiting item starts next."""

    __slots__ = ()
    tracks_release = False
    gated = False

    push = deque.append

    def take(self) -> Entry | None:
        """The oldest waiting item, removed; None when empty."""
        return self.popleft() if self else None

    def ready(self) -> int:
        """Every waiting item could start."""
        return len(self)

    def take_all(self) -> list[Entry]:
        """Remove and return every waiting item, oldest first."""
        entries = list(self)
        self.clear()
        return entries

    def release(self, group: Any) -> None:
        """Nothing to free."""

    def gate(self, sink: SignalSink, now: float) -> tuple[list[Entry], float | None]:
        """No rules of its own."""
        return [], None


class KeyedQueues:
    """One FIFO per key, and the keys ready to start an item (queue not empty, key below its limit).

    Ready keys are served either in arrival order of their head items (a heap on ``rank``), or, with
    ``fair=True``, round-robin so that a key with a long backlog cannot starve the others. A key's
    state is dropped as soon as it has nothing waiting and nothing running, so memory follows the
    number of active keys, not the number of keys ever seen.
    """

    __slots__ = (
        "_fair",
        "_heap",
        "_key_of",
        "_new_queue",
        "_queues",
        "_rank",
        "_ready",
        "_ring",
        "_running",
        "per_key",
        "size",
    )

    #: A body finished: ``release(group)`` frees its key's slot.
    tracks_release = True
    gated = False

    def __init__(
        self,
        per_key: int,
        *,
        fair: bool = False,
        rank: Callable[[Any], Any] | None = None,
        key_of: Callable[[Entry], Any] | None = None,
        new_queue: Callable[[], Any] = deque,
    ) -> None:
        self.per_key = per_key
        self._fair = fair
        #: A key's place among the ready keys, from its queue (default: its head item's arrival).
        self._rank: Callable[[Any], Any] = rank if rank is not None else (lambda queue: queue[0][1])
        self._key_of: Callable[[Entry], Any] = key_of if key_of is not None else (lambda entry: entry[3])
        #: A key's own queue: a deque, or anything with ``append``, ``popleft``, ``[0]``, ``len`` and iteration.
        self._new_queue = new_queue
        self._queues: dict[Any, deque[Entry]] = {}
        self._running: dict[Any, int] = {}
        self._ready: set[Any] = set()
        self._heap: list[tuple[Any, Any]] = []
        self._ring: deque[Any] = deque()
        self.size = 0

    def pending_for(self, key: Any) -> int:
        """Items of ``key`` waiting."""
        queue = self._queues.get(key)
        return 0 if queue is None else len(queue)

    def queue_of(self, key: Any) -> Any:
        """The queue of ``key`` (None when nothing of it waits)."""
        return self._queues.get(key)

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

    def __len__(self) -> int:
        return self.size

    def ready(self) -> int:
        """How many waiting items could start now (one per ready key)."""
        return len(self._ready)

    def take_all(self) -> list[Entry]:
        """Remove and return every waiting item, oldest first."""
        return self.remove_where(lambda entry: True)

    def gate(self, sink: SignalSink, now: float) -> tuple[list[Entry], float | None]:
        """No rules of its own."""
        return [], None

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
            heapq.heappush(self._heap, (self._rank(queue), key))

    def push(self, entry: Entry) -> None:
        """Queue an accepted item under its key."""
        key = self._key_of(entry)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = self._new_queue()
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
                key = heapq.heappop(self._heap)[1]
            if allowed is not None and not allowed(self._queues[key][0]):
                skipped.append(key)
                continue
            found = key
        # Keys not allowed now stay ready, in their place.
        if self._fair:
            self._ring.extendleft(reversed(skipped))
        else:
            for key in skipped:
                heapq.heappush(self._heap, (self._rank(self._queues[key]), key))
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
            kept = self._new_queue()
            for entry in queue:
                (removed if predicate(entry) else kept).append(entry)
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


class Lane:
    """A lane's live state: its limits, its signal rules, and how many of its items wait and run."""

    __slots__ = ("cancel_on", "deferral", "held", "index", "limit", "max_depth", "name", "running", "waiting")

    def __init__(self, index: int, lane: PriorityLane) -> None:
        self.index = index
        self.name = lane.name
        self.limit = lane.max_concurrency  # None: only the coordinator's (possibly changing) limit
        self.max_depth = lane.max_depth
        self.cancel_on = PatternSet(lane.cancel_on_signals)
        self.deferral = Deferral.of(lane.defer_on_signals, None, lane.defer_check_interval, lane.max_defer_attempts)
        self.held = False
        self.running = 0
        self.waiting = 0

    def open(self) -> bool:
        """Whether an item of this lane may start now."""
        return not self.held and (self.limit is None or self.running < self.limit)

    def room(self, waiting: int) -> int:
        """How many of ``waiting`` items could start now."""
        if self.held:
            return 0
        return waiting if self.limit is None else max(0, min(waiting, self.limit - self.running))

    def full(self) -> bool:
        """Whether the lane holds ``max_depth`` waiting items already."""
        return self.max_depth is not None and self.waiting >= self.max_depth


class KeyLanes:
    """One key's waiting items in lanes (``LaneQueue(lanes_within_key=True)``).

    The item the key starts next is the head of its highest open lane (a lane held by a defer signal,
    or at its limit, lets the next lane's items go). The key's place among the keys is the arrival of
    its oldest item not yet served: each arrival reserves a turn of the key, and the lanes only choose
    which of the key's items fills the turn, so a priority item jumps its own key's queue and only that.
    """

    __slots__ = ("arrivals", "fifos", "lanes")

    def __init__(self, lanes: Sequence[Lane]) -> None:
        self.lanes = lanes
        self.fifos: list[deque[Entry]] = [deque() for _ in lanes]
        self.arrivals: deque[int] = deque()

    def __len__(self) -> int:
        return len(self.arrivals)

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted((entry for fifo in self.fifos for entry in fifo), key=lambda entry: entry[1]))

    def append(self, entry: Entry) -> None:
        """Queue an item in its lane (the entry's group is ``(lane index, key)``)."""
        self.fifos[entry[3][0]].append(entry)
        self.arrivals.append(entry[1])

    def _next(self) -> deque[Entry]:
        """The highest open lane with items, else the highest lane with items (the key is not ready then)."""
        first: deque[Entry] | None = None
        for lane, fifo in zip(self.lanes, self.fifos, strict=True):
            if fifo:
                if lane.open():
                    return fifo
                if first is None:
                    first = fifo
        if first is None:
            raise IndexError("no item waits")
        return first

    def __getitem__(self, index: int) -> Entry:
        """The item the key would start now (only index 0)."""
        if index != 0:
            raise IndexError(index)
        return self._next()[0]

    def popleft(self) -> Entry:
        """Remove the item the key starts now; its turn is the oldest one reserved."""
        self.arrivals.popleft()
        return self._next().popleft()

    def counts(self) -> list[int]:
        """Items waiting per lane."""
        return [len(fifo) for fifo in self.fifos]


class LaneQueue:
    """Priority lanes: at every dispatch the highest lane with a startable item goes first.

    Without ``per_key`` each lane is a FIFO and an entry's group is its lane index. With ``per_key``
    items are keyed (group ``(lane index, key)``), at most ``per_key`` of a key running at once, in
    one of two orders:

    - across lanes (default): an item never overtakes an earlier item of its own key, and among keys
      the one whose next item is in the highest lane goes first;
    - ``lanes_within_key=True``: keys take turns by the arrival of their work, as in a keyed queue, and
      a key's turn starts its item of the highest open lane (``KeyLanes``): priority reorders each
      key's own queue and nothing else.
    """

    tracks_release = True

    def __init__(
        self, lanes: Sequence[PriorityLane], per_key: int | None = None, *, lanes_within_key: bool = False
    ) -> None:
        if lanes_within_key and per_key is None:
            raise ValueError("lanes_within_key needs keyed lanes (per_key)")
        self.lanes = [Lane(index, lane) for index, lane in enumerate(lanes)]
        self.by_name = {lane.name: lane for lane in self.lanes}
        self.gated = any(lane.cancel_on or lane.deferral for lane in self.lanes)
        self.keyed = per_key is not None
        self.lanes_within_key = lanes_within_key
        self._fifos: list[deque[Entry]] = [deque() for _ in self.lanes]
        key_of: Callable[[Entry], Any] = lambda entry: entry[3][1]  # noqa: E731
        if lanes_within_key:
            self._keys = KeyedQueues(
                per_key or 1,
                rank=lambda queue: queue.arrivals[0],
                key_of=key_of,
                new_queue=lambda: KeyLanes(self.lanes),
            )
        else:
            self._keys = KeyedQueues(per_key or 1, rank=lambda queue: (queue[0][3][0], queue[0][1]), key_of=key_of)
        self._sink: SignalSink | None = None
        self._clock: Callable[[], float] | None = None

    def bind(self, sink: SignalSink, clock: Callable[[], float]) -> None:
        """Where the lanes' defer signals are looked up, and by which clock."""
        self._sink = sink
        self._clock = clock

    def _lane_of(self, group: Any) -> Lane:
        lane: Lane = self.lanes[group[0] if self.keyed else group]
        return lane

    def __len__(self) -> int:
        return self._keys.size if self.keyed else sum(len(fifo) for fifo in self._fifos)

    def push(self, entry: Entry) -> None:
        """Queue an accepted item in its lane."""
        self._lane_of(entry[3]).waiting += 1
        if self.keyed:
            self._keys.push(entry)
        else:
            self._fifos[entry[3]].append(entry)

    def _refresh_holds(self) -> None:
        """Look again whether each lane's defer signal still holds it (signals come and go, budgets run out)."""
        if not self.gated or self._sink is None or self._clock is None:
            return
        sink, now = self._sink, self._clock()
        for lane in self.lanes:
            lane.held = lane.waiting > 0 and lane.deferral is not None and lane.deferral.active(sink, now)

    def take(self) -> Entry | None:
        """The next startable item of the highest lane, removed and counted as running in its lane."""
        self._refresh_holds()
        entry: Entry | None = None
        if self.keyed:
            entry = self._keys.take(lambda waiting: self.lanes[waiting[3][0]].open())
        else:
            for lane, fifo in zip(self.lanes, self._fifos, strict=True):
                if fifo and lane.open():
                    entry = fifo.popleft()
                    break
        if entry is not None:
            lane = self._lane_of(entry[3])
            lane.waiting -= 1
            lane.running += 1
        return entry

    def running_for(self, key: Any) -> int:
        """Items of ``key`` running (keyed lanes only)."""
        return self._keys.running_for(key)

    def waiting_for(self, key: Any) -> list[int]:
        """Items of ``key`` waiting, per lane (keyed lanes only)."""
        queue = self._keys.queue_of(key)
        if queue is None:
            return [0] * len(self.lanes)
        if self.lanes_within_key:
            counts: list[int] = queue.counts()
            return counts
        counts = [0] * len(self.lanes)
        for entry in queue:
            counts[entry[3][0]] += 1
        return counts

    def ready(self) -> int:
        """How many waiting items could start now."""
        if self.keyed:
            return self._keys.ready_count
        self._refresh_holds()
        return sum(lane.room(len(fifo)) for lane, fifo in zip(self.lanes, self._fifos, strict=True))

    def release(self, group: Any) -> None:
        """A body finished: free its lane's (and key's) slot."""
        self._lane_of(group).running -= 1
        if self.keyed:
            self._keys.release(group[1])

    def _remove_where(self, predicate: Callable[[Entry], bool]) -> list[Entry]:
        if self.keyed:
            removed = self._keys.remove_where(predicate)
        else:
            removed = []
            for fifo in self._fifos:
                kept = [entry for entry in fifo if not predicate(entry)]
                removed.extend(entry for entry in fifo if predicate(entry))
                fifo.clear()
                fifo.extend(kept)
        for entry in removed:
            self._lane_of(entry[3]).waiting -= 1
        return removed

    def take_all(self) -> list[Entry]:
        """Remove and return every waiting item."""
        return self._remove_where(lambda entry: True)

    def _in_lane(self, lane: Lane) -> Callable[[Entry], bool]:
        return lambda entry: self._lane_of(entry[3]) is lane

    def gate(self, sink: SignalSink, now: float) -> tuple[list[Entry], float | None]:
        """Skip the waiting items of lanes with a live cancel signal; hold when every waiting lane is deferred."""
        skipped: list[Entry] = []
        hold: float | None = None
        for lane in self.lanes:
            if not lane.waiting:
                lane.held = False
                continue
            if lane.cancel_on and sink.detect(lane.cancel_on):
                skipped.extend(self._remove_where(self._in_lane(lane)))
                continue
            lane.held = lane.deferral is not None and lane.deferral.active(sink, now)
            if lane.held and lane.deferral is not None:
                hold = lane.deferral.interval if hold is None else min(hold, lane.deferral.interval)
        if hold is not None and any(lane.waiting and lane.open() for lane in self.lanes):
            hold = None
        return skipped, hold
