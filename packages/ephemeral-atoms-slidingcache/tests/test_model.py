"""SlidingCacheAtom against a plain model of sliding + absolute expiry and LRU eviction, over random operations."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from ephemeral.atoms.slidingcache import SlidingCacheAtom
from ephemeral.core.testing import ManualClock

SLIDING, ABSOLUTE, MAX_SIZE = 4, 7, 2


@dataclass
class Held:
    value: int
    created: float
    last: float


class Model:
    """What the cache should hold: expiry at min(last access + sliding, created + absolute), LRU order."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, Held] = OrderedDict()
        self.computes = 0

    def expired(self, held: Held, now: float) -> bool:
        return now >= min(held.last + SLIDING, held.created + ABSOLUTE)

    def try_get(self, key: str, now: float) -> tuple[bool, int | None]:
        held = self.entries.get(key)
        if held is None:
            return False, None
        if self.expired(held, now):
            del self.entries[key]
            return False, None
        held.last = now
        self.entries.move_to_end(key)
        return True, held.value

    def get(self, key: str, now: float) -> int:
        found, value = self.try_get(key, now)
        if found:
            assert value is not None
            return value
        self.computes += 1
        self.entries[key] = Held(self.computes, now, now)
        while len(self.entries) > MAX_SIZE or self.expired(next(iter(self.entries.values())), now):
            self.entries.popitem(last=False)
        return self.computes


operations = st.lists(
    st.tuples(st.sampled_from(["get", "try_get", "sleep", "invalidate"]), st.sampled_from("abc"), st.integers(1, 3)),
    min_size=10,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_matches_the_model(steps: list[tuple[str, str, int]]) -> None:
    """Every lookup answers as the model does, and the held, live and expired counts agree with it."""
    clock = ManualClock()
    model = Model()
    counter = 0

    async def compute(key: str) -> int:
        nonlocal counter
        counter += 1
        return counter

    cache: SlidingCacheAtom[str, int] = SlidingCacheAtom(
        compute, sliding_expiration=SLIDING, absolute_expiration=ABSOLUTE, max_size=MAX_SIZE, clock=clock
    )
    for action, key, seconds in steps:
        now = clock.value
        if action == "sleep":
            clock.value += seconds
        elif action == "try_get":
            assert cache.try_get(key) == model.try_get(key, now)
        elif action == "invalidate":
            cache.invalidate(key)
            model.entries.pop(key, None)
        else:
            # Neither a hit nor this compute ever suspends, so one send() runs the call to its end.
            with pytest.raises(StopIteration) as stop:
                cache.get_or_compute(key).send(None)
            assert stop.value.value == model.get(key, now)
        stats = cache.get_stats()
        live = sum(not model.expired(held, clock.value) for held in model.entries.values())
        assert (stats.total_entries, stats.valid_entries) == (len(model.entries), live)
        assert stats.computes == model.computes
