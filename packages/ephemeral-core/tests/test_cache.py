"""EphemeralLruCache: sliding expiry, hot keys, LRU eviction, single-flight loads, stats, signals and options."""

from __future__ import annotations

import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import pytest

from ephemeral.core import CacheStats, EphemeralLruCache, EphemeralLruCacheOptions, SignalSink
from ephemeral.core.testing import ManualClock


class Loader:
    """A factory that counts its calls, returns ``values`` in turn and can take (virtual) time."""

    def __init__(self, *values: Any, delay: float = 0.0, error: Exception | None = None) -> None:
        self.values = list(values) or [None]
        self.delay = delay
        self.error = error
        self.calls = 0

    async def __call__(self, key: Any) -> Any:
        self.calls += 1
        if self.delay:
            await anyio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.values[min(self.calls, len(self.values)) - 1]


def const(value: Any) -> Callable[[Any], Awaitable[Any]]:
    async def factory(key: Any) -> Any:
        return value

    return factory


def quiet(**overrides: Any) -> EphemeralLruCacheOptions:
    """Options with signals sampled away (1 in 1000), as the seed's tests use."""
    return EphemeralLruCacheOptions(**{"sample_rate": 1000, **overrides})


def names(cache: EphemeralLruCache[Any, Any], pattern: str | None = None) -> list[tuple[str, str | None]]:
    return [(event.signal, event.key) for event in cache.get_signals(pattern)]


# ------------------------------------------------------------------------------------------------ options


def test_options_defaults() -> None:
    """The defaults are the seed's: 5 min TTL, 30 min for hot keys, hot after 3 accesses, 10,000 entries."""
    options = EphemeralLruCacheOptions()
    assert options.default_ttl == 300.0
    assert options.hot_key_extension == 1800.0
    assert options.hot_access_threshold == 3
    assert options.max_size == 10_000
    assert options.sample_rate == 1
    assert options.absolute_expiration is None
    assert options.signals is None and options.clock is None


def test_options_accept_timedelta() -> None:
    """Durations may be given as timedeltas and act as the same number of seconds."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        EphemeralLruCacheOptions(default_ttl=timedelta(seconds=10), clock=clock)
    )
    cache.set("a", 1)
    clock.advance(9.9)
    assert "a" in cache
    clock.advance(0.1)
    assert "a" not in cache


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("default_ttl", 0, ValueError),
        ("default_ttl", -1.0, ValueError),
        ("default_ttl", "5", TypeError),
        ("hot_key_extension", 0.0, ValueError),
        ("hot_key_extension", timedelta(seconds=-1), ValueError),
        ("absolute_expiration", 0, ValueError),
        ("absolute_expiration", timedelta(seconds=-1), ValueError),
        ("absolute_expiration", "1h", TypeError),
        ("hot_access_threshold", 0, ValueError),
        ("hot_access_threshold", 2.5, TypeError),
        ("hot_access_threshold", True, TypeError),
        ("max_size", 0, ValueError),
        ("max_size", "10", TypeError),
        ("sample_rate", 0, ValueError),
        ("sample_rate", None, TypeError),
        ("signals", "sink", TypeError),
        ("clock", 5.0, TypeError),
    ],
)
def test_options_reject_bad_values(field: str, value: Any, error: type[Exception]) -> None:
    """A bad option raises at construction, naming the field."""
    with pytest.raises(error, match=field):
        EphemeralLruCacheOptions(**{field: value})


def test_options_are_frozen() -> None:
    """Options cannot be changed after construction."""
    options = EphemeralLruCacheOptions()
    with pytest.raises(AttributeError):
        options.max_size = 5  # type: ignore[misc]


def test_cache_rejects_options_of_another_type() -> None:
    """Passing something other than EphemeralLruCacheOptions raises TypeError."""
    with pytest.raises(TypeError, match="options"):
        EphemeralLruCache({"max_size": 5})  # type: ignore[arg-type]


def test_bad_ttl_argument_raises_at_the_call() -> None:
    """A bad per-entry ttl raises at set(), naming the argument."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache()
    with pytest.raises(ValueError, match="ttl"):
        cache.set("a", 1, ttl=0)


async def test_bad_ttl_argument_raises_even_on_a_hit() -> None:
    """get_or_add checks its ttl before looking the key up, so bad input never passes silently."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache()
    cache.set("a", 1)
    with pytest.raises(ValueError, match="ttl"):
        await cache.get_or_add("a", const(2), ttl=-1)


# ------------------------------------------------------------------------------------------ reads and writes


def test_try_get_returns_found_and_value() -> None:
    """try_get gives (True, value) for a stored key and (False, None) for an absent one."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache()
    cache.set("a", 1)
    assert cache.try_get("a") == (True, 1)
    assert cache.try_get("b") == (False, None)


def test_a_stored_none_is_found() -> None:
    """None is a value like any other: try_get tells it from a miss."""
    cache: EphemeralLruCache[str, None] = EphemeralLruCache()
    cache.set("a", None)
    assert cache.try_get("a") == (True, None)


async def test_get_or_add_loads_once_then_hits() -> None:
    """A miss awaits the factory with the key and stores its value; later calls hit without it."""
    cache: EphemeralLruCache[str, str] = EphemeralLruCache()
    seen: list[str] = []

    async def factory(key: str) -> str:
        seen.append(key)
        return key.upper()

    assert await cache.get_or_add("a", factory) == "A"
    assert await cache.get_or_add("a", factory) == "A"
    assert seen == ["a"]
    assert cache.try_get("a") == (True, "A")


def test_set_replaces_with_a_fresh_entry() -> None:
    """set() over an existing key stores the new value with a fresh TTL and access count."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=10, hot_access_threshold=2, clock=clock))
    cache.set("a", 1)
    cache.try_get("a")  # second access: hot
    assert cache.get_stats().hot_entries == 1
    cache.set("a", 2)
    assert cache.get_stats().hot_entries == 0
    clock.advance(10)
    assert cache.try_get("a") == (False, None)


def test_contains_and_len() -> None:
    """`in` tells live keys without sliding them; len() counts held entries, expired ones included."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=10, clock=clock))
    cache.set("a", 1)
    cache.set("b", 2, ttl=100)
    assert "a" in cache and "b" in cache and "c" not in cache
    assert len(cache) == 2
    clock.advance(6)
    assert "a" in cache  # does not slide the expiry ...
    clock.advance(4)
    assert len(cache) == 2  # ... so "a" has expired but is still held
    assert cache.get_stats().hits == 0
    assert "a" not in cache  # met expired: dropped
    assert len(cache) == 1


def test_invalidate_removes_a_live_key() -> None:
    """invalidate() removes a key and says whether a live value was there; it emits cache.invalidate."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(default_ttl=10, clock=clock))
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.invalidate("a") is True
    assert cache.try_get("a") == (False, None)
    assert cache.invalidate("a") is False
    clock.advance(10)
    assert cache.invalidate("b") is False  # expired: dropped, but there was no live value
    assert len(cache) == 0
    assert names(cache, "cache.invalidate") == [("cache.invalidate", "a")]


def test_clear_empties_the_cache_and_keeps_counters() -> None:
    """clear() drops every entry; the hit and miss counters carry on."""
    cache: EphemeralLruCache[int, int] = EphemeralLruCache()
    for i in range(5):
        cache.set(i, i)
    cache.try_get(1)
    cache.clear()
    assert len(cache) == 0 and cache.try_get(1) == (False, None)
    stats = cache.get_stats()
    assert (stats.size, stats.hits, stats.misses) == (0, 1, 1)


def test_properties() -> None:
    """max_size, options and signals expose the configuration."""
    sink = SignalSink()
    options = EphemeralLruCacheOptions(max_size=7, signals=sink)
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(options)
    assert cache.max_size == 7 and cache.options is options and cache.signals is sink


# ------------------------------------------------------------------------------------------- expiry in time


async def test_seed_sliding_refresh_prevails_before_hot() -> None:
    """Seed test: each hit before the key is hot slides its 80 ms TTL, so the first value lives on."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        quiet(default_ttl=0.080, hot_key_extension=0.500, hot_access_threshold=3)
    )
    calls = 0

    def factory(value: int) -> Callable[[str], Awaitable[int]]:
        async def load(key: str) -> int:
            nonlocal calls
            calls += 1
            return value

        return load

    assert await cache.get_or_add("k", factory(1)) == 1
    await anyio.sleep(0.060)
    assert await cache.get_or_add("k", factory(2)) == 1
    await anyio.sleep(0.060)  # past the first 80 ms, but refreshed at 60 ms
    assert await cache.get_or_add("k", factory(3)) == 1
    assert calls == 1


async def test_seed_hot_keys_get_extended_ttl() -> None:
    """Seed test: with threshold 2 the first hit makes a key hot, so it outlives its 50 ms TTL."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        quiet(default_ttl=0.050, hot_key_extension=0.400, hot_access_threshold=2)
    )
    loader = Loader(10, 20, 30)
    assert await cache.get_or_add("hot", loader) == 10
    assert await cache.get_or_add("hot", loader) == 10  # two accesses: hot, expires 400 ms from now
    await anyio.sleep(0.200)
    assert await cache.get_or_add("hot", loader) == 10
    assert loader.calls == 1


async def test_expired_value_is_never_returned() -> None:
    """Once its TTL has passed without a hit, neither get_or_add nor try_get returns the old value."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=60))
    loader = Loader(1, 2, 3)
    assert await cache.get_or_add("k", loader) == 1
    await anyio.sleep(60)
    assert cache.try_get("k") == (False, None)
    assert await cache.get_or_add("k", loader) == 2
    await anyio.sleep(60)
    assert await cache.get_or_add("k", loader) == 3
    assert loader.calls == 3


async def test_every_hit_slides_the_ttl() -> None:
    """A key hit every 50 s with a 60 s TTL lives for hours; left alone it goes 60 s after the last hit."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=60, hot_access_threshold=1000))
    cache.set("k", 1)
    for _ in range(200):
        await anyio.sleep(50)
        assert cache.try_get("k") == (True, 1)
    await anyio.sleep(59.9)
    assert "k" in cache
    await anyio.sleep(0.1)
    assert "k" not in cache


async def test_hot_ttl_replaces_the_base_ttl() -> None:
    """A hit on a hot key sets its expiry to now + hot_key_extension, not base TTL plus extension."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        quiet(default_ttl=10, hot_key_extension=100, hot_access_threshold=3)
    )
    cache.set("k", 1)
    cache.try_get("k")
    assert cache.get_stats().hot_entries == 0
    cache.try_get("k")  # third access: hot
    assert cache.get_stats().hot_entries == 1
    await anyio.sleep(99.9)
    assert "k" in cache
    await anyio.sleep(0.1)
    assert "k" not in cache


def test_threshold_one_makes_every_hit_hot() -> None:
    """With hot_access_threshold=1 an entry is hot from its insert: every hit gives it hot_key_extension."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        EphemeralLruCacheOptions(default_ttl=10, hot_key_extension=100, hot_access_threshold=1, clock=clock)
    )
    cache.set("k", 1)
    assert cache.get_stats().hot_entries == 1
    clock.advance(9)
    assert cache.try_get("k") == (True, 1)
    clock.advance(99)
    assert "k" in cache
    assert names(cache) == [("cache.hot", "k")]


async def test_per_entry_ttl() -> None:
    """A ttl given to set() or get_or_add() applies to that entry, also when a hit slides it."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=10, hot_access_threshold=1000))
    cache.set("short", 1, ttl=1)
    await cache.get_or_add("long", const(2), ttl=timedelta(seconds=100))
    await anyio.sleep(0.5)
    assert cache.try_get("short") == (True, 1)  # slides to now + 1 s
    await anyio.sleep(1)
    assert "short" not in cache
    await anyio.sleep(50)
    assert cache.try_get("long") == (True, 2)


def test_expiry_is_exclusive_at_the_deadline() -> None:
    """An entry is gone exactly when its TTL has elapsed (as cachetools' TTLCache)."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=5, clock=clock))
    cache.set("k", 1)
    clock.advance(5)
    assert cache.try_get("k") == (False, None)


async def test_absolute_expiration_caps_life_whatever_the_hits() -> None:
    """An entry hit every 10 s with a 60 s sliding TTL still expires 100 s after it was stored."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        quiet(default_ttl=60, absolute_expiration=100, hot_access_threshold=1000)
    )
    loader = Loader(1, 2)
    assert await cache.get_or_add("k", loader) == 1
    for _ in range(9):
        await anyio.sleep(10)
        assert cache.try_get("k") == (True, 1)
    await anyio.sleep(9.9)
    assert await cache.get_or_add("k", loader) == 1  # 99.9 s old: still live
    await anyio.sleep(0.1)
    assert cache.try_get("k") == (False, None)  # 100 s old: gone, although hit 0.1 s ago
    assert await cache.get_or_add("k", loader) == 2
    assert loader.calls == 2


async def test_absolute_expiration_caps_hot_keys_too() -> None:
    """A hot key's longer TTL does not carry it past its absolute expiration."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        quiet(default_ttl=10, hot_key_extension=1000, hot_access_threshold=2, absolute_expiration=50)
    )
    cache.set("k", 1)
    cache.try_get("k")  # hot: would live 1000 s
    assert cache.get_stats().hot_entries == 1
    await anyio.sleep(49.9)
    assert cache.try_get("k") == (True, 1)
    await anyio.sleep(0.1)
    assert cache.try_get("k") == (False, None)


async def test_absolute_expiration_shorter_than_the_sliding_ttl() -> None:
    """With absolute_expiration below default_ttl the entry goes at the absolute limit (the seed's 150 ms case)."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=5, absolute_expiration=0.150))
    loader = Loader(1, 2)
    assert await cache.get_or_add("k", loader) == 1
    await anyio.sleep(0.220)
    stats = cache.get_stats()
    assert (stats.size, stats.expired_entries) == (1, 1)  # held until met, but never returned
    assert await cache.get_or_add("k", loader) == 2
    assert loader.calls == 2


async def test_a_replaced_entry_gets_a_fresh_absolute_expiration() -> None:
    """set() and a reload start the absolute clock anew; the per-entry ttl is capped by it as well."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=10, absolute_expiration=20))
    cache.set("k", 1, ttl=1000)  # capped at 20 s
    await anyio.sleep(15)
    cache.set("k", 2)
    await anyio.sleep(9.9)
    assert cache.try_get("k") == (True, 2)
    await anyio.sleep(9.9)
    assert cache.try_get("k") == (True, 2)  # 19.8 s after set
    await anyio.sleep(0.2)
    assert cache.try_get("k") == (False, None)


def test_absolute_expiration_accepts_a_timedelta() -> None:
    """absolute_expiration may be a timedelta."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        EphemeralLruCacheOptions(default_ttl=60, absolute_expiration=timedelta(seconds=30), clock=clock)
    )
    cache.set("k", 1)
    clock.advance(29.9)
    assert cache.try_get("k") == (True, 1)
    clock.advance(0.1)
    assert cache.try_get("k") == (False, None)


# ---------------------------------------------------------------------------------------- LRU and eviction


def test_evicts_the_least_recently_used() -> None:
    """Beyond max_size the entry used longest ago goes; a hit makes an entry the most recently used."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(max_size=3))
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)
    assert cache.try_get("a") == (True, 1)
    cache.set("d", 4)
    assert "b" not in cache
    assert all(key in cache for key in "acd")
    cache.set("e", 5)
    assert "c" not in cache
    assert len(cache) == 3
    assert cache.get_stats().evictions == 2
    assert names(cache, "cache.evict") == [("cache.evict", "b"), ("cache.evict", "c")]


def test_eviction_is_lru_not_lfu() -> None:
    """A key hit many times long ago is evicted before one touched once just now."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(max_size=2))
    cache.set("popular", 1)
    for _ in range(10):
        cache.try_get("popular")
    cache.set("recent", 2)
    cache.set("new", 3)
    assert "popular" not in cache and "recent" in cache and "new" in cache


def test_size_never_exceeds_max_size() -> None:
    """However many keys go in, the cache holds at most max_size entries."""
    cache: EphemeralLruCache[int, int] = EphemeralLruCache(quiet(max_size=100))
    for i in range(10_000):
        cache.set(i, i)
        assert len(cache) <= 100
    assert cache.get_stats().evictions == 9_900
    assert sorted(k for k in range(10_000) if k in cache) == list(range(9_900, 10_000))


def test_insert_drops_expired_entries_at_the_lru_end() -> None:
    """Storing a key also drops expired entries from the least recently used end, freeing their memory."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=10, clock=clock))
    cache.set("old1", 1)
    cache.set("old2", 2)
    clock.advance(5)
    cache.set("mid", 3)
    clock.advance(5)
    cache.set("new", 4)
    assert len(cache) == 2 and "mid" in cache and "new" in cache
    assert cache.get_stats().evictions == 2


def test_expired_entry_met_on_read_is_dropped_and_counted() -> None:
    """A lookup meeting an expired entry drops it (an eviction) and counts a miss."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(default_ttl=1, clock=clock))
    cache.set("k", 1)
    clock.advance(1)
    assert cache.get_stats().expired_entries == 1
    assert cache.try_get("k") == (False, None)
    stats = cache.get_stats()
    assert (stats.size, stats.expired_entries, stats.evictions, stats.misses) == (0, 0, 1, 1)
    assert names(cache) == [("cache.evict", "k"), ("cache.miss", "k")]


# --------------------------------------------------------------------------------------- single-flight loads


async def test_stampede_runs_the_factory_once() -> None:
    """100 concurrent get_or_add calls of one missing key run the factory once and all get its value."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    loader = Loader(42, delay=1.0)
    results: list[int] = []

    async def get() -> None:
        results.append(await cache.get_or_add("k", loader))

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(get)
    assert loader.calls == 1
    assert results == [42] * 100
    assert cache.try_get("k") == (True, 42)
    assert cache.get_stats().misses == 100


async def test_loads_of_different_keys_run_concurrently() -> None:
    """Single-flight is per key: loads of different keys overlap."""
    cache: EphemeralLruCache[int, int] = EphemeralLruCache(quiet())
    loader = Loader(1, delay=1.0)
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for key in range(10):
            tg.start_soon(cache.get_or_add, key, loader)
    assert loader.calls == 10
    assert anyio.current_time() - start == pytest.approx(1.0)


async def test_factory_error_reaches_every_waiter_and_nothing_is_cached() -> None:
    """When the factory raises, every caller waiting on that load gets the error, and the next call retries."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    failing = Loader(delay=1.0, error=LookupError("backend down"))
    errors: list[BaseException] = []

    async def get() -> None:
        try:
            await cache.get_or_add("k", failing)
        except LookupError as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(get)
    assert failing.calls == 1
    assert len(errors) == 10 and all(str(e) == "backend down" for e in errors)
    assert len(traceback.extract_tb(errors[-1].__traceback__)) < 10  # re-raising does not pile up frames
    assert "k" not in cache and len(cache) == 0
    assert await cache.get_or_add("k", const(7)) == 7


async def test_cancelled_waiter_leaves_the_load_running() -> None:
    """A waiter that gives up does not disturb the load: the loader and the other waiters get the value."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    loader = Loader(5, delay=1.0)
    results: list[Any] = []

    async def get(patience: float) -> None:
        with anyio.move_on_after(patience):
            results.append(await cache.get_or_add("k", loader))
            return
        results.append("gave up")

    async with anyio.create_task_group() as tg:
        tg.start_soon(get, 10)
        await anyio.sleep(0.1)  # the first caller is the loader
        tg.start_soon(get, 0.5)
        tg.start_soon(get, 10)
    assert loader.calls == 1
    assert sorted(results, key=str) == [5, 5, "gave up"]
    assert cache.try_get("k") == (True, 5)


async def test_cancelled_loader_hands_the_load_to_a_waiter() -> None:
    """When the loading caller is cancelled, one waiter runs the factory again and every waiter gets its value."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    loader = Loader(1, 2, delay=1.0)
    results: list[Any] = []

    async def get(patience: float) -> None:
        with anyio.move_on_after(patience):
            results.append(await cache.get_or_add("k", loader))
            return
        results.append("cancelled")

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(get, 0.5)
        await anyio.sleep(0.1)
        for _ in range(5):
            tg.start_soon(get, 10)
    assert loader.calls == 2
    assert sorted(results, key=str) == [2, 2, 2, 2, 2, "cancelled"]
    assert anyio.current_time() - start == pytest.approx(1.5)
    assert cache.try_get("k") == (True, 2)


@asynccontextmanager
async def half_way_through_a_load(cache: EphemeralLruCache[str, int]) -> AsyncIterator[list[int]]:
    """Half a second into a 1 s load of ``"k"`` (value 1); the yielded list gets its caller's result on exit."""
    results: list[int] = []

    async def get() -> None:
        results.append(await cache.get_or_add("k", Loader(1, delay=1.0)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(get)
        await anyio.sleep(0.5)
        yield results


async def test_invalidate_during_a_load_keeps_its_value_out() -> None:
    """invalidate() while a load runs: its callers still get the value, but it is not stored."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    async with half_way_through_a_load(cache) as results:
        assert cache.invalidate("k") is False  # nothing stored yet, but the load is detached
    assert results == [1]
    assert "k" not in cache


async def test_set_during_a_load_wins() -> None:
    """A value set() while a load runs is the one kept; the load's callers still get the loaded value."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    async with half_way_through_a_load(cache) as results:
        cache.set("k", 99)
        assert await cache.get_or_add("k", const(0)) == 99  # a new caller hits the set value
    assert results == [1]
    assert cache.try_get("k") == (True, 99)


async def test_clear_during_a_load_keeps_its_value_out() -> None:
    """clear() detaches loads in flight too."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet())
    async with half_way_through_a_load(cache):
        cache.clear()
    assert len(cache) == 0


# ------------------------------------------------------------------------------------------------- stats


def test_stats_count_hits_misses_and_hot_entries() -> None:
    """get_stats() reports size, hot and expired entries, exact hit and miss counts and the hit rate."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(
        EphemeralLruCacheOptions(default_ttl=10, hot_access_threshold=2, max_size=50, sample_rate=7, clock=clock)
    )
    assert cache.get_stats() == CacheStats(0, 0, 0, 0, 0, 0, 0.0, 50)
    cache.set("hot", 1)
    cache.set("cold", 2)
    cache.set("gone", 3, ttl=1)
    for _ in range(5):
        cache.try_get("hot")
    cache.try_get("nope")
    clock.advance(2)
    stats = cache.get_stats()
    assert stats.size == stats.total_entries == 3
    assert stats.hot_entries == 1
    assert stats.expired_entries == 1
    assert (stats.hits, stats.misses, stats.evictions) == (5, 1, 0)
    assert stats.hit_rate == pytest.approx(5 / 6)
    assert stats.max_size == 50


# ------------------------------------------------------------------------------------------------- signals


async def test_signals_name_the_event_and_carry_the_key() -> None:
    """Misses, hits, hot hits and evictions emit cache.miss, cache.hit, cache.hot and cache.evict with key=str(key)."""
    cache: EphemeralLruCache[int, str] = EphemeralLruCache(
        EphemeralLruCacheOptions(hot_access_threshold=3, max_size=2)  # the private sink keeps 4 signals
    )
    await cache.get_or_add(1, const("a"))  # miss
    await cache.get_or_add(1, const("a"))  # hit (2nd access)
    await cache.get_or_add(1, const("a"))  # hot (3rd access)
    cache.set(2, "b")
    cache.set(3, "c")  # evicts 1
    assert names(cache) == [
        ("cache.miss", "1"),
        ("cache.hit", "1"),
        ("cache.hot", "1"),
        ("cache.evict", "1"),
    ]
    assert names(cache, "cache.h*") == [("cache.hit", "1"), ("cache.hot", "1")]


def test_sampling_emits_the_first_then_one_in_n_of_each_kind() -> None:
    """With sample_rate=10 the 1st, 11th, 21st ... signal of each kind is emitted; the counters stay exact."""
    cache: EphemeralLruCache[int, int] = EphemeralLruCache(
        EphemeralLruCacheOptions(sample_rate=10, hot_access_threshold=1000)
    )
    cache.set(0, 0)
    for _ in range(25):
        cache.try_get(0)
    for i in range(1, 26):
        cache.try_get(i)
    assert len(cache.get_signals("cache.hit")) == 3
    assert len(cache.get_signals("cache.miss")) == 3
    stats = cache.get_stats()
    assert (stats.hits, stats.misses) == (25, 25)


def test_sample_rate_one_emits_every_signal() -> None:
    """By default every hit and miss emits a signal."""
    cache: EphemeralLruCache[int, int] = EphemeralLruCache(EphemeralLruCacheOptions(hot_access_threshold=1000))
    cache.set(0, 0)
    for _ in range(5):
        cache.try_get(0)
        cache.try_get(1)
    assert len(cache.get_signals("cache.hit")) == 5
    assert len(cache.get_signals("cache.miss")) == 5


def test_shared_sink_receives_the_signals() -> None:
    """With a shared sink the signals land there, next to others; get_signals() returns only cache.* ones."""
    sink = SignalSink()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(signals=sink))
    sink.emit("order.placed", key="o1")
    cache.try_get("k")
    assert [e.signal for e in sink.sense()] == ["order.placed", "cache.miss"]
    assert [e.signal for e in cache.get_signals()] == ["cache.miss"]
    assert [e.signal for e in cache.get_signals("*")] == ["cache.miss"]


def test_subscribers_of_the_sink_see_cache_signals() -> None:
    """Cache signals reach the sink's subscribers, so patterns can react to misses and evictions."""
    sink = SignalSink()
    seen: list[tuple[str, str | None]] = []
    sink.subscribe(lambda event: seen.append((event.signal, event.key)))
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(signals=sink))
    cache.try_get("k")
    assert seen == [("cache.miss", "k")]


def test_private_sink_is_bounded_by_max_size() -> None:
    """Without a shared sink the cache keeps at most 2 * max_size signals, for 5 minutes."""
    cache: EphemeralLruCache[int, int] = EphemeralLruCache(EphemeralLruCacheOptions(max_size=10))
    for i in range(100):
        cache.try_get(i)
    assert cache.signals.max_capacity == 20 and cache.signals.max_age == 300.0
    assert len(cache.get_signals()) == 20


# --------------------------------------------------------------------------------------------------- clock


def test_injected_clock_drives_expiry() -> None:
    """A clock given in the options is the only time the cache reads."""
    clock = ManualClock()
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(default_ttl=60, clock=clock))
    cache.set("k", 1)
    clock.advance(3600)
    assert cache.try_get("k") == (False, None)


def test_default_clock_works_from_sync_code() -> None:
    """Outside any event loop the default clock reads time.monotonic(), so plain sync code can use the cache."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(default_ttl=0.05))
    cache.set("k", 1)
    assert cache.try_get("k") == (True, 1)
    time.sleep(0.06)
    assert cache.try_get("k") == (False, None)


async def test_default_clock_inside_the_loop_follows_loop_time() -> None:
    """A cache made inside the event loop reads the loop's clock, so virtual time drives its TTLs."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(quiet(default_ttl=60, hot_access_threshold=1000))
    cache.set("k", 1)
    await anyio.sleep(59)
    assert cache.try_get("k") == (True, 1)  # slides: 60 s from now
    await anyio.sleep(59)
    assert "k" in cache
    await anyio.sleep(1)
    assert "k" not in cache


@pytest.mark.real_time
async def test_cache_in_a_real_time_loop_reads_monotonic_time() -> None:
    """In a real-time loop the cache's TTLs follow time.monotonic(), from inside the loop or from a thread."""
    cache: EphemeralLruCache[str, int] = EphemeralLruCache(EphemeralLruCacheOptions(default_ttl=0.05))
    cache.set("short", 1)
    cache.set("long", 2, ttl=3600)  # a thread hop on a loaded machine may take longer than the short TTL
    assert await anyio.to_thread.run_sync(cache.try_get, "long") == (True, 2)
    await anyio.sleep(0.06)
    assert cache.try_get("short") == (False, None)
    assert await anyio.to_thread.run_sync(cache.try_get, "short") == (False, None)
    assert await anyio.to_thread.run_sync(cache.try_get, "long") == (True, 2)


def test_a_silent_cache_emits_nothing_but_still_counts() -> None:
    clock = ManualClock()
    sink = SignalSink()
    for options in (
        EphemeralLruCacheOptions(emit_signals=False, max_size=1, default_ttl=10.0, clock=clock),
        EphemeralLruCacheOptions(emit_signals=False, max_size=1, default_ttl=10.0, clock=clock, signals=sink),
    ):
        cache: EphemeralLruCache[str, int] = EphemeralLruCache(options)
        assert cache.try_get("a") == (False, None)
        cache.set("a", 1)
        assert cache.try_get("a") == (True, 1)
        cache.set("b", 2)  # evicts "a"
        assert cache.invalidate("b")
        assert cache.get_signals() == []
        assert cache.signals.sense("*") == []
        stats = cache.get_stats()
        assert (stats.hits, stats.misses, stats.evictions) == (1, 1, 1)
    with pytest.raises(TypeError, match="emit_signals"):
        EphemeralLruCacheOptions(emit_signals=1)  # type: ignore[arg-type]
