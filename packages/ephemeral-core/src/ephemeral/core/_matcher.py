"""Glob matching for signal names: anchored, case-sensitive, linear in the length of the value."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = ("GlobPattern", "PatternSet", "StringPatternMatcher", "compile_pattern")


class GlobPattern:
    """One compiled glob: ``*`` matches any run of characters (dots included), ``?`` exactly one.

    A pattern with neither wildcard is an exact comparison. There is no escaping, no character
    class and no case folding. Matching never backtracks more than one star at a time: each
    star-free segment is located once, left to right, so the cost is linear in the value for a
    given pattern.
    """

    __slots__ = ("_match", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._match = _compile(pattern)

    def matches(self, value: str) -> bool:
        """Return True when ``value`` matches the whole pattern."""
        return self._match(value)

    __call__ = matches

    def __repr__(self) -> str:
        return f"GlobPattern({self.pattern!r})"


def _segment_at(value: str, segment: str, start: int) -> bool:
    """Whether ``segment`` (with ``?`` as any character) matches ``value`` at ``start``."""
    if start + len(segment) > len(value):
        return False
    return all(not (char != "?" and value[start + offset] != char) for offset, char in enumerate(segment))


def _find_segment(value: str, segment: str, start: int, end: int) -> int:
    """Leftmost index >= start where ``segment`` matches and ends by ``end``, or -1."""
    if "?" not in segment:
        return value.find(segment, start, end)
    last = end - len(segment)
    position = start
    while position <= last:
        if _segment_at(value, segment, position):
            return position
        position += 1
    return -1


def _compile(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    if pattern == "*":
        return lambda value: True
    parts = pattern.split("*")
    if len(parts) == 1:  # only '?' wildcards
        size = len(pattern)
        return lambda value: len(value) == size and _segment_at(value, pattern, 0)
    head, middle, tail = parts[0], [p for p in parts[1:-1] if p], parts[-1]
    if not middle and "?" not in head and "?" not in tail:
        minimum = len(head) + len(tail)
        if not tail:
            return lambda value: value.startswith(head)
        if not head:
            return lambda value: value.endswith(tail)
        return lambda value: len(value) >= minimum and value.startswith(head) and value.endswith(tail)
    minimum = len(head) + len(tail) + sum(len(p) for p in middle)

    def match(value: str) -> bool:
        if len(value) < minimum or not _segment_at(value, head, 0):
            return False
        end = len(value) - len(tail)
        if not _segment_at(value, tail, end):
            return False
        position = len(head)
        for segment in middle:
            found = _find_segment(value, segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    return match


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> GlobPattern:
    """Return the compiled form of ``pattern`` (cached)."""
    return GlobPattern(pattern)


class PatternSet:
    """A set of glob patterns; each element may itself be a comma-separated list of alternatives.

    Blank elements and blank alternatives are ignored. An empty set matches nothing.
    """

    __slots__ = ("_exact", "_globs", "patterns")

    def __init__(self, patterns: Iterable[str] | str | None) -> None:
        if isinstance(patterns, str):
            patterns = (patterns,)
        tokens: list[str] = []
        for element in patterns or ():
            if not isinstance(element, str):
                raise TypeError(f"patterns must be strings, got {element!r}")
            tokens.extend(token.strip() for token in element.split(","))
        self.patterns: tuple[str, ...] = tuple(dict.fromkeys(t for t in tokens if t))
        self._exact = frozenset(p for p in self.patterns if "*" not in p and "?" not in p)
        self._globs = tuple(compile_pattern(p) for p in self.patterns if p not in self._exact)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"PatternSet({list(self.patterns)!r})"

    def matches(self, value: str) -> bool:
        """Return True when ``value`` matches any pattern of the set."""
        if value in self._exact:
            return True
        return any(glob.matches(value) for glob in self._globs)

    __call__ = matches


class StringPatternMatcher:
    """The glob rules used for every signal pattern in ephemeral."""

    @staticmethod
    def matches(value: str, pattern: str) -> bool:
        """Return True when ``value`` matches ``pattern`` (anchored glob, ``*`` and ``?``)."""
        return compile_pattern(pattern).matches(value)

    @staticmethod
    def matches_any(value: str, patterns: Iterable[str] | str | None) -> bool:
        """Return True when ``value`` matches any of ``patterns``.

        Each element may hold comma-separated alternatives. None or an empty collection matches
        nothing.
        """
        if not patterns:
            return False
        return PatternSet(patterns).matches(value)
