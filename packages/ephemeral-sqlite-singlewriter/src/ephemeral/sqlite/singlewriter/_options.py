"""SqliteSingleWriterOptions: how a single writer caches reads, samples signals and sets up its connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ephemeral.core.lowlevel import check_int, to_seconds

__all__ = ("SqliteSingleWriterOptions",)

#: SQLite takes the busy timeout in milliseconds, as a 32-bit int.
_MAX_BUSY_MS = 2**31 - 1


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SqliteSingleWriterOptions:
    """How a ``SqliteSingleWriter`` caches reads, samples its signals and sets up its connections.

    Every field is checked at construction. Durations accept seconds or a ``timedelta`` and are stored
    as float seconds, so two options that mean the same compare equal.

    Attributes:
        cache_size_limit: The most cached read results; beyond it the least recently used goes.
        default_cache_duration: How long a cached result lives after its last access, unless the read
            gives its own ``sliding_expiration``.
        hot_key_extension: The time to live of a hot key, which replaces the sliding one on each hit.
        hot_access_threshold: Accesses (the load counts as the first) that make a key hot.
        max_tracked_writes: How many recent writes ``get_write_snapshot()`` keeps.
        sample_rate: Emit the lifecycle signals of 1 call in ``sample_rate`` (reads and writes share
            one counter: the first call, then every ``sample_rate``-th). Errors, ``cache.set`` and
            ``cache.invalidate`` signals are never sampled, and the stats are always exact.
        busy_timeout: How long a connection waits for a lock held by another connection or process
            before failing with "database is locked" (``PRAGMA busy_timeout``); 0 fails at once.
        enable_write_ahead_logging: Switch the database to WAL (``PRAGMA journal_mode=WAL``) when the
            writer opens, so reads run alongside the writer. Ignored for in-memory databases.
        enforce_foreign_keys: ``PRAGMA foreign_keys=ON`` on every connection.
        read_connections: The most read connections open (and reads running) at once.

    Raises:
        TypeError: A field has the wrong type (the message names it).
        ValueError: A field is out of range (the message names it).
    """

    cache_size_limit: int = 1000
    default_cache_duration: float | timedelta = 300.0
    hot_key_extension: float | timedelta = 1800.0
    hot_access_threshold: int = 3
    max_tracked_writes: int = 128
    sample_rate: int = 1
    busy_timeout: float | timedelta = 10.0
    enable_write_ahead_logging: bool = True
    enforce_foreign_keys: bool = True
    read_connections: int = 4

    def __post_init__(self) -> None:
        check_int(self.cache_size_limit, "cache_size_limit")
        check_int(self.hot_access_threshold, "hot_access_threshold")
        check_int(self.max_tracked_writes, "max_tracked_writes")
        check_int(self.sample_rate, "sample_rate")
        check_int(self.read_connections, "read_connections")
        _flag("enable_write_ahead_logging", self.enable_write_ahead_logging)
        _flag("enforce_foreign_keys", self.enforce_foreign_keys)
        durations = {
            "default_cache_duration": to_seconds(self.default_cache_duration, "default_cache_duration"),
            "hot_key_extension": to_seconds(self.hot_key_extension, "hot_key_extension"),
            "busy_timeout": to_seconds(self.busy_timeout, "busy_timeout", allow_zero=True),
        }
        if durations["busy_timeout"] * 1000 > _MAX_BUSY_MS:
            raise ValueError(f"busy_timeout must be at most {_MAX_BUSY_MS // 1000} seconds, got {self.busy_timeout!r}")
        for name, seconds in durations.items():
            object.__setattr__(self, name, seconds)
