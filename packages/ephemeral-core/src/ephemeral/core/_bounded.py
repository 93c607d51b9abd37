"""BoundedMap: an LRU map holding at most ``max_size`` entries, whose stale entries drop from the old end."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, ItemsView, Iterator, ValuesView
from typing import Generic, TypeVar, overload

from ._checks import check_int

__all__ = ("BoundedMap",)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_MISSING = object()


class BoundedMap(Generic[K, V]):
    """A map kept in recency order (least recently put or touched first) and bounded by ``max_size``.

    ``put`` stores at the recent end and evicts from the old end beyond ``max_size`` (and, given ``now``
    and an ``expires_at``, the expired entries there); ``touch`` moves an entry to the recent end;
    ``drop_while(stale)`` evicts from the old end while ``stale(value)`` holds, which is exact for time
    limits that restart on every put or touch (an entry's age, a sliding expiry). Each eviction calls
    ``on_evict(key, value)``. Reads (``get``, ``in``, ``[]``, iteration) neither touch nor evict; removing
    with ``pop``/``del``/``clear`` is not an eviction.

    The entries live in ``data``, a plain ``OrderedDict``: a hot path may bind ``data.get`` and
    ``data.move_to_end`` (C methods) instead of going through the map's own methods. Not thread-safe
    (guard it with the owner's lock).

    Args:
        max_size: The most entries held.
        on_evict: Called with each evicted key and value.
        expires_at: A value's expiry (a clock reading), for ``put(..., now)`` and ``drop_expired(now)``.

    Raises:
        TypeError: ``max_size`` is not an int, or ``on_evict`` or ``expires_at`` is not callable.
        ValueError: ``max_size`` < 1.
    """

    __slots__ = ("data", "expires_at", "max_size", "on_evict")

    def __init__(
        self,
        max_size: int,
        *,
        on_evict: Callable[[K, V], object] | None = None,
        expires_at: Callable[[V], float] | None = None,
    ) -> None:
        self.max_size = check_int(max_size, "max_size")
        if on_evict is not None and not callable(on_evict):
            raise TypeError(f"on_evict must be callable or None, got {on_evict!r}")
        if expires_at is not None and not callable(expires_at):
            raise TypeError(f"expires_at must be callable or None, got {expires_at!r}")
        self.on_evict = on_evict
        self.expires_at = expires_at
        self.data: OrderedDict[K, V] = OrderedDict()

    def put(self, key: K, value: V, now: float | None = None) -> None:
        """Store ``value`` at the recent end (replacing ``key``'s entry), then evict from the old end.

        Evicts beyond ``max_size``, then, given ``now`` and an ``expires_at``, the expired entries at the
        old end (``expires_at(value) <= now``).
        """
        data = self.data
        data.pop(key, None)
        data[key] = value
        on_evict = self.on_evict
        while len(data) > self.max_size:  # inline, as the rest: a cache's every miss stores here
            evicted_key, evicted = data.popitem(last=False)
            if on_evict is not None:
                on_evict(evicted_key, evicted)
        expires_at = self.expires_at
        if now is not None and expires_at is not None:
            for oldest in data.values():
                if expires_at(oldest) <= now:
                    self.drop_expired(now)
                break

    def drop_expired(self, now: float) -> int:
        """Evict the entries at the old end whose ``expires_at(value) <= now``; return how many.

        Raises:
            TypeError: The map was made without ``expires_at``.
        """
        expires_at = self.expires_at
        if expires_at is None:
            raise TypeError("drop_expired needs a BoundedMap made with expires_at=")
        return self.drop_while(lambda value: expires_at(value) <= now)

    def touch(self, key: K) -> V | None:
        """Move ``key`` to the recent end and return its value; None when absent."""
        data = self.data
        if key not in data:
            return None
        data.move_to_end(key)
        return data[key]

    def oldest(self) -> tuple[K, V] | None:
        """The least recent entry, or None when empty."""
        for key, value in self.data.items():
            return key, value
        return None

    def evict(self, key: K) -> V:
        """Evict ``key``'s entry (``on_evict`` is told) and return its value.

        Raises:
            KeyError: ``key`` is absent.
        """
        value = self.data.pop(key)
        if self.on_evict is not None:
            self.on_evict(key, value)
        return value

    def evict_oldest(self) -> tuple[K, V]:
        """Evict the least recent entry and return it (``on_evict`` is told).

        Raises:
            KeyError: The map is empty.
        """
        key, value = self.data.popitem(last=False)
        if self.on_evict is not None:
            self.on_evict(key, value)
        return key, value

    def drop_while(self, stale: Callable[[V], bool]) -> int:
        """Evict from the old end while the oldest value is ``stale``; return how many were evicted."""
        data = self.data
        dropped = 0
        while data and stale(next(iter(data.values()))):
            self.evict_oldest()
            dropped += 1
        return dropped

    # -- reading and removing, as a dict ----------------------------------------------------------

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: object = None) -> object:
        """``key``'s value (without touching it), or ``default``."""
        return self.data.get(key, default)

    @overload
    def pop(self, key: K) -> V: ...
    @overload
    def pop(self, key: K, default: D) -> V | D: ...
    def pop(self, key: K, default: object = _MISSING) -> object:
        """Remove ``key`` (not an eviction) and return its value, or ``default``.

        Raises:
            KeyError: ``key`` is absent and no default was given.
        """
        if default is _MISSING:
            return self.data.pop(key)
        return self.data.pop(key, default)

    def clear(self) -> None:
        """Remove every entry (not evictions)."""
        self.data.clear()

    def items(self) -> ItemsView[K, V]:
        """The entries, least recent first."""
        return self.data.items()

    def values(self) -> ValuesView[V]:
        """The values, least recent first."""
        return self.data.values()

    def __getitem__(self, key: K) -> V:
        return self.data[key]

    def __delitem__(self, key: K) -> None:
        del self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def __iter__(self) -> Iterator[K]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"<BoundedMap {len(self.data)}/{self.max_size}>"
