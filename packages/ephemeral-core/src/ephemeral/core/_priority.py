"""Priority lanes: the highest lane with work goes first at every dispatch."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from ._clock import to_seconds
from ._coordinator import _PROCEED, CoordinatorBase, Deferral, Entry
from ._keyed import KeyedQueues
from ._matcher import PatternSet
from ._options import EphemeralOptions

__all__ = ("PriorityKeyedWorkCoordinator", "PriorityLane", "PriorityWorkCoordinator", "PriorityWorkCoordinatorOptions")

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class PriorityLane:
    """One lane of a priority coordinator.

    Attributes:
        name: The lane's name; ``"hot:4"`` means lane ``hot`` with ``max_concurrency=4``.
        max_concurrency: The most bodies of this lane running at once (None: only the global limit).
        max_depth: The most items waiting in this lane; beyond it ``enqueue`` returns False.
        cancel_on_signals: While a matching signal is live, the lane's waiting items are skipped.
        defer_on_signals: While a matching signal is live, the lane is held back (other lanes go on).
        defer_check_interval: How often a held-back lane looks again.
        max_defer_attempts: How many looks a hold lasts before the lane goes ahead anyway.
    """

    name: str
    max_concurrency: int | None = None
    max_depth: int | None = None
    cancel_on_signals: Iterable[str] | str | None = None
    defer_on_signals: Iterable[str] | str | None = None
    defer_check_interval: float | timedelta = 0.1
    max_defer_attempts: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or self.name != self.name.strip():
            raise ValueError(f"lane name must be a non-empty string without surrounding spaces, got {self.name!r}")
        name, colon, limit = self.name.partition(":")
        if colon:
            if not limit.isdigit() or int(limit) < 1:
                raise ValueError(f"lane name {self.name!r}: the part after ':' must be a concurrency >= 1")
            if self.max_concurrency is not None and self.max_concurrency != int(limit):
                raise ValueError(f"lane {self.name!r} also sets max_concurrency={self.max_concurrency}")
            object.__setattr__(self, "name", name)
            object.__setattr__(self, "max_concurrency", int(limit))
        for attribute in ("max_concurrency", "max_depth"):
            value = getattr(self, attribute)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"lane {self.name!r}: {attribute} must be an int >= 1 or None, got {value!r}")
        to_seconds(self.defer_check_interval, "defer_check_interval")
        for attribute in ("cancel_on_signals", "defer_on_signals"):
            value = getattr(self, attribute)
            if value is not None:
                object.__setattr__(self, attribute, PatternSet(value).patterns)


@dataclass(frozen=True, kw_only=True)
class PriorityWorkCoordinatorOptions:
    """Lanes, highest priority first, and the options of the coordinator underneath.

    Lanes may be given as ``PriorityLane`` objects or as names (``"hot:4"``). Without lanes there
    is one lane, ``"normal"``.
    """

    lanes: Sequence[PriorityLane | str] = (PriorityLane("normal"),)
    ephemeral_options: EphemeralOptions = field(default_factory=EphemeralOptions)

    def __post_init__(self) -> None:
        if isinstance(self.lanes, (str, PriorityLane)):
            raise TypeError(f"lanes must be a sequence of lanes, got {self.lanes!r}; write lanes=[{self.lanes!r}]")
        lanes = tuple(lane if isinstance(lane, PriorityLane) else PriorityLane(lane) for lane in self.lanes)
        if not lanes:
            raise ValueError("lanes must hold at least one lane")
        names = [lane.name for lane in lanes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"lanes must have distinct names; repeated: {duplicates}")
        if not isinstance(self.ephemeral_options, EphemeralOptions):
            raise TypeError(f"ephemeral_options must be EphemeralOptions, got {self.ephemeral_options!r}")
        object.__setattr__(self, "lanes", lanes)


class _Lane:
    """A lane's live state."""

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


class _LaneControl(CoordinatorBase[T, Any]):
    """What both priority coordinators share: lanes, depth limits, lane signal rules, per-lane counts."""

    _tracks_release = True

    def __init__(self, body: Callable[[T], Awaitable[Any]], options: PriorityWorkCoordinatorOptions | None) -> None:
        if options is None:
            options = PriorityWorkCoordinatorOptions()
        elif not isinstance(options, PriorityWorkCoordinatorOptions):
            raise TypeError(f"options must be PriorityWorkCoordinatorOptions, got {options!r}")
        super().__init__(body, options.ephemeral_options)
        self.priority_options = options
        self._lanes = [_Lane(i, lane) for i, lane in enumerate(options.lanes)]  # type: ignore[arg-type]
        self._lane_index = {lane.name: lane for lane in self._lanes}
        self._lane_rules = any(lane.cancel_on or lane.deferral for lane in self._lanes)
        self._gated = self._gated or self._lane_rules
        names = list(self._lane_index)
        self._default_lane = "normal" if "normal" in self._lane_index else names[-1]

    @property
    def lanes(self) -> list[str]:
        """Lane names, highest priority first."""
        return [lane.name for lane in self._lanes]

    @property
    def pending_counts(self) -> dict[str, int]:
        """Items waiting per lane, highest priority first."""
        return {lane.name: lane.waiting for lane in self._lanes}

    def _lane(self, name: str | None) -> _Lane:
        lane = self._lane_index.get(self._default_lane if name is None else name)
        if lane is None:
            raise ValueError(f"unknown lane {name!r}; lanes are {self.lanes}")
        return lane

    def _release(self, group: Any) -> None:
        self._lane_of_group(group).running -= 1

    def _lane_of_group(self, group: Any) -> _Lane:
        raise NotImplementedError

    async def _admit(
        self, item: T, lane_name: str | None, key: str | None, group_of: Callable[[_Lane], Any]
    ) -> int | None:
        lane = self._lane(lane_name)
        if self._completed:
            raise self._refused()
        if lane.max_depth is not None and lane.waiting >= lane.max_depth:
            return None
        if self._pool is None or not self._has_room(item):
            await self._wait_for_room(item)
            if lane.max_depth is not None and lane.waiting >= lane.max_depth:
                return None
        lane.waiting += 1
        return self._accept(item, key, group_of(lane))

    def _try_admit(self, item: T, lane_name: str | None, key: str | None, group_of: Callable[[_Lane], Any]) -> bool:
        lane = self._lane(lane_name)
        if self._pool is None:
            raise self._not_entered("coordinator", "c")
        if self._completed or not self._has_room(item):
            return False
        if lane.max_depth is not None and lane.waiting >= lane.max_depth:
            return False
        lane.waiting += 1
        self._accept(item, key, group_of(lane))
        return True

    def _refresh_holds(self) -> None:
        """Look again whether each lane's defer signal still holds it (signals come and go, budgets run out)."""
        if not self._lane_rules:
            return
        sink, now = self._sink, self._clock()
        for lane in self._lanes:
            lane.held = lane.waiting > 0 and lane.deferral is not None and lane.deferral.active(sink, now)

    def _taken(self, entry: Entry | None) -> Entry | None:
        if entry is not None:
            lane = self._lane_of_group(entry[3])
            lane.waiting -= 1
            lane.running += 1
        return entry

    def _take_all(self) -> list[Entry]:
        for lane in self._lanes:
            lane.waiting = 0
        return self._remove_waiting(lambda entry: True)

    def _remove_waiting(self, predicate: Callable[[Entry], bool]) -> list[Entry]:
        raise NotImplementedError

    def _in_lane(self, lane: _Lane) -> Callable[[Entry], bool]:
        return lambda entry: self._lane_of_group(entry[3]) is lane

    async def _check_gates(self) -> int:
        verdict = await super()._check_gates()
        if verdict != _PROCEED or not self._lane_rules:
            return verdict
        sink, now, hold = self._sink, self._clock(), None
        for lane in self._lanes:
            if not lane.waiting:
                lane.held = False
                continue
            if lane.cancel_on and sink.detect(lane.cancel_on):
                doomed = self._remove_waiting(self._in_lane(lane))
                lane.waiting = 0
                for entry in doomed:
                    self._skip(entry, taken=False)
                continue
            lane.held = lane.deferral is not None and lane.deferral.active(sink, now)
            if lane.held and lane.deferral is not None:
                hold = lane.deferral.interval if hold is None else min(hold, lane.deferral.interval)
        if hold is not None and not any(lane.waiting and lane.open() for lane in self._lanes):
            return await self._hold(hold)
        return _PROCEED


class PriorityWorkCoordinator(_LaneControl[T]):
    """Runs items by lane: at every dispatch the highest lane with a startable item goes first.

    Each lane may cap its own concurrency (``PriorityLane("hot", max_concurrency=4)`` or ``"hot:4"``)
    and its backlog (``max_depth``: ``enqueue`` returns False when full), and may skip or hold its
    items on signals while the other lanes carry on. All lanes share the global ``max_concurrency``
    and the window of ``ephemeral_options``.

    Args:
        body: ``async def body(item)``.
        options: The lanes, highest priority first, and the coordinator's options.
    """

    def __init__(self, body: Callable[[T], Awaitable[Any]], options: PriorityWorkCoordinatorOptions | None = None):
        super().__init__(body, options)
        self._queues: list[deque[Entry]] = [deque() for _ in self._lanes]

    def _lane_of_group(self, group: Any) -> _Lane:
        lane: _Lane = self._lanes[group]
        return lane

    def _pending(self) -> int:
        return sum(len(queue) for queue in self._queues)

    def _push(self, entry: Entry) -> None:
        self._queues[entry[3]].append(entry)

    def _take(self) -> Entry | None:
        self._refresh_holds()
        for lane, queue in zip(self._lanes, self._queues, strict=True):
            if queue and lane.open():
                return self._taken(queue.popleft())
        return None

    def _ready_count(self) -> int:
        self._refresh_holds()
        return sum(lane.room(len(queue)) for lane, queue in zip(self._lanes, self._queues, strict=True))

    def _remove_waiting(self, predicate: Callable[[Entry], bool]) -> list[Entry]:
        removed: list[Entry] = []
        for queue in self._queues:
            kept = [entry for entry in queue if not predicate(entry)]
            removed.extend(entry for entry in queue if predicate(entry))
            queue.clear()
            queue.extend(kept)
        return removed

    async def enqueue(self, item: T, lane: str | None = None) -> bool:
        """Accept ``item`` into ``lane`` (default ``"normal"``, or the lowest lane without one).

        Returns:
            False when the lane holds ``max_depth`` items already; True otherwise.

        Raises:
            ValueError: ``lane`` is not one of the coordinator's lanes.
            CoordinatorClosedError: The coordinator was completed or cancelled.
        """
        return await self.enqueue_with_id(item, lane) is not None

    async def enqueue_with_id(self, item: T, lane: str | None = None) -> int | None:  # type: ignore[override]
        """Like ``enqueue``, returning the operation id, or None when the lane is full."""
        return await self._admit(item, lane, None, lambda chosen: chosen.index)

    def try_enqueue(self, item: T, lane: str | None = None) -> bool:
        """Accept ``item`` into ``lane`` if it can wait right now."""
        return self._try_admit(item, lane, None, lambda chosen: chosen.index)


class PriorityKeyedWorkCoordinator(_LaneControl[T], Generic[T, K]):
    """Priority lanes over keyed work: per-key order holds across lanes.

    An item never overtakes an earlier item of its own key, whatever their lanes; among keys, the
    one whose next item is in the highest lane goes first (then arrival order).
    """

    def __init__(
        self,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[Any]],
        options: PriorityWorkCoordinatorOptions | None = None,
    ) -> None:
        if not callable(key_selector):
            raise TypeError(f"key_selector must be callable, got {key_selector!r}")
        super().__init__(body, options)
        self._key_selector = key_selector
        self._keys = KeyedQueues(
            self.options.max_concurrency_per_key, rank=lambda entry: entry[3][0], key_of=lambda entry: entry[3][1]
        )

    def _lane_of_group(self, group: Any) -> _Lane:
        lane: _Lane = self._lanes[group[0]]
        return lane

    def _pending(self) -> int:
        return self._keys.size

    def _push(self, entry: Entry) -> None:
        self._keys.push(entry)

    def _take(self) -> Entry | None:
        self._refresh_holds()
        return self._taken(self._keys.take(lambda entry: self._lanes[entry[3][0]].open()))

    def _ready_count(self) -> int:
        return self._keys.ready_count

    def _release(self, group: Any) -> None:
        super()._release(group)
        self._keys.release(group[1])

    def _remove_waiting(self, predicate: Callable[[Entry], bool]) -> list[Entry]:
        return self._keys.remove_where(predicate)

    async def enqueue(self, item: T, lane: str | None = None) -> bool:
        """Accept ``item`` into ``lane`` under its key; False when the lane is at ``max_depth``."""
        return await self.enqueue_with_id(item, lane) is not None

    async def enqueue_with_id(self, item: T, lane: str | None = None) -> int | None:  # type: ignore[override]
        """Like ``enqueue``, returning the operation id, or None when the lane is full."""
        key = self._key_selector(item)
        return await self._admit(item, lane, str(key), lambda chosen: (chosen.index, key))

    def try_enqueue(self, item: T, lane: str | None = None) -> bool:
        """Accept ``item`` into ``lane`` under its key if it can wait right now."""
        key = self._key_selector(item)
        return self._try_admit(item, lane, str(key), lambda chosen: (chosen.index, key))
