"""A sink window's index by signal name and dotted prefix, brought up to date lazily by the queries.

Emitting stays a bare ``deque.append``: the index catches up on the signals appended since its last
use when a query needs it, so each signal is indexed at most once however many queries follow, and
never when nothing queries the sink.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ._clock import TimeBase
from ._events import SignalEvent

__all__ = ("WindowIndex", "as_event", "operation_id")

#: A window entry; see ``SignalSink``: (name, sequence, key, reading, event or None), or a SignalEvent.
Entry = tuple[Any, ...]
_tuple_new = tuple.__new__


def as_event(entry: Entry, timebase: TimeBase) -> SignalEvent[Any]:
    """The event a window entry stands for (built from a plain entry, whose readings ``timebase`` maps)."""
    if entry.__class__ is SignalEvent:
        return entry
    event = entry[4]
    if event is None:
        return _tuple_new(SignalEvent, (entry[0], entry[1], entry[2], entry[3], timebase, None, None))
    return event  # type: ignore[no-any-return]


def operation_id(entry: Entry) -> int:
    """The operation id of a window entry (a ready event keeps its own)."""
    if entry.__class__ is SignalEvent or entry[4] is None:
        return entry[1]  # type: ignore[no-any-return]
    return entry[4].operation_id  # type: ignore[no-any-return]


class WindowIndex:
    """Buckets of window items by exact name and by every dotted prefix (``"a."``, ``"a.b."``) of the name.

    Each bucket holds the events of the entries (built once, so queries return them without building
    anything), in window order; an index item's sequence number and reading are those of its entry
    (a ready event stored with the sink's reading is kept as its entry, whose slot 4 is the event).
    Items whose entry left the window (pushed out: older than the oldest entry's sequence number) are
    dropped from the front of a bucket when it is read; removals in the middle of the window (retract,
    clear) invalidate the index, which is then rebuilt.
    """

    __slots__ = ("_added", "_by_name", "_by_prefix", "_last", "_lock", "_stale", "_timebase")

    def __init__(self, timebase: TimeBase) -> None:
        self._timebase = timebase
        self._by_name: dict[str, deque[Entry]] = {}
        self._by_prefix: dict[str, deque[Entry]] = {}
        self._last: Entry | None = None
        self._added = 0
        self._stale = True
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget everything: the next query rebuilds the index from the window."""
        self._stale = True

    def items(self, window: deque[Entry], key: str, exact: bool) -> tuple[Entry, ...]:
        """The items of ``key``'s bucket (a name when ``exact``, else a prefix ending with a dot), oldest first.

        They may include items older than the sink's ``max_age``: the caller filters by reading.
        """
        with self._lock:
            bucket = self._bucket(window, key, exact)
            return tuple(bucket) if bucket else ()

    def any_newest_first(self, window: deque[Entry], key: str, exact: bool, accept: Callable[[Entry], bool]) -> bool:
        """Whether ``accept`` holds for an item of ``key``'s bucket, trying the newest first."""
        with self._lock:
            bucket = self._bucket(window, key, exact)
            return bucket is not None and any(accept(item) for item in reversed(bucket))

    def _bucket(self, window: deque[Entry], key: str, exact: bool) -> deque[Entry] | None:
        self._catch_up(window)
        buckets = self._by_name if exact else self._by_prefix
        bucket = buckets.get(key)
        if bucket is None:
            return None
        oldest = _oldest_sequence(window)
        while bucket and bucket[0][1] < oldest:
            bucket.popleft()
        if not bucket:
            del buckets[key]
            return None
        return bucket

    def _catch_up(self, window: deque[Entry]) -> None:
        # Rebuild now and then, so buckets of names that never come back do not keep dead items.
        if self._stale or self._added > 2 * len(window) + 256:
            self._reset()
        try:
            self._catch_up_from(window)
        except RuntimeError:  # an emit from another thread changed the window meanwhile: use a copy
            self._catch_up_from(tuple(window))

    def _catch_up_from(self, entries: deque[Entry] | tuple[Entry, ...]) -> None:
        """Index the entries after the last indexed one (all of them when it left the window)."""
        last, fresh = self._last, []
        for entry in reversed(entries):
            if entry is last:
                break
            fresh.append(entry)
        else:
            if last is not None:  # the last indexed entry left the window: start again
                self._reset()
        self._index(fresh)

    def _reset(self) -> None:
        self._by_name, self._by_prefix = {}, {}
        self._last, self._added, self._stale = None, 0, False

    def _index(self, fresh_newest_first: list[Entry]) -> None:
        if not fresh_newest_first:
            return
        by_name, by_prefix, timebase = self._by_name, self._by_prefix, self._timebase
        for entry in reversed(fresh_newest_first):
            if entry.__class__ is SignalEvent or entry[4] is not None:
                item = entry  # an event already, or a ready event's entry (its slot 4 is the event)
            else:
                item = _tuple_new(SignalEvent, (entry[0], entry[1], entry[2], entry[3], timebase, None, None))
            name: str = entry[0]
            bucket = by_name.get(name)
            if bucket is None:
                bucket = by_name[name] = deque()
            bucket.append(item)
            dot = name.find(".")
            while dot >= 0:
                prefix = name[: dot + 1]
                bucket = by_prefix.get(prefix)
                if bucket is None:
                    bucket = by_prefix[prefix] = deque()
                bucket.append(item)
                dot = name.find(".", dot + 1)
        self._added += len(fresh_newest_first)
        self._last = fresh_newest_first[0]


def _oldest_sequence(window: deque[Entry]) -> int:
    try:
        return window[0][1]  # type: ignore[no-any-return]
    except IndexError:
        return 1 << 62
