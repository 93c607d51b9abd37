"""EphemeralLruCache: an LRU cache with sliding expiry, longer life for hot keys, single-flight loads and signals."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from operator import attrgetter
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import anyio

from ._bounded import BoundedMap
from ._checks import check_int
from ._clock import loop_clock, to_seconds
from ._events import SignalEvent
from ._sink import SignalSink

__all__ = ("CacheStats", "EphemeralLruCache", "EphemeralLruCacheOptions")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: How long the private signal window of a cache keeps its signals, in seconds.
SIGNAL_WINDOW_AGE = 300.0

_monotonic = time.monotonic


@dataclass(frozen=True, kw_only=True)
class EphemeralLruCacheOptions:
    """How an ``EphemeralLruCache`` expires, evicts and reports. Every field is checked at construction.

    Attributes:
        default_ttl: How long an entry lives after its last access (seconds or a timedelta). Every hit
            moves its expiry to now + ``default_ttl``.
        hot_key_extension: The time to live of a hot key, which *replaces* ``default_ttl`` on each hit.
        absolute_expiration: The longest an entry lives from when it was stored, however often it is
            hit (hot keys included); None (the default) sets no such cap.
        hot_access_threshold: How many accesses make a key hot; the insert counts as the first, so with
            3 the second hit after a load makes the key hot.
        max_size: The most entries held; beyond it the least recently used entry is evicted.
        sample_rate: Emit 1 in ``sample_rate`` signals of each kind (``cache.hit``, ``cache.hot``,
            ``cache.miss``, ``cache.evict``): the first of each kind, then every ``sample_rate``-th.
            The counters in ``get_stats()`` are always exact.
        signals: A shared ``SignalSink`` to emit on; without one the cache keeps a private sink of
            ``2 * max_size`` signals for 5 minutes.
        emit_signals: False runs the cache silently: it emits no signal at all (``get_signals``
            returns nothing); the counters in ``get_stats()`` still count.
            For a component that uses the cache internally and reports on its own signals.
        clock: A monotonic clock in seconds. By default, the clock of the event loop the cache is made
            in (so virtual time drives its TTLs in tests), or ``time.monotonic()`` for a cache made
            outside any loop (plain sync code); pass one to choose explicitly.

    Raises:
        TypeError: A field has the wrong type.
        ValueError: A field is out of range (durations must be > 0, counts >= 1).
    """

    default_ttl: float | timedelta = 300.0
    hot_key_extension: float | timedelta = 1800.0
    absolute_expiration: float | timedelta | None = None
    hot_access_threshold: int = 3
    max_size: int = 10_000
    sample_rate: int = 1
    signals: SignalSink | None = None
    clock: Callable[[], float] | None = None
    emit_signals: bool = True

    def __post_init__(self) -> None:
        to_seconds(self.default_ttl, "default_ttl")
        to_seconds(self.hot_key_extension, "hot_key_extension")
        if self.absolute_expiration is not None:
            to_seconds(self.absolute_expiration, "absolute_expiration")
        check_int(self.hot_access_threshold, "hot_access_threshold")
        check_int(self.max_size, "max_size")
        check_int(self.sample_rate, "sample_rate")
        if self.signals is not None and not isinstance(self.signals, SignalSink):
            raise TypeError(f"signals must be a SignalSink or None, got {self.signals!r}")
        if self.clock is not None and not callable(self.clock):
            raise TypeError(f"clock must be callable or None, got {self.clock!r}")
        if not isinstance(self.emit_signals, bool):
            raise TypeError(f"emit_signals must be a bool, got {self.emit_signals!r}")


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache: what it holds and how it has been used since it was created.

    Attributes:
        size: Entries held, expired ones not yet dropped included.
        hot_entries: Live entries accessed at least ``hot_access_threshold`` times.
        expired_entries: Entries still held whose time is up (dropped when next met or evicted).
        hits: Lookups that found a live value.
        misses: Lookups that found none (a ``get_or_add`` that loaded or waited for a load included).
        evictions: Entries removed because they expired or because the cache was full.
        hit_rate: ``hits / (hits + misses)``, 0.0 before any lookup.
        max_size: The most entries the cache holds.
    """

    size: int
    hot_entries: int
    expired_entries: int
    hits: int
    misses: int
    evictions: int
    hit_rate: float
    max_size: int

    @property
    def total_entries(self) -> int:
        """The seed's name for ``size``."""
        return self.size


#: An entry's expiry, read in C (the store path is measured against cachetools).
_expires_at = attrgetter("expires")


def _silent(signal: str, key: str) -> None:
    """The emit of a silent cache."""


class _Entry(Generic[V]):
    """A cached value: its expiry (capped by its deadline), the TTL a hit gives it, the accesses it lacks to be hot."""

    __slots__ = ("cold", "deadline", "expires", "ttl", "value")

    def __init__(self, value: V, expires: float, ttl: float, cold: int, deadline: float) -> None:
        self.value = value
        self.expires = expires  # never later than deadline
        self.ttl = ttl  # becomes hot_key_extension when the entry turns hot
        self.cold = cold  # accesses still needed to be hot; 0 once hot
        self.deadline = deadline  # stored at + absolute_expiration, or infinity


class _Load(Generic[V]):
    """One load in flight: its waiters park on ``done`` and then read the outcome."""

    __slots__ = ("abandoned", "done", "error", "traceback", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: V | None = None
        self.error: Exception | None = None
        self.traceback: TracebackType | None = None
        self.abandoned = False


class EphemeralLruCache(Generic[K, V]):
    """An LRU cache whose entries slide: every hit extends a key's life, and hot keys live longer.

    Each hit moves the entry's expiry to now + its time to live (``default_ttl``, or the ``ttl`` given
    when it was stored), or to now + ``hot_key_extension`` once the key has been accessed
    ``hot_access_threshold`` times, but never past ``absolute_expiration`` after it was stored;
    expiry is checked on every read, so an expired value is never returned. Beyond ``max_size``
    entries the least recently used one is evicted.

    ``get_or_add`` loads a missing key once however many tasks ask for it at the same time: the first
    caller runs the factory and the others wait for its outcome. If the factory raises, every waiter
    gets the exception and nothing is cached. Cancelling a waiter leaves the load running for the others;
    if the loading caller itself is cancelled, the load is abandoned and the next waiter runs the
    factory again. A hit returns without yielding to the event loop.

    The cache emits ``cache.hit`` (a hit on a key not yet hot), ``cache.hot`` (a hit on a hot key),
    ``cache.miss``, ``cache.evict`` (expired or pushed out) and ``cache.invalidate``, each with
    ``key=str(key)``, sampled per kind by ``sample_rate`` (``cache.invalidate`` is never sampled).

    Time is the clock of the loop the cache was made in, or ``time.monotonic()``; see
    ``EphemeralLruCacheOptions.clock``. The cache is meant for one event loop thread, or for
    plain sync code (``try_get``, ``set``, ...); it is not thread-safe, like ``cachetools`` caches. Every
    operation is O(1) except ``get_stats`` and ``get_signals``.
    """

    __slots__ = (
        "_absolute",
        "_clock",
        "_default_ttl",
        "_emit",
        "_entries",
        "_evictions",
        "_find",
        "_hot_hits",
        "_hot_threshold",
        "_hot_ttl",
        "_loading",
        "_max_size",
        "_misses",
        "_options",
        "_phase",
        "_plain_hits",
        "_rate",
        "_sink",
        "_touch",
    )

    def __init__(self, options: EphemeralLruCacheOptions | None = None) -> None:
        if options is None:
            options = EphemeralLruCacheOptions()
        elif not isinstance(options, EphemeralLruCacheOptions):
            raise TypeError(f"options must be EphemeralLruCacheOptions or None, got {options!r}")
        self._options = options
        self._default_ttl = to_seconds(options.default_ttl, "default_ttl")
        self._hot_ttl = to_seconds(options.hot_key_extension, "hot_key_extension")
        absolute = options.absolute_expiration
        self._absolute = math.inf if absolute is None else to_seconds(absolute, "absolute_expiration")
        self._hot_threshold = options.hot_access_threshold
        self._max_size = options.max_size
        self._rate = options.sample_rate
        self._phase = 1 % options.sample_rate  # the 1st, (N+1)th, (2N+1)th ... of each kind is emitted
        self._clock: Callable[[], float] = options.clock if options.clock is not None else loop_clock()
        self._sink = (
            options.signals
            if options.signals is not None
            else SignalSink(max_capacity=2 * options.max_size if options.emit_signals else 1, max_age=SIGNAL_WINDOW_AGE)
        )
        self._emit: Callable[[str, str], object] = self._sink.emit if options.emit_signals else _silent
        self._entries: BoundedMap[K, _Entry[V]] = BoundedMap(
            options.max_size, on_evict=self._evicted, expires_at=_expires_at
        )
        # Bound once: the hit path is measured against cachetools (benchmarks/bench_cache.py).
        self._find = self._entries.data.get
        self._touch = self._entries.data.move_to_end
        self._loading: dict[K, _Load[V]] = {}
        self._plain_hits = 0
        self._hot_hits = 0
        self._misses = 0
        self._evictions = 0

    # -- reading ----------------------------------------------------------------------------------

    def try_get(self, key: K) -> tuple[bool, V | None]:
        """Look ``key`` up without loading it; a hit slides its expiry.

        Returns:
            ``(True, value)`` on a hit, ``(False, None)`` when the key is absent or expired.
        """
        # The hit path is inline here and in get_or_add: a call costs a fifth of a hit (bench_cache.py).
        entry = self._find(key)
        if entry is not None:
            now = self._clock()
            if now < entry.expires:
                self._touch(key)
                if entry.cold:
                    self._cold_hit(key, entry, now)
                else:
                    expires = now + entry.ttl
                    entry.expires = expires if expires < entry.deadline else entry.deadline
                    hits = self._hot_hits = self._hot_hits + 1
                    if hits % self._rate == self._phase:
                        self._emit("cache.hot", str(key))
                return True, entry.value
            self._evict(key)
        self._miss(key)
        return False, None

    def _cold_hit(self, key: K, entry: _Entry[V], now: float) -> None:
        """Count a hit on a key not yet hot: it slides by its own TTL, or turns hot with this access."""
        cold = entry.cold = entry.cold - 1
        if not cold:
            entry.ttl = self._hot_ttl
        expires = now + entry.ttl
        entry.expires = expires if expires < entry.deadline else entry.deadline
        if cold:
            hits = self._plain_hits = self._plain_hits + 1
            if hits % self._rate == self._phase:
                self._emit("cache.hit", str(key))
            return
        hits = self._hot_hits = self._hot_hits + 1
        if hits % self._rate == self._phase:
            self._emit("cache.hot", str(key))

    def _miss(self, key: K) -> None:
        misses = self._misses = self._misses + 1
        if misses % self._rate == self._phase:
            self._emit("cache.miss", str(key))

    async def get_or_add(
        self, key: K, factory: Callable[[K], Awaitable[V]], *, ttl: float | timedelta | None = None
    ) -> V:
        """The value of ``key``, loaded with ``await factory(key)`` and stored when missing or expired.

        Concurrent calls for a missing key share one load: the factory runs once and every caller gets
        its value. A hit slides the key's expiry and returns without yielding to the event loop.

        Args:
            key: The key.
            factory: ``async def factory(key) -> value``, awaited on a miss.
            ttl: The time to live of a loaded entry (default: ``default_ttl``); a hit keeps the
                entry's own.

        Returns:
            The cached or loaded value.

        Raises:
            Exception: Whatever the factory raised, in every caller waiting on that load; nothing is
                cached then.
        """
        seconds = self._default_ttl if ttl is None else to_seconds(ttl, "ttl")
        entry = self._find(key)
        if entry is not None:
            now = self._clock()
            if now < entry.expires:
                self._touch(key)
                if entry.cold:
                    self._cold_hit(key, entry, now)
                else:
                    expires = now + entry.ttl
                    entry.expires = expires if expires < entry.deadline else entry.deadline
                    hits = self._hot_hits = self._hot_hits + 1
                    if hits % self._rate == self._phase:
                        self._emit("cache.hot", str(key))
                return entry.value
            self._evict(key)
        self._miss(key)
        while True:
            load = self._loading.get(key)
            if load is None:
                return await self._load(key, factory, seconds)
            await load.done.wait()
            if load.error is not None:
                # Each waiter raises the shared exception afresh, from the load's own traceback.
                raise load.error.with_traceback(load.traceback)
            if not load.abandoned:
                return load.value  # type: ignore[return-value]  # set when not abandoned
            # The loading caller was cancelled: take over, unless a value was stored meanwhile.
            entry = self._entries.get(key)
            if entry is not None and self._clock() < entry.expires:
                return entry.value

    async def _load(self, key: K, factory: Callable[[K], Awaitable[V]], ttl: float) -> V:
        load: _Load[V] = _Load()
        self._loading[key] = load
        try:
            value = await factory(key)
        except Exception as error:
            load.error, load.traceback = error, error.__traceback__
            raise
        except BaseException:  # cancelled (or interrupted): a waiter will run the factory again
            load.abandoned = True
            raise
        else:
            load.value = value
            # Store the value unless set(), invalidate() or clear() detached this load meanwhile.
            if self._loading.get(key) is load:
                self._store(key, value, ttl)
            return value
        finally:
            if self._loading.get(key) is load:
                del self._loading[key]
            load.done.set()

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a live value; unlike a hit, this neither slides its expiry nor counts."""
        entry = self._entries.get(cast(K, key))
        if entry is None:
            return False
        if self._clock() < entry.expires:
            return True
        self._evict(cast(K, key))
        return False

    def __len__(self) -> int:
        """How many entries the cache holds, expired ones not yet dropped included."""
        return len(self._entries)

    # -- writing ----------------------------------------------------------------------------------

    def set(self, key: K, value: V, *, ttl: float | timedelta | None = None) -> None:
        """Store ``value`` under ``key`` as a fresh entry, replacing any previous one.

        A load of ``key`` in flight still hands its value to its waiters but no longer stores it.

        Args:
            key: The key.
            value: The value.
            ttl: Its time to live (default: ``default_ttl``).
        """
        self._loading.pop(key, None)
        self._store(key, value, self._default_ttl if ttl is None else to_seconds(ttl, "ttl"))

    def _store(self, key: K, value: V, ttl: float) -> None:
        entries = self._entries
        now = self._clock()
        cold = self._hot_threshold - 1  # the insert is the first access
        deadline = now + self._absolute
        expires = now + ttl
        # Evicts from the least recently used end beyond max_size, then the expired entries there.
        entries.put(
            key,
            _Entry(value, expires if expires < deadline else deadline, ttl if cold else self._hot_ttl, cold, deadline),
            now,
        )

    def _evict(self, key: K) -> None:
        self._entries.evict(key)

    def _evicted(self, key: K, entry: _Entry[V]) -> None:
        evictions = self._evictions = self._evictions + 1
        if evictions % self._rate == self._phase:
            self._emit("cache.evict", str(key))

    def invalidate(self, key: K) -> bool:
        """Remove ``key``; a load of it in flight still serves its waiters but is no longer stored.

        Returns:
            Whether a live value was removed (an expired one is dropped too, as an eviction).
        """
        self._loading.pop(key, None)
        if key not in self:
            return False
        del self._entries[key]
        self._emit("cache.invalidate", str(key))
        return True

    def clear(self) -> None:
        """Remove every entry and detach every load in flight; the counters are kept."""
        self._entries.clear()
        self._loading.clear()

    # -- observing --------------------------------------------------------------------------------

    @property
    def max_size(self) -> int:
        """The most entries the cache holds."""
        return self._max_size

    @property
    def options(self) -> EphemeralLruCacheOptions:
        """The options the cache was created with."""
        return self._options

    @property
    def signals(self) -> SignalSink:
        """The sink the cache emits on (the shared one from the options, or its private one)."""
        return self._sink

    def get_stats(self) -> CacheStats:
        """Counts of what the cache holds (one pass over the entries) and of its lookups so far."""
        now = self._clock()
        expired = hot = 0
        for entry in self._entries.values():
            if entry.expires <= now:
                expired += 1
            elif not entry.cold:
                hot += 1
        hits = self._plain_hits + self._hot_hits
        lookups = hits + self._misses
        return CacheStats(
            size=len(self._entries),
            hot_entries=hot,
            expired_entries=expired,
            hits=hits,
            misses=self._misses,
            evictions=self._evictions,
            hit_rate=hits / lookups if lookups else 0.0,
            max_size=self._max_size,
        )

    def get_signals(self, pattern: str | None = None) -> list[SignalEvent[Any]]:
        """The live ``cache.*`` signals on the cache's sink, oldest first; only those matching ``pattern`` if given.

        On a shared sink these include the signals of every cache emitting on it; a silent cache
        (``emit_signals=False``) returns none.
        """
        if not self._options.emit_signals:
            return []
        if pattern is None:
            return self._sink.sense("cache.*")
        return [event for event in self._sink.sense(pattern) if event.signal.startswith("cache.")]
