"""SlidingCacheAtom: sliding and absolute expiration, one compute per key, bounded size, stats, signals, arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral.atoms.slidingcache import SlidingCacheAtom, SlidingCacheStats
from ephemeral.core import CoordinatorClosedError, EphemeralLruCache, SignalSink
from ephemeral.core.testing import ConcurrencyProbe, arun_readme_examples, assert_lifecycle_faults


class Compute:
    """An async compute that counts its calls, returns ``values`` in turn and can take (virtual) time or fail."""

    def __init__(self, *values: Any, delay: float = 0.0, error: Exception | None = None) -> None:
        self.values = list(values) or [None]
        self.delay = delay
        self.error = error
        self.calls = 0
        self.keys: list[Any] = []
        self.probe = ConcurrencyProbe()

    async def __call__(self, key: Any) -> Any:
        self.calls += 1
        self.keys.append(key)
        with self.probe:
            if self.delay:
                await anyio.sleep(self.delay)
            if self.error is not None:
                raise self.error
            return self.values[min(self.calls, len(self.values)) - 1]


def signals_of(cache: SlidingCacheAtom[Any, Any], pattern: str | None = None) -> list[tuple[str, str | None]]:
    return [(event.signal, event.key) for event in cache.get_signals(pattern)]


# ---------------------------------------------------------------------------------------------- the seed


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    name: str


async def test_seed_readme_example() -> None:
    """The seed's example: compute once, a cached second call, try_get without compute, then the stats."""
    loads: list[str] = []

    async def load_user_profile(user_id: str) -> UserProfile:
        loads.append(user_id)
        await anyio.sleep(0.05)
        return UserProfile(user_id, "Ada")

    async with SlidingCacheAtom(
        load_user_profile,
        sliding_expiration=timedelta(minutes=5),
        absolute_expiration=timedelta(hours=1),
        max_size=1000,
    ) as cache:
        profile = await cache.get_or_compute("user-123")  # first call: computes and caches
        cached = await cache.get_or_compute("user-123")  # within 5 minutes: cached, TTL reset
        assert cached is profile
        found, peeked = cache.try_get("user-123")  # no compute; still resets the TTL on a hit
        assert found and peeked is not None
        assert peeked.name == "Ada"
        stats = cache.get_stats()
        assert (stats.total_entries, stats.hot_entries) == (1, 0)
    assert loads == ["user-123"]


# ------------------------------------------------------------------------------ reference tests (item 42)


async def test_reference_sliding_expiration_is_reset_on_access() -> None:
    """Reference: sliding 300 ms, absolute 5 s; gets at 0, 100 and 200 ms all return 42 from one compute."""
    compute = Compute(42)
    async with SlidingCacheAtom(compute, sliding_expiration=0.300, absolute_expiration=5, max_size=1000) as cache:
        assert await cache.get_or_compute("k") == 42
        await anyio.sleep(0.100)
        assert await cache.get_or_compute("k") == 42
        await anyio.sleep(0.100)
        assert await cache.get_or_compute("k") == 42
    assert compute.calls == 1


async def test_reference_absolute_expiration_is_enforced() -> None:
    """Reference: sliding 5 s, absolute 150 ms; after 220 ms the value is computed again (2, two computes)."""
    compute = Compute(1, 2)
    async with SlidingCacheAtom(compute, sliding_expiration=5, absolute_expiration=0.150, max_size=1000) as cache:
        assert await cache.get_or_compute("k") == 1
        await anyio.sleep(0.220)
        assert await cache.get_or_compute("k") == 2
    assert compute.calls == 2


async def test_reference_expired_entries_are_removed_when_over_capacity() -> None:
    """Reference: sliding = absolute = 60 ms, max_size 1; after 90 ms "new" replaces "old": total 1, valid 1."""
    compute = Compute(1, 2)
    async with SlidingCacheAtom(compute, sliding_expiration=0.060, absolute_expiration=0.060, max_size=1) as cache:
        assert await cache.get_or_compute("old") == 1
        await anyio.sleep(0.090)
        assert await cache.get_or_compute("new") == 2
        assert cache.try_get("old") == (False, None)
        stats = cache.get_stats()
        assert (stats.total_entries, stats.valid_entries, stats.expired_entries) == (1, 1, 0)


# ------------------------------------------------------------------------------------------ expiry in time


async def test_hits_keep_an_entry_alive_for_hours() -> None:
    """An entry hit every 50 min with a 1 h sliding TTL lives a day; left alone it goes 1 h after its last hit."""
    compute = Compute("v1", "v2")
    async with SlidingCacheAtom(compute, sliding_expiration=3600, absolute_expiration=None) as cache:
        await cache.get_or_compute("k")
        for _ in range(30):
            await anyio.sleep(3000)
            assert await cache.get_or_compute("k") == "v1"
        await anyio.sleep(3599.9)
        assert "k" in cache
        await anyio.sleep(0.1)
        assert "k" not in cache
        assert await cache.get_or_compute("k") == "v2"
    assert compute.calls == 2


async def test_try_get_hit_resets_the_sliding_expiration() -> None:
    """A try_get hit slides the entry as a get_or_compute hit does."""
    compute = Compute(1)
    async with SlidingCacheAtom(compute, sliding_expiration=10, absolute_expiration=None) as cache:
        await cache.get_or_compute("k")
        for _ in range(5):
            await anyio.sleep(9)
            assert cache.try_get("k") == (True, 1)
        await anyio.sleep(10)
        assert cache.try_get("k") == (False, None)
    assert compute.calls == 1


async def test_absolute_expiration_caps_life_whatever_the_hits() -> None:
    """Hit every 10 s with a 60 s sliding TTL, an entry still goes 100 s after it was computed."""
    compute = Compute(1, 2)
    async with SlidingCacheAtom(compute, sliding_expiration=60, absolute_expiration=100) as cache:
        assert await cache.get_or_compute("k") == 1
        for _ in range(9):
            await anyio.sleep(10)
            assert cache.try_get("k") == (True, 1)
        await anyio.sleep(9.9)
        assert await cache.get_or_compute("k") == 1  # 99.9 s old
        await anyio.sleep(0.1)
        assert cache.try_get("k") == (False, None)  # 100 s old, hit 0.1 s ago: gone
        assert await cache.get_or_compute("k") == 2
    assert compute.calls == 2


async def test_absolute_expiration_counts_from_the_end_of_the_compute() -> None:
    """A compute taking 30 s stores its value at its end, so the absolute limit starts then."""
    compute = Compute(1, 2, delay=30)
    async with SlidingCacheAtom(compute, sliding_expiration=1000, absolute_expiration=50) as cache:
        assert await cache.get_or_compute("k") == 1
        await anyio.sleep(49.9)
        assert cache.try_get("k") == (True, 1)
        await anyio.sleep(0.1)
        assert cache.try_get("k") == (False, None)


async def test_hot_entries_are_counted_but_not_kept_longer() -> None:
    """An entry is hot after 5 accesses (the compute counts) and still expires on the sliding TTL."""
    compute = Compute(1)
    async with SlidingCacheAtom(compute, sliding_expiration=10, absolute_expiration=None) as cache:
        await cache.get_or_compute("k")
        for _ in range(3):
            cache.try_get("k")
        assert cache.get_stats().hot_entries == 0  # 4 accesses
        cache.try_get("k")
        assert cache.get_stats().hot_entries == 1  # 5 accesses: hot
        await anyio.sleep(10)
        assert cache.try_get("k") == (False, None)


async def test_an_expired_value_is_never_returned() -> None:
    """Past its TTL an entry is still held (counted expired) but neither try_get nor get_or_compute returns it."""
    compute = Compute(1, 2)
    async with SlidingCacheAtom(compute, sliding_expiration=5, absolute_expiration=None) as cache:
        await cache.get_or_compute("a")
        await anyio.sleep(5)
        stats = cache.get_stats()
        assert (stats.total_entries, stats.valid_entries, stats.expired_entries) == (1, 0, 1)
        assert await cache.get_or_compute("a") == 2


# ------------------------------------------------------------------------------------- one compute per key


async def test_concurrent_misses_of_one_key_compute_once() -> None:
    """A hundred callers missing one key at once share one compute and all get its value."""
    compute = Compute("value", delay=1.0)
    results: list[str] = []
    async with SlidingCacheAtom(compute) as cache:

        async def call() -> None:
            results.append(await cache.get_or_compute("k"))

        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(call)
        assert anyio.current_time() - start == pytest.approx(1.0)
        stats = cache.get_stats()
        assert (stats.computes, stats.misses, stats.total_entries) == (1, 100, 1)
    assert results == ["value"] * 100
    assert compute.calls == 1


async def test_a_failed_compute_fails_every_waiter_and_caches_nothing() -> None:
    """When the shared compute raises, every caller gets the exception, nothing is cached, the next call retries."""
    compute = Compute(delay=1.0, error=ConnectionError("down"))
    errors: list[BaseException] = []
    async with SlidingCacheAtom(compute) as cache:

        async def call() -> None:
            try:
                await cache.get_or_compute("k")
            except ConnectionError as error:
                errors.append(error)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(call)
        assert len(errors) == 5 and compute.calls == 1
        assert cache.try_get("k") == (False, None)
        assert signals_of(cache, "cache.error*") == [("cache.error:ConnectionError", "k")]
        compute.error = None
        compute.values = ["ok"]
        assert await cache.get_or_compute("k") == "ok"
        stats = cache.get_stats()
        assert (stats.computes, stats.compute_errors) == (2, 1)


async def test_a_cancelled_computing_caller_hands_over_to_a_waiter() -> None:
    """If the caller running the compute is cancelled, a waiting caller computes instead and gets the value."""
    compute = Compute("v", delay=1.0)
    got: list[str] = []
    async with SlidingCacheAtom(compute) as cache:

        async def waiter() -> None:
            got.append(await cache.get_or_compute("k"))

        async with anyio.create_task_group() as tg:
            with anyio.move_on_after(0.5):
                async with anyio.create_task_group() as first:
                    first.start_soon(cache.get_or_compute, "k")
                    await anyio.sleep(0.1)
                    tg.start_soon(waiter)
                    await anyio.sleep_forever()
        assert got == ["v"] and compute.calls == 2


async def test_different_keys_compute_in_parallel() -> None:
    """Misses of different keys do not wait for one another: ten 1 s computes take 1 s in all."""
    compute = Compute("v", delay=1.0)
    async with SlidingCacheAtom(compute) as cache:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(cache.get_or_compute, f"k{i}")
        assert anyio.current_time() - start == pytest.approx(1.0)
    assert compute.probe.peak == 10


async def test_max_concurrency_bounds_computes_across_keys() -> None:
    """With max_concurrency=2, ten 1 s computes of different keys run two at a time (5 s)."""
    compute = Compute("v", delay=1.0)
    async with SlidingCacheAtom(compute, max_concurrency=2) as cache:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(cache.get_or_compute, f"k{i}")
        assert anyio.current_time() - start == pytest.approx(5.0)
        assert len(cache) == 10
    assert compute.probe.peak == 2 and compute.calls == 10


async def test_a_hit_does_not_yield() -> None:
    """A hit returns without a checkpoint, so no other task runs in between."""
    compute = Compute(1)
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    async with SlidingCacheAtom(compute) as cache:
        await cache.get_or_compute("k")
        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            for _ in range(100):
                assert await cache.get_or_compute("k") == 1
            assert not ran


# --------------------------------------------------------------------------------------------- bounded size


async def test_memory_is_bounded_by_max_size() -> None:
    """Ten thousand distinct keys through a cache of 100 leave at most 100 entries."""
    compute = Compute("v")
    async with SlidingCacheAtom(compute, max_size=100) as cache:
        for i in range(10_000):
            await cache.get_or_compute(i)
            assert len(cache) <= 100
        stats = cache.get_stats()
        assert stats.total_entries == 100 and stats.evictions == 9_900
        assert set(range(9_900, 10_000)) == {i for i in range(10_000) if i in cache}


async def test_the_least_recently_used_entry_goes_first() -> None:
    """At max_size a new entry pushes out the entry used least recently, not the oldest."""
    compute = Compute("v")
    async with SlidingCacheAtom(compute, max_size=3) as cache:
        for key in ("a", "b", "c"):
            await cache.get_or_compute(key)
        cache.try_get("a")  # "b" is now the least recently used
        await cache.get_or_compute("d")
        assert ("a" in cache, "b" in cache, "c" in cache, "d" in cache) == (True, False, True, True)
        assert signals_of(cache, "cache.evict") == [("cache.evict", "b")]


# ----------------------------------------------------------------------------------------- stats, signals


async def test_stats_count_lookups_and_entries() -> None:
    """get_stats counts hits, misses and the hit rate exactly, along with what is held."""
    compute = Compute("v")
    async with SlidingCacheAtom(compute, max_size=50) as cache:
        await cache.get_or_compute("a")
        await cache.get_or_compute("a")
        cache.try_get("a")
        cache.try_get("missing")
        stats = cache.get_stats()
    assert stats == SlidingCacheStats(
        total_entries=1,
        valid_entries=1,
        expired_entries=0,
        hot_entries=0,
        max_size=50,
        hits=2,
        misses=2,
        evictions=0,
        hit_rate=0.5,
        computes=1,
        compute_errors=0,
    )


async def test_signals_on_a_shared_sink() -> None:
    """Misses, hits, hot hits and evictions are emitted on a shared sink with the key."""
    sink = SignalSink()
    compute = Compute("v")
    async with SlidingCacheAtom(compute, max_size=1, signals=sink, hot_access_threshold=2) as cache:
        assert cache.signals is sink
        await cache.get_or_compute("a")
        await cache.get_or_compute("a")  # second access: hot
        await cache.get_or_compute("b")  # pushes "a" out
    assert [(event.signal, event.key) for event in sink.sense("cache.*")] == [
        ("cache.miss", "a"),
        ("cache.hot", "a"),
        ("cache.miss", "b"),
        ("cache.evict", "a"),
    ]


async def test_private_sink_and_sampling() -> None:
    """Without a shared sink the signals are read with get_signals; sample_rate keeps 1 in N of each kind."""
    compute = Compute("v")
    async with SlidingCacheAtom(compute, sample_rate=10) as cache:
        for i in range(25):
            await cache.get_or_compute(i)
            await cache.get_or_compute(i)
        assert [signal for signal, _ in signals_of(cache)] == ["cache.miss", "cache.hit"] * 3
        assert signals_of(cache, "cache.miss") == [("cache.miss", "0"), ("cache.miss", "10"), ("cache.miss", "20")]
        assert cache.get_stats().misses == 25


async def test_invalidate_and_clear() -> None:
    """invalidate removes one key (emitting cache.invalidate), clear removes every entry; both force a compute."""
    compute = Compute(1, 2, 3)
    async with SlidingCacheAtom(compute) as cache:
        await cache.get_or_compute("a")
        assert cache.invalidate("a") is True
        assert cache.invalidate("a") is False
        assert await cache.get_or_compute("a") == 2
        cache.clear()
        assert len(cache) == 0
        assert await cache.get_or_compute("a") == 3
        assert signals_of(cache, "cache.invalidate") == [("cache.invalidate", "a")]


# -------------------------------------------------------------------------------------------------- lifecycle


async def test_leaving_the_block_empties_the_cache_and_refuses_computes() -> None:
    """After the async with block the cache holds nothing and get_or_compute raises; aclose is idempotent."""
    compute = Compute(1)
    async with SlidingCacheAtom(compute) as cache:
        await cache.get_or_compute("a")
        assert not cache.closed
    assert cache.closed and len(cache) == 0
    assert cache.try_get("a") == (False, None)
    with pytest.raises(CoordinatorClosedError, match="SlidingCacheAtom is closed"):
        await cache.get_or_compute("a")
    await cache.aclose()
    assert compute.calls == 1


async def test_usable_without_async_with() -> None:
    """The atom owns no task, so it works without entering it."""
    cache = SlidingCacheAtom(Compute(7))
    assert await cache.get_or_compute("k") == 7
    assert cache.try_get("k") == (True, 7)


def test_properties() -> None:
    """The configuration is readable back, durations in seconds, and the core cache is exposed."""
    cache: SlidingCacheAtom[str, int] = SlidingCacheAtom(
        Compute(1), sliding_expiration=timedelta(minutes=2), absolute_expiration=timedelta(hours=1), max_size=9
    )
    assert (cache.sliding_expiration, cache.absolute_expiration, cache.max_size) == (120.0, 3600.0, 9)
    assert isinstance(cache.cache, EphemeralLruCache)
    assert SlidingCacheAtom(Compute(1), absolute_expiration=None).absolute_expiration is None


def test_defaults() -> None:
    """The defaults are the reference's: 5 min sliding, 1 h absolute, 1000 entries."""
    cache: SlidingCacheAtom[str, int] = SlidingCacheAtom(Compute(1))
    assert (cache.sliding_expiration, cache.absolute_expiration, cache.max_size) == (300.0, 3600.0, 1000)


# ------------------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("compute", None, TypeError),
        ("sliding_expiration", 0, ValueError),
        ("sliding_expiration", -5.0, ValueError),
        ("sliding_expiration", "5m", TypeError),
        ("absolute_expiration", timedelta(0), ValueError),
        ("absolute_expiration", "1h", TypeError),
        ("max_size", 0, ValueError),
        ("max_size", 1.5, TypeError),
        ("max_size", True, TypeError),
        ("signals", "sink", TypeError),
        ("max_concurrency", 0, ValueError),
        ("max_concurrency", "2", TypeError),
        ("hot_access_threshold", 0, ValueError),
        ("sample_rate", 0, ValueError),
        ("clock", 3.0, TypeError),
    ],
)
def test_bad_arguments_raise_naming_the_argument(argument: str, value: Any, error: type[Exception]) -> None:
    """A bad argument raises ValueError or TypeError at construction, naming the argument."""
    kwargs: dict[str, Any] = {"compute": Compute(1), argument: value}
    with pytest.raises(error, match=argument):
        SlidingCacheAtom(**kwargs)


async def test_readme_example_runs() -> None:
    """The README's example runs as written (its anyio.run replaced by an await) and prints what it says."""
    output = await arun_readme_examples(Path(__file__).parent.parent / "README.md")
    assert output.splitlines() == [
        "Ada",
        "Entries: 1, Hot: 0",
        "['cache.miss', 'cache.hit', 'cache.hit']",
    ]


def test_a_sync_compute_is_refused_naming_it() -> None:
    def plain(key: str) -> str:
        return key

    with pytest.raises(TypeError, match=r"compute must be an async function \(async def\), got <function"):
        SlidingCacheAtom(plain)  # type: ignore[arg-type]


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline inside the block leaves no task behind; a closed cache refuses entering."""

    async def compute(key: str) -> str:
        await anyio.sleep(0.5)
        return key.upper()

    async def use(cache: SlidingCacheAtom[str, str]) -> None:
        assert await cache.get_or_compute("a") == "A"

    await assert_lifecycle_faults(lambda: SlidingCacheAtom(compute, sliding_expiration=10), use, nested_entry=True)
    cache = SlidingCacheAtom(compute, sliding_expiration=10)
    await cache.aclose()
    with pytest.raises(CoordinatorClosedError, match="closed"):
        async with cache:
            pass
