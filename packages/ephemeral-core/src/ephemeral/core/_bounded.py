"""BoundedMap: an LRU map holding at most ``max_size`` entries, whose stale entries drop from the old end."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from ._checks import check_int

__all__ = ("BoundedMap",)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMap(OrderedDict[K, V]):
    """An ``OrderedDict`` kept in recency order (least recently put or touched first) and bounded.

    ``put`` stores at the recent end and evicts from the old end beyond ``max_size``; ``touch`` moves
    an entry to the recent end; ``drop_while(stale)`` evicts from the old end while ``stale(value)``
    holds, which is exact for time limits that restart on every put or touch (an entry's age, a
    sliding expiry). Each eviction calls ``on_evict(key, value)``. Plain dict reads (``get``, ``in``,
    ``[]``, iteration) neither touch nor evict, and run at ``OrderedDict`` speed: a cache binds them on
    its hot path. Removing with ``pop``/``del``/``clear`` is not an eviction.

    Not thread-safe (guard it with the owner's lock).

    Args:
        max_size: The most entries held.
        on_evict: Called with each evicted key and value.

    Raises:
        TypeError: ``max_size`` is not an int or ``on_evict`` is not callable.
        ValueError: ``max_size`` < 1.
    """

    __slots__ = ("max_size", "on_evict")

    def __init__(self, max_size: int, *, on_evict: Callable[[K, V], object] | None = None) -> None:
        super().__init__()
        self.max_size = check_int(max_size, "max_size")
        if on_evict is not None and not callable(on_evict):
            raise TypeError(f"on_evict must be callable or None, got {on_evict!r}")
        self.on_evict = on_evict

    def put(self, key: K, value: V) -> None:
        """Store ``value`` at the recent end (replacing ``key``'s entry), then evict beyond ``max_size``."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.max_size:
            self.evict_oldest()

    def touch(self, key: K) -> V | None:
        """Move ``key`` to the recent end and return its value; None when absent."""
        value = self.get(key)
        if value is not None or key in self:
            self.move_to_end(key)
        return value

    def oldest(self) -> tuple[K, V] | None:
        """The least recent entry, or None when empty."""
        for key in self:
            return key, self[key]
        return None

    def evict_oldest(self) -> tuple[K, V]:
        """Evict the least recent entry and return it (``on_evict`` is told).

        Raises:
            KeyError: The map is empty.
        """
        key, value = self.popitem(last=False)
        if self.on_evict is not None:
            self.on_evict(key, value)
        return key, value

    def evict(self, key: K) -> V:
        """Evict ``key``'s entry (``on_evict`` is told) and return its value.

        Raises:
            KeyError: ``key`` is absent.
        """
        value = self.pop(key)
        if self.on_evict is not None:
            self.on_evict(key, value)
        return value

    def drop_while(self, stale: Callable[[V], bool]) -> int:
        """Evict from the old end while the oldest value is ``stale``; return how many were evicted."""
        dropped = 0
        while self:
            key = next(iter(self))
            if not stale(self[key]):
                break
            self.evict(key)
            dropped += 1
        return dropped

    def __repr__(self) -> str:
        return f"<BoundedMap {len(self)}/{self.max_size}>"
