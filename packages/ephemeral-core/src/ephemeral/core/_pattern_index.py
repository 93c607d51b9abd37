"""An index of glob patterns: which of N registered patterns match a signal name, without trying all N."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from ._matcher import GlobPattern, compile_pattern, literal_prefix, split_alternatives

__all__ = ("PatternIndex",)

V = TypeVar("V")

#: One registration of one glob: (registration handle, the glob's match function, value, the glob).
_Entry = tuple[int, Callable[[str], bool], Any, GlobPattern]


class _Node:
    """The patterns whose literal prefix starts with the dotted segments leading to this node."""

    __slots__ = ("children", "partial", "wild")

    def __init__(self) -> None:
        # Segment -> node, for patterns whose literal prefix continues with "<segment>.".
        self.children: dict[str, _Node] = {}
        # Patterns whose literal prefix ends exactly here (the next character is a wildcard).
        self.wild: tuple[_Entry, ...] = ()
        # Patterns whose literal prefix continues with part of a segment, by its first character.
        self.partial: dict[str, tuple[_Entry, ...]] = {}


class PatternIndex(Generic[V]):
    """Glob patterns with values, answering "which values' patterns match this name" in sublinear time.

    Register patterns (``add``) and look a signal name up (``match``): the result is every value whose
    pattern matches the name, in registration order, each value once per registration. The answers are
    those of ``compile_pattern(p).matches(name)`` for every registered pattern ``p``, but a lookup only
    tries the patterns that can match: literal names are found by one dict lookup, and globs are
    bucketed by their literal prefix, segment by segment (``order.*`` under ``order``; ``order.pa*``
    under ``order`` then ``p``). Only patterns that start with a wildcard (``*.timeout``) are tried for
    every name. The cost of a lookup grows with the name's number of segments and the candidates in
    its buckets, not with the number of patterns registered.

    A pattern may hold comma-separated alternatives, as in a ``PatternSet``; a value matched by several
    of its alternatives is returned once. Patterns are checked as ``compile_pattern`` checks them
    (unsupported syntax raises ValueError in ``add``).

    Lookups are lock-free and safe from any thread while another thread adds or removes (each bucket is
    an immutable tuple, replaced whole); ``add`` and ``remove`` are serialised by a lock.
    """

    __slots__ = ("_count", "_exact", "_handles", "_lock", "_root")

    def __init__(self) -> None:
        self._root = _Node()
        self._exact: dict[str, tuple[_Entry, ...]] = {}
        self._handles: dict[int, tuple[_Entry, ...]] = {}
        self._lock = threading.Lock()
        self._count = itertools.count(1)

    def add(self, patterns: Iterable[str] | str, value: V) -> int:
        """Register ``value`` under ``patterns`` (a glob, a comma list of globs, or an iterable of them).

        Returns:
            A handle for ``remove``.

        Raises:
            ValueError: no pattern was given, or one is empty or uses unsupported syntax.
        """
        tokens = split_alternatives(patterns)
        if not tokens:
            raise ValueError(f"patterns must hold at least one glob, got {patterns!r}")
        with self._lock:
            handle = next(self._count)
            globs = [compile_pattern(token) for token in tokens]
            entries = tuple((handle, glob._match, value, glob) for glob in globs)
            for entry in entries:
                self._insert(entry)
            self._handles[handle] = entries
        return handle

    def remove(self, handle: int) -> bool:
        """Remove the registration ``handle`` (from ``add``); False when it is not registered."""
        with self._lock:
            entries = self._handles.pop(handle, None)
            if entries is None:
                return False
            for entry in entries:
                self._delete(entry)
        return True

    def clear(self) -> None:
        """Remove every registration."""
        with self._lock:
            self._root = _Node()
            self._exact = {}
            self._handles = {}

    def __len__(self) -> int:
        """How many registrations the index holds."""
        return len(self._handles)

    def __bool__(self) -> bool:
        return bool(self._handles)

    def __repr__(self) -> str:
        return f"PatternIndex({len(self._handles)} registrations)"

    # -- lookups ----------------------------------------------------------------------------------

    def _candidates(self, name: str) -> list[_Entry]:
        """The registrations that may match ``name`` (a superset of those that do)."""
        found = list(self._exact.get(name, ()))
        node = self._root
        segments = name.split(".")
        last = len(segments) - 1
        for depth, segment in enumerate(segments):
            if node.wild:
                found += node.wild
            if node.partial:
                bucket = node.partial.get(segment[:1])
                if bucket:
                    found += bucket
            if depth == last or not node.children:
                break
            child = node.children.get(segment)
            if child is None:
                break
            node = child
        return found

    def match(self, name: str) -> list[V]:
        """The values of every registration with a pattern matching ``name``, in registration order."""
        found = self._candidates(name)
        if not found:
            return []
        if len(found) == 1:
            _, match, value, _ = found[0]
            return [value] if match(name) else []
        hits = [(handle, value) for handle, match, value, _ in found if match(name)]
        if len(hits) < 2:
            return [value for _, value in hits]
        hits.sort(key=_first)  # buckets are each in registration order; merge them
        values, previous = [], 0
        for handle, value in hits:
            if handle != previous:  # a registration whose alternatives matched twice counts once
                values.append(value)
                previous = handle
        return values

    def matches(self, name: str) -> bool:
        """Whether any registered pattern matches ``name``."""
        return any(match(name) for _, match, _, _ in self._candidates(name))

    __call__ = matches

    # -- maintenance ------------------------------------------------------------------------------

    def _insert(self, entry: _Entry) -> None:
        pattern = entry[3].pattern
        prefix = literal_prefix(pattern)
        if prefix == pattern:
            self._exact[pattern] = (*self._exact.get(pattern, ()), entry)
            return
        *segments, rest = prefix.split(".")
        node = self._root
        for segment in segments:
            child = node.children.get(segment)
            if child is None:
                child = node.children[segment] = _Node()
            node = child
        if rest:
            node.partial[rest[0]] = (*node.partial.get(rest[0], ()), entry)
        else:
            node.wild = (*node.wild, entry)

    def _delete(self, entry: _Entry) -> None:
        pattern = entry[3].pattern
        prefix = literal_prefix(pattern)
        if prefix == pattern:
            _drop(self._exact, pattern, entry)
            return
        *segments, rest = prefix.split(".")
        path = [self._root]
        for segment in segments:
            path.append(path[-1].children[segment])
        node = path[-1]
        if rest:
            _drop(node.partial, rest[0], entry)
        else:
            node.wild = tuple(e for e in node.wild if e is not entry)
        # Prune the nodes left empty, deepest first, so prefixes that come and go leave nothing behind.
        for depth in range(len(segments), 0, -1):
            node = path[depth]
            if node.children or node.partial or node.wild:
                break
            del path[depth - 1].children[segments[depth - 1]]


def _drop(buckets: dict[str, tuple[_Entry, ...]], key: str, entry: _Entry) -> None:
    """Remove ``entry`` from ``buckets[key]``, deleting the bucket when it empties (a new tuple each time)."""
    left = tuple(e for e in buckets.get(key, ()) if e is not entry)
    if left:
        buckets[key] = left
    else:
        buckets.pop(key, None)


def _first(hit: tuple[int, Any]) -> int:
    return hit[0]
