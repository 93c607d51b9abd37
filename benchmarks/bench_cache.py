"""EphemeralLruCache hit and miss paths against cachetools (TTLCache, LRUCache) and async-lru.

Every contender is timed by its own loop, so that no adapter layer is counted: a sync contender is a
``get(key)`` callable called over ``KEYS`` keys, ``rounds`` times; an async contender is an
``async def timed(rounds) -> seconds per hit`` that awaits the cache the same way inside the event loop.

Hits: every key is stored before timing starts. Each pass over the ``KEYS`` keys is timed on its own
and a run reports its fastest pass (as ``timeit`` advises: the slower ones measure other processes
taking the CPU, not the cache). Misses: every key is new, and the cache stores it; a run reports its
mean, the caches filling up and then evicting.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import anyio
from async_lru import alru_cache
from cachetools import LRUCache, TTLCache

from ephemeral.core._cache import EphemeralLruCache, EphemeralLruCacheOptions

#: How many distinct keys the hit loops cycle through (all of them cached).
KEYS = 1000
#: Every cache holds up to this many entries (EphemeralLruCacheOptions' default max_size).
MAX_SIZE = 10_000
#: Time to live everywhere: long enough that nothing expires during a run.
TTL = 300.0
#: The sampled configuration: 1 in 100 signals of each kind is emitted.
SAMPLED = 100


def ephemeral(sample_rate: int, clock: Callable[[], float] | None = None) -> EphemeralLruCache[int, int]:
    return EphemeralLruCache(
        EphemeralLruCacheOptions(default_ttl=TTL, max_size=MAX_SIZE, sample_rate=sample_rate, clock=clock)
    )


async def identity(key: int) -> int:
    """The factory / cached coroutine of every async contender."""
    return key


# -- hits -------------------------------------------------------------------------------------------------


def time_sync_hits(get: Callable[[int], object], rounds: int) -> float:
    """Seconds per hit of the fastest of ``rounds`` passes of ``get(key)`` over the ``KEYS`` keys."""
    keys = list(range(KEYS))
    clock = time.perf_counter
    fastest = math.inf
    for _ in repeat(None, rounds):
        start = clock()
        for key in keys:
            get(key)
        fastest = min(fastest, clock() - start)
    return fastest / KEYS


def _check_hit(found: object, key: int) -> None:
    if found != (True, key) and found != key:
        raise RuntimeError(f"expected a hit for {key}, got {found!r}")


def make_ttl_get() -> Callable[[int], object]:
    """cachetools.TTLCache(maxsize, ttl).get, filled with the keys."""
    cache: TTLCache[int, int] = TTLCache(MAX_SIZE, TTL)
    for key in range(KEYS):
        cache[key] = key
    _check_hit(cache.get(7), 7)
    return cache.get


def make_ttl_getitem() -> Callable[[int], object]:
    """cachetools.TTLCache(maxsize, ttl)[key], filled with the keys."""
    cache: TTLCache[int, int] = TTLCache(MAX_SIZE, TTL)
    for key in range(KEYS):
        cache[key] = key
    return cache.__getitem__


def make_lru_get() -> Callable[[int], object]:
    """cachetools.LRUCache(maxsize).get, filled with the keys (no expiry at all)."""
    cache: LRUCache[int, int] = LRUCache(MAX_SIZE)
    for key in range(KEYS):
        cache[key] = key
    return cache.get


def make_try_get(sample_rate: int, clock: Callable[[], float] | None = None) -> Callable[[], Callable[[int], object]]:
    def make() -> Callable[[int], object]:
        """EphemeralLruCache.try_get, filled with the keys."""
        cache = ephemeral(sample_rate, clock)
        for key in range(KEYS):
            cache.set(key, key)
        _check_hit(cache.try_get(7), 7)
        return cache.try_get

    return make


def noop_get(key: int) -> None:
    """The loop and call overhead alone."""


def in_loop(make: Callable[[], Callable[[int], object]]) -> Callable[[int], Awaitable[float]]:
    """A sync contender made and timed inside the running event loop."""

    async def timed(rounds: int) -> float:
        return time_sync_hits(make(), rounds)

    return timed


async def time_async_hits(get: Callable[[int, Any], Awaitable[object]], arg: Any, rounds: int) -> float:
    """Seconds per hit of the fastest of ``rounds`` passes of ``await get(key, arg)`` over the ``KEYS`` keys."""
    keys = list(range(KEYS))
    clock = time.perf_counter
    fastest = math.inf
    for _ in repeat(None, rounds):
        start = clock()
        for key in keys:
            await get(key, arg)
        fastest = min(fastest, clock() - start)
    return fastest / KEYS


def get_or_add_hits(sample_rate: int) -> Callable[[int], Awaitable[float]]:
    async def timed(rounds: int) -> float:
        """await EphemeralLruCache.get_or_add(key, factory), every key already loaded."""
        cache = ephemeral(sample_rate)
        for key in range(KEYS):
            await cache.get_or_add(key, identity)
        _check_hit(cache.try_get(7), 7)
        return await time_async_hits(cache.get_or_add, identity, rounds)

    return timed


async def async_lru_hits(rounds: int) -> float:
    """await of an @alru_cache(maxsize, ttl) coroutine, every key already cached (asyncio only)."""
    cached = alru_cache(maxsize=MAX_SIZE, ttl=TTL)(identity)
    keys = list(range(KEYS))
    for key in keys:
        await cached(key)
    clock = time.perf_counter
    fastest = math.inf
    for _ in repeat(None, rounds):
        start = clock()
        for key in keys:
            await cached(key)
        fastest = min(fastest, clock() - start)
    info = cached.cache_info()
    if info.misses != KEYS:
        raise RuntimeError(f"async-lru missed {info.misses} times, expected {KEYS}")
    await cached.cache_close()
    return fastest / KEYS


async def noop_coroutine(key: int, factory: object) -> int:
    """Shaped like get_or_add(key, factory); returns at once."""
    return key


async def noop_await(rounds: int) -> float:
    """The loop, call and await overhead alone."""
    return await time_async_hits(noop_coroutine, identity, rounds)


@dataclass(frozen=True)
class HitContender:
    name: str
    #: None for plain sync code (no event loop), else the backend it runs in.
    backend: str | None
    sync: Callable[[], Callable[[int], object]] | None = None
    timed: Callable[[int], Awaitable[float]] | None = None
    #: Whether the 2x-of-cachetools target applies to it.
    target: bool = False
    #: For scale only (an empty call): left out of the ratios.
    floor: bool = False


TTL_GET = "cachetools TTLCache.get"
LRU_GET = "cachetools LRUCache.get"
ASYNC_LRU = "async-lru @alru_cache hit"


def hit_contenders(backends: list[str]) -> list[HitContender]:
    rows = [
        HitContender(TTL_GET, None, sync=make_ttl_get),
        HitContender("cachetools TTLCache[key]", None, sync=make_ttl_getitem),
        HitContender(LRU_GET, None, sync=make_lru_get),
        HitContender("try_get, sync code, sample_rate=1 (default)", None, sync=make_try_get(1)),
        HitContender(f"try_get, sync code, sample_rate={SAMPLED}", None, sync=make_try_get(SAMPLED), target=True),
        HitContender(
            f"try_get, sync code, sample_rate={SAMPLED}, clock=time.monotonic",
            None,
            sync=make_try_get(SAMPLED, time.monotonic),
            target=True,
        ),
        HitContender("empty call (loop + call overhead, for scale)", None, sync=lambda: noop_get, floor=True),
    ]
    for backend in backends:
        rows += [
            HitContender(
                f"try_get, in the loop, sample_rate={SAMPLED}",
                backend,
                timed=in_loop(make_try_get(SAMPLED)),
                target=True,
            ),
            HitContender("await get_or_add, sample_rate=1 (default)", backend, timed=get_or_add_hits(1)),
            HitContender(
                f"await get_or_add, sample_rate={SAMPLED}", backend, timed=get_or_add_hits(SAMPLED), target=True
            ),
        ]
        if backend == "asyncio":
            rows.append(HitContender(ASYNC_LRU, backend, timed=async_lru_hits))
        rows.append(HitContender("await of a no-op coroutine (for scale)", backend, timed=noop_await, floor=True))
    return rows


def time_hit(contender: HitContender, rounds: int) -> float:
    """Seconds per hit of the fastest of ``rounds`` passes over the keys (a fresh cache each time)."""
    if contender.sync is not None and contender.backend is None:
        return time_sync_hits(contender.sync(), rounds)
    assert contender.timed is not None and contender.backend is not None
    timed = contender.timed

    async def main() -> float:
        return await timed(rounds)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # async-lru warns when reused across loops; each run makes its own
        return anyio.run(main, backend=contender.backend)


# -- misses -----------------------------------------------------------------------------------------------


def ttl_miss_fill(n: int) -> float:
    """cachetools.TTLCache: get(key) misses, then cache[key] = value (evicting once full)."""
    cache: TTLCache[int, int] = TTLCache(MAX_SIZE, TTL)
    get = cache.get
    start = time.perf_counter()
    for key in range(n):
        if get(key) is None:
            cache[key] = key
    return time.perf_counter() - start


def try_get_miss_set(n: int) -> float:
    """EphemeralLruCache from sync code: try_get(key) misses, then set(key, value); default options."""
    cache = ephemeral(1)
    try_get, put = cache.try_get, cache.set
    start = time.perf_counter()
    for key in range(n):
        if not try_get(key)[0]:
            put(key, key)
    seconds = time.perf_counter() - start
    if len(cache) != min(n, MAX_SIZE):
        raise RuntimeError(f"the cache holds {len(cache)} entries")
    return seconds


def get_or_add_misses(sample_rate: int) -> Callable[[int], Awaitable[float]]:
    async def timed(n: int) -> float:
        """await EphemeralLruCache.get_or_add(key, factory) of new keys: load, store, evict once full."""
        cache = ephemeral(sample_rate)
        get = cache.get_or_add
        start = time.perf_counter()
        for key in range(n):
            await get(key, identity)
        seconds = time.perf_counter() - start
        if cache.get_stats().misses != n:
            raise RuntimeError("every call should have been a miss")
        return seconds

    return timed


async def async_lru_misses(n: int) -> float:
    """await of an @alru_cache(maxsize, ttl) coroutine with new keys (asyncio only)."""
    cached = alru_cache(maxsize=MAX_SIZE, ttl=TTL)(identity)
    start = time.perf_counter()
    for key in range(n):
        await cached(key)
    seconds = time.perf_counter() - start
    await cached.cache_close()
    return seconds


@dataclass(frozen=True)
class MissContender:
    name: str
    backend: str | None
    sync: Callable[[int], float] | None = None
    timed: Callable[[int], Awaitable[float]] | None = None


CACHETOOLS_MISS = "cachetools TTLCache: get miss + set"
ASYNC_LRU_MISS = "async-lru @alru_cache miss"


def miss_contenders(backends: list[str]) -> list[MissContender]:
    rows = [
        MissContender(CACHETOOLS_MISS, None, sync=ttl_miss_fill),
        MissContender("try_get miss + set, sync code, sample_rate=1 (default)", None, sync=try_get_miss_set),
    ]
    for backend in backends:
        rows += [
            MissContender("await get_or_add miss, sample_rate=1 (default)", backend, timed=get_or_add_misses(1)),
            MissContender(f"await get_or_add miss, sample_rate={SAMPLED}", backend, timed=get_or_add_misses(SAMPLED)),
        ]
        if backend == "asyncio":
            rows.append(MissContender(ASYNC_LRU_MISS, backend, timed=async_lru_misses))
    return rows


def time_miss(contender: MissContender, n: int) -> float:
    """Seconds for `n` misses, each filling the cache."""
    if contender.sync is not None:
        return contender.sync(n)
    assert contender.timed is not None and contender.backend is not None
    timed = contender.timed

    async def main() -> float:
        return await timed(n)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anyio.run(main, backend=contender.backend)


def where(backend: str | None) -> str:
    return "sync code" if backend is None else backend
