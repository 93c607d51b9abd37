"""Glob matching for signal names: anchored, case-sensitive, linear in the length of the value."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = ("GlobPattern", "PatternSet", "StringPatternMatcher", "compile_pattern", "literal_prefix")

#: Characters a glob may not contain: character classes (``[a-z]``) are not supported.
_UNSUPPORTED = frozenset("[]")
#: A comma inside braces: shell-style ``{a,b}`` alternatives, which splitting a list at commas would cut apart.
_BRACED_COMMA = re.compile(r"\{[^{}]*,[^{}]*\}")
_SUPPORTED = "'*' (any run of characters, dots included), '?' (exactly one character) and literal characters"


def check_pattern(pattern: object, argument: str = "pattern") -> str:
    """Return ``pattern`` when it is a glob ephemeral supports; raise otherwise.

    Raises:
        TypeError: ``pattern`` is not a str.
        ValueError: ``pattern`` is empty or uses unsupported syntax (``[``, ``]``).
    """
    if not isinstance(pattern, str):
        raise TypeError(f"{argument} must be a str glob, got {pattern!r}")
    if not pattern:
        raise ValueError(f"{argument} must be a non-empty glob; supported: {_SUPPORTED}")
    if not _UNSUPPORTED.isdisjoint(pattern):
        raise ValueError(
            f"unsupported glob syntax in {argument} {pattern!r}: character classes ('[', ']') are not supported; "
            f"supported: {_SUPPORTED}"
        )
    return pattern


def literal_prefix(pattern: str) -> str:
    """The characters of ``pattern`` before its first wildcard (all of it when it has none)."""
    for index, char in enumerate(pattern):
        if char == "*" or char == "?":
            return pattern[:index]
    return pattern


class GlobPattern:
    """One compiled glob: ``*`` matches any run of characters (dots included), ``?`` exactly one.

    A pattern with neither wildcard is an exact comparison. There is no escaping, no character class
    (``[`` and ``]`` raise ValueError) and no case folding. The answer is always that of
    ``fnmatch.fnmatchcase`` for the same pattern.

    Matching never backtracks across a star: the text before the first star must start the value, the
    text after the last star must end it, and each star-free segment in between is located once, at
    its leftmost place after the previous one, by one compiled regular expression (each segment sits in
    an atomic lookahead, so a failed segment is never retried elsewhere). The cost is therefore linear
    in the length of the value for a given pattern, and runs in C.

    Raises:
        TypeError: ``pattern`` is not a str.
        ValueError: ``pattern`` is empty or uses unsupported syntax.
    """

    __slots__ = ("_match", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = check_pattern(pattern)
        self._match = _compile(pattern)

    def matches(self, value: str) -> bool:
        """Return True when ``value`` matches the whole pattern."""
        return self._match(value)

    __call__ = matches

    def __repr__(self) -> str:
        return f"GlobPattern({self.pattern!r})"


def _segment_regex(segment: str) -> str:
    return "".join("." if char == "?" else re.escape(char) for char in segment)


def _find_regex(segment: str, number: int) -> str:
    """The regex locating ``segment`` leftmost and atomically, as group ``number``.

    Leading and trailing ``?`` move out of the search (``?{k}b`` is "skip k, then find b"), so a
    run of ``?`` costs nothing per position tried.
    """
    core = segment.strip("?")
    before = len(segment) - len(segment.lstrip("?"))
    after = len(segment) - len(segment.rstrip("?"))
    skip = f".{{{before}}}" if before else ""
    found = f"(?=(?P<s{number}>.*?{_segment_regex(core)}))(?P=s{number})"
    return skip + found + (f".{{{after}}}" if after else "")


def _always(value: str) -> bool:
    return True


def _compile(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    parts = pattern.split("*")
    if len(parts) == 1:  # only '?' wildcards: one fixed-length regex
        fixed = re.compile(_segment_regex(pattern), re.DOTALL).fullmatch
        return lambda value: fixed(value) is not None
    head, middle, tail = parts[0], [p for p in parts[1:-1] if p], parts[-1]
    if not head and not middle and not tail:
        return _always
    if not middle and "?" not in head and "?" not in tail:
        if not tail:
            return lambda value: value.startswith(head)
        if not head:
            return lambda value: value.endswith(tail)
        minimum = len(head) + len(tail)
        return lambda value: len(value) >= minimum and value.startswith(head) and value.endswith(tail)
    # The general case. The head and every middle segment go into one regex run with ``match`` up to
    # where the tail starts (``endpos``); each middle segment is found by ``(?=(?P<sN>.*?seg))(?P=sN)``: the lazy
    # scan finds the leftmost place, and a lookahead is atomic, so the engine never comes back to move
    # it (the leftmost place is always the right one for the segments after it).
    body, groups = [_segment_regex(head)], 0
    for segment in middle:
        if segment.strip("?"):
            groups += 1
            body.append(_find_regex(segment, groups))
        else:  # only '?': skip that many characters
            body.append(f".{{{len(segment)}}}")
    prefix = re.compile("".join(body), re.DOTALL).match
    size = len(tail)
    if not tail:
        return lambda value: prefix(value) is not None
    if "?" not in tail:

        def match(value: str) -> bool:
            return value.endswith(tail) and prefix(value, 0, len(value) - size) is not None

        return match
    ending = re.compile(_segment_regex(tail), re.DOTALL).fullmatch

    def match_wild_tail(value: str) -> bool:
        end = len(value) - size
        return end >= 0 and ending(value, end) is not None and prefix(value, 0, end) is not None

    return match_wild_tail


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> GlobPattern:
    """Return the compiled form of ``pattern`` (cached); every glob ephemeral accepts goes through here.

    Raises:
        TypeError: ``pattern`` is not a str.
        ValueError: ``pattern`` is empty or uses unsupported syntax (``[``, ``]``), naming the pattern.
    """
    return GlobPattern(pattern)


def split_alternatives(patterns: Iterable[str] | str | None) -> tuple[str, ...]:
    """The trimmed, non-blank, distinct comma-separated tokens of ``patterns``, each checked as a glob."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    tokens: list[str] = []
    for element in patterns or ():
        if not isinstance(element, str):
            raise TypeError(f"patterns must be strings, got {element!r}")
        if _BRACED_COMMA.search(element):
            raise ValueError(
                f"brace alternatives are not supported in patterns {element!r}: a comma separates whole "
                "patterns, so list each alternative in full ('a.b, a.c' rather than 'a.{b,c}')"
            )
        tokens.extend(token.strip() for token in element.split(","))
    return tuple(dict.fromkeys(compile_pattern(t).pattern for t in tokens if t))


class PatternSet:
    """A set of glob patterns; each element may itself be a comma-separated list of alternatives.

    Blank elements and blank alternatives are ignored. An empty set matches nothing. Every alternative
    is checked as ``compile_pattern`` checks it (``[``/``]`` raise ValueError).
    """

    __slots__ = ("_exact", "_globs", "patterns")

    def __init__(self, patterns: Iterable[str] | str | None) -> None:
        self.patterns: tuple[str, ...] = split_alternatives(patterns)
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
        """Return True when ``value`` matches ``pattern`` (anchored glob, ``*`` and ``?``).

        Raises:
            ValueError: ``pattern`` is empty or uses unsupported syntax (``[``, ``]``).
        """
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
