"""Priority lanes: the highest lane with work goes first at every dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from ._clock import to_seconds
from ._coordinator import REFUSED, CoordinatorBase
from ._matcher import PatternSet
from ._options import EphemeralOptions
from ._queues import Lane, LaneQueue

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


class _LaneControl(CoordinatorBase[T, Any]):
    """What both priority coordinators share: lanes, depth limits, lane signal rules, per-lane counts."""

    def __init__(
        self,
        body: Callable[[T], Awaitable[Any]],
        options: PriorityWorkCoordinatorOptions | None,
        keyed: bool,
        lanes_within_key: bool = False,
    ) -> None:
        if options is None:
            options = PriorityWorkCoordinatorOptions()
        elif not isinstance(options, PriorityWorkCoordinatorOptions):
            raise TypeError(f"options must be PriorityWorkCoordinatorOptions, got {options!r}")
        lanes: Sequence[PriorityLane] = options.lanes  # type: ignore[assignment]
        super().__init__(
            body,
            options.ephemeral_options,
            lambda ephemeral: LaneQueue(
                lanes, ephemeral.max_concurrency_per_key if keyed else None, lanes_within_key=lanes_within_key
            ),
        )
        self.priority_options = options
        self._lanes: LaneQueue = self._queue  # type: ignore[assignment]
        names = list(self._lanes.by_name)
        self._default_lane = "normal" if "normal" in self._lanes.by_name else names[-1]

    @property
    def lanes(self) -> list[str]:
        """Lane names, highest priority first."""
        return [lane.name for lane in self._lanes.lanes]

    @property
    def pending_counts(self) -> dict[str, int]:
        """Items waiting per lane, highest priority first."""
        return {lane.name: lane.waiting for lane in self._lanes.lanes}

    def _lane(self, name: str | None) -> Lane:
        lane = self._lanes.by_name.get(self._default_lane if name is None else name)
        if lane is None:
            raise ValueError(f"unknown lane {name!r}; lanes are {self.lanes}")
        return lane

    async def _admit(self, item: T, lane_name: str | None, key: str | None, group_of: Callable[[Lane], Any]) -> int:
        lane = self._lane(lane_name)
        if self._completed:
            raise self._refused()
        if lane.full():
            return REFUSED
        if self._refusing or len(self._queue) >= self._capacity:
            await self._wait_for_room()
            if lane.full():
                return REFUSED
        return self._accept(item, key, group_of(lane))

    def _try_admit(self, item: T, lane_name: str | None, key: str | None, group_of: Callable[[Lane], Any]) -> bool:
        lane = self._lane(lane_name)
        if not self._can_wait_now() or lane.full():
            return False
        self._accept(item, key, group_of(lane))
        return True


class PriorityWorkCoordinator(_LaneControl[T]):
    """Runs items by lane: at every dispatch the highest lane with a startable item goes first.

    Each lane may cap its own concurrency (``PriorityLane("hot", max_concurrency=4)`` or ``"hot:4"``)
    and its backlog (``max_depth``: beyond it ``enqueue`` refuses the item with ``REFUSED``, which is
    falsy), and may skip or hold its items on signals while the other lanes carry on. All lanes share
    the global ``max_concurrency`` and the window of ``ephemeral_options``.

    Args:
        body: ``async def body(item)``.
        options: The lanes, highest priority first, and the coordinator's options.
    """

    def __init__(self, body: Callable[[T], Awaitable[Any]], options: PriorityWorkCoordinatorOptions | None = None):
        super().__init__(body, options, keyed=False)

    async def enqueue(self, item: T, lane: str | None = None) -> int:
        """Accept ``item`` into ``lane`` (default ``"normal"``, or the lowest lane without one).

        Returns:
            The operation id (> 0); ``REFUSED`` (-1, falsy) when the lane holds ``max_depth`` items already.

        Raises:
            ValueError: ``lane`` is not one of the coordinator's lanes.
            CoordinatorClosedError: The coordinator was completed or cancelled.
        """
        return await self._admit(item, lane, None, lambda chosen: chosen.index)

    enqueue_with_id = enqueue

    def try_enqueue(self, item: T, lane: str | None = None) -> bool:
        """Accept ``item`` into ``lane`` if it can wait right now."""
        return self._try_admit(item, lane, None, lambda chosen: chosen.index)


class PriorityKeyedWorkCoordinator(_LaneControl[T], Generic[T, K]):
    """Priority lanes over keyed work, up to ``max_concurrency_per_key`` of a key at once.

    By default per-key order holds across lanes: an item never overtakes an earlier item of its own
    key, whatever their lanes; among keys, the one whose next item is in the highest lane goes first
    (then arrival order). With ``lanes_within_key=True`` lanes order each key's own queue instead: keys
    take turns by the arrival of their work, as in ``EphemeralKeyedWorkCoordinator``, and a key's turn
    starts its oldest item of the highest lane that is open (not held by a defer signal, below its
    limit), so priority never moves one key ahead of another.

    Args:
        key_selector: Maps an item to its key.
        body: ``async def body(item)``.
        options: The lanes, highest priority first, and the coordinator's options.
        lanes_within_key: Order lanes within each key rather than across keys.
    """

    def __init__(
        self,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[Any]],
        options: PriorityWorkCoordinatorOptions | None = None,
        *,
        lanes_within_key: bool = False,
    ) -> None:
        if not callable(key_selector):
            raise TypeError(f"key_selector must be callable, got {key_selector!r}")
        if not isinstance(lanes_within_key, bool):
            raise TypeError(f"lanes_within_key must be a bool, got {lanes_within_key!r}")
        super().__init__(body, options, keyed=True, lanes_within_key=lanes_within_key)
        self._key_selector = key_selector

    def get_pending_counts_for_key(self, key: K) -> dict[str, int]:
        """Items of ``key`` waiting, per lane (highest priority first)."""
        return dict(zip(self.lanes, self._lanes.waiting_for(key), strict=True))

    def get_active_count_for_key(self, key: K) -> int:
        """Items of ``key`` running."""
        return self._lanes.running_for(key)

    async def enqueue(self, item: T, lane: str | None = None) -> int:
        """Accept ``item`` into ``lane`` under its key; ``REFUSED`` (falsy) when the lane is at ``max_depth``."""
        key = self._key_selector(item)
        return await self._admit(item, lane, str(key), lambda chosen: (chosen.index, key))

    enqueue_with_id = enqueue

    def try_enqueue(self, item: T, lane: str | None = None) -> bool:
        """Accept ``item`` into ``lane`` under its key if it can wait right now."""
        key = self._key_selector(item)
        return self._try_admit(item, lane, str(key), lambda chosen: (chosen.index, key))
