"""SlidingCacheAtom: an async compute cache whose entries slide on every hit, capped by an absolute expiration.

Misses of one key share one compute, the size is bounded, expiry is checked at read time and the cache
emits ``cache.*`` signals.
"""

from __future__ import annotations

from ._slidingcache import SlidingCacheAtom as SlidingCacheAtom, SlidingCacheStats as SlidingCacheStats

__all__ = ("SlidingCacheAtom", "SlidingCacheStats")
