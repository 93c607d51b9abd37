"""SlidingCacheAtom: an async compute cache with sliding and absolute expiration, over ``EphemeralLruCache``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import anyio

from ephemeral.core import EphemeralLruCache, EphemeralLruCacheOptions, SignalEvent, SignalSink
from ephemeral.core.lowlevel import ClosableResource, check_async_callable, check_int, to_seconds

__all__ = ("SlidingCacheAtom", "SlidingCacheStats")

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class SlidingCacheStats:
    """A snapshot of a ``SlidingCacheAtom``: what it holds and how it has been used.

    Attributes:
        total_entries: Entries held, expired ones not yet dropped included.
        valid_entries: Entries that would be returned now (``total_entries - expired_entries``).
        expired_entries: Entries held whose time is up; never returned, dropped when met or pushed out.
        hot_entries: Live entries accessed at least ``hot_access_threshold`` times (the compute counts).
        max_size: The most entries the cache holds.
        hits: Lookups that found a live value.
        misses: Lookups that found none (each caller that waited for a compute included).
        evictions: Entries removed because they expired or because the cache was full.
        hit_rate: ``hits / (hits + misses)``, 0.0 before any lookup.
        computes: Times ``compute`` was called.
        compute_errors: Times ``compute`` raised.
    """

    total_entries: int
    valid_entries: int
    expired_entries: int
    hot_entries: int
    max_size: int
    hits: int
    misses: int
    evictions: int
    hit_rate: float
    computes: int
    compute_errors: int


class SlidingCacheAtom(ClosableResource, Generic[K, R]):
    """Caches what ``await compute(key)`` returns; every hit resets the entry's sliding expiration.

    An entry expires ``sliding_expiration`` after its last access, and in any case
    ``absolute_expiration`` after it was computed, however often it is hit. Expiry is checked on every
    read, so an expired value is never returned, and nothing runs in the background. Beyond
    ``max_size`` entries the least recently used one is evicted. Concurrent misses of one key share a
    single compute: the first caller runs it and the others await its value (or its exception, in
    which case nothing is cached). With ``max_concurrency`` at most that many computes of different
    keys run at once.

    A thin layer over ``ephemeral.core.EphemeralLruCache`` (whose hot-key TTL is the sliding
    expiration here). The cache belongs to the event loop it is made in, whose clock drives its
    expiry (virtual time in tests); it is not thread-safe. It owns no task, so ``async with`` is
    optional: leaving the block (or ``aclose()``) empties it and refuses further computes (and entering).

    Signals, on ``signals`` (or a private sink, read with ``get_signals``), each with ``key=str(key)``:
    ``cache.hit`` and ``cache.hot`` (a hit on an entry not yet hot, or hot), ``cache.miss``,
    ``cache.evict`` (expired or pushed out), all sampled 1 in ``sample_rate``; ``cache.invalidate``;
    ``cache.error:{ExceptionType}`` when ``compute`` raises. The atom listens to no signal.

    Args:
        compute: ``async def compute(key) -> value``, awaited on a miss.
        sliding_expiration: How long an entry lives after its last access (seconds or a timedelta).
        absolute_expiration: The longest an entry lives after it was computed; None for no limit.
        max_size: The most entries held.
        signals: A shared ``SignalSink`` to emit on; None for a private one.
        max_concurrency: The most computes running at once across keys; None for no limit.
        hot_access_threshold: Accesses (the compute counts as the first) that make an entry hot.
        sample_rate: Emit 1 in ``sample_rate`` signals of each sampled kind; the stats stay exact.
        clock: A monotonic clock in seconds; by default the clock of the loop the atom is made in.

    Raises:
        TypeError: An argument has the wrong type (the message names it).
        ValueError: An argument is out of range (the message names it).

    Example:
        >>> async with SlidingCacheAtom(load_user_profile, sliding_expiration=300, max_size=1000) as cache:
        ...     profile = await cache.get_or_compute("user-123")
        ...     found, profile = cache.try_get("user-123")
    """

    def __init__(
        self,
        compute: Callable[[K], Awaitable[R]],
        sliding_expiration: float | timedelta = 300.0,
        absolute_expiration: float | timedelta | None = 3600.0,
        max_size: int = 1000,
        signals: SignalSink | None = None,
        *,
        max_concurrency: int | None = None,
        hot_access_threshold: int = 5,
        sample_rate: int = 1,
        clock: Callable[[], float] | None = None,
    ) -> None:
        check_async_callable(compute, "compute")
        sliding = to_seconds(sliding_expiration, "sliding_expiration")
        absolute = None if absolute_expiration is None else to_seconds(absolute_expiration, "absolute_expiration")
        check_int(max_size, "max_size")
        if signals is not None and not isinstance(signals, SignalSink):
            raise TypeError(f"signals must be a SignalSink or None, got {signals!r}")
        if max_concurrency is not None:
            check_int(max_concurrency, "max_concurrency")
        check_int(hot_access_threshold, "hot_access_threshold")
        check_int(sample_rate, "sample_rate")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable or None, got {clock!r}")
        self._compute = compute
        self._sliding = sliding
        self._absolute = absolute
        self._limiter = None if max_concurrency is None else anyio.CapacityLimiter(max_concurrency)
        self._cache: EphemeralLruCache[K, R] = EphemeralLruCache(
            EphemeralLruCacheOptions(
                default_ttl=sliding,
                hot_key_extension=sliding,  # hot keys are counted, not kept longer
                absolute_expiration=absolute,
                hot_access_threshold=hot_access_threshold,
                max_size=max_size,
                sample_rate=sample_rate,
                signals=signals,
                clock=clock,
            )
        )
        self._sink = self._cache.signals
        self._computes = 0
        self._compute_errors = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def _on_close(self) -> None:
        self._cache.clear()  # every entry dropped; get_or_compute and entering refuse from now on

    def _closed_message(self) -> str:
        return "SlidingCacheAtom is closed; no new values are computed"

    # -- reading ----------------------------------------------------------------------------------

    async def get_or_compute(self, key: K) -> R:
        """The cached value of ``key``, computed with ``await compute(key)`` when missing or expired.

        A hit resets the entry's sliding expiration and returns without yielding to the event loop.
        Concurrent calls for a missing key share one compute.

        Raises:
            RuntimeError: The atom has been closed.
            Exception: Whatever ``compute`` raised, in every caller waiting for that compute; nothing
                is cached then, and the next call computes again.
        """
        self._check_open()
        return await self._cache.get_or_add(key, self._run_compute)

    async def _run_compute(self, key: K) -> R:
        self._computes += 1
        try:
            if self._limiter is None:
                return await self._compute(key)
            async with self._limiter:
                return await self._compute(key)
        except Exception as error:
            self._compute_errors += 1
            self._sink.emit(f"cache.error:{type(error).__name__}", str(key))
            raise

    def try_get(self, key: K) -> tuple[bool, R | None]:
        """Look ``key`` up without computing it; a hit resets its sliding expiration.

        Returns:
            ``(True, value)`` on a hit, ``(False, None)`` when the key is absent or expired.
        """
        return self._cache.try_get(key)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live value; this neither resets its expiration nor counts as a lookup."""
        return key in self._cache

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._cache)

    # -- writing ----------------------------------------------------------------------------------

    def invalidate(self, key: K) -> bool:
        """Remove ``key`` (a compute of it in flight still serves its callers but is not stored).

        Returns:
            Whether a live value was removed.
        """
        return self._cache.invalidate(key)

    def clear(self) -> None:
        """Remove every entry; the counters are kept."""
        self._cache.clear()

    # -- observing --------------------------------------------------------------------------------

    def get_stats(self) -> SlidingCacheStats:
        """What the cache holds now (one pass over the entries) and its counters so far."""
        stats = self._cache.get_stats()
        return SlidingCacheStats(
            total_entries=stats.size,
            valid_entries=stats.size - stats.expired_entries,
            expired_entries=stats.expired_entries,
            hot_entries=stats.hot_entries,
            max_size=stats.max_size,
            hits=stats.hits,
            misses=stats.misses,
            evictions=stats.evictions,
            hit_rate=stats.hit_rate,
            computes=self._computes,
            compute_errors=self._compute_errors,
        )

    def get_signals(self, pattern: str | None = None) -> list[SignalEvent[Any]]:
        """The live ``cache.*`` signals on the atom's sink, oldest first; only those matching ``pattern`` if given."""
        return self._cache.get_signals(pattern)

    @property
    def signals(self) -> SignalSink:
        """The sink the atom emits on (the shared one given, or its private one)."""
        return self._sink

    @property
    def cache(self) -> EphemeralLruCache[K, R]:
        """The underlying ``EphemeralLruCache``."""
        return self._cache

    @property
    def max_size(self) -> int:
        """The most entries held."""
        return self._cache.max_size

    @property
    def sliding_expiration(self) -> float:
        """How long an entry lives after its last access, in seconds."""
        return self._sliding

    @property
    def absolute_expiration(self) -> float | None:
        """The longest an entry lives after it was computed, in seconds (None: no limit)."""
        return self._absolute
