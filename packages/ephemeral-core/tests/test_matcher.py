"""Glob matching of signal names: StringPatternMatcher, GlobPattern, PatternSet and compile_pattern."""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings, strategies as st

from ephemeral.core import GlobPattern, PatternSet, StringPatternMatcher
from ephemeral.core.lowlevel import compile_pattern

matches = StringPatternMatcher.matches
matches_any = StringPatternMatcher.matches_any


# ------------------------------------------------------------------------------------------ reference rows


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("hello", "hello", True),
        ("hello", "world", False),
        ("hello", "he*", True),
        ("hello", "*lo", True),
        ("hello", "*ll*", True),
        ("hello", "h?llo", True),
        ("hello", "h?lo", False),
        ("error.timeout", "error.*", True),
        ("error.timeout", "*.timeout", True),
        ("error.database.timeout", "error.*.timeout", True),
        ("error.database.timeout", "error.*", True),
        ("warning.low", "error.*", False),
    ],
)
def test_reference_glob_rows(value: str, pattern: str, expected: bool) -> None:
    """The glob rows of the reference matcher tests (section 9 item 28) give the same answers."""
    assert matches(value, pattern) is expected
    assert compile_pattern(pattern).matches(value) is expected


def test_matches_any_none_or_empty_is_false() -> None:
    """matches_any with None or an empty collection matches nothing (section 9 item 29)."""
    assert matches_any("test", None) is False
    assert matches_any("test", set()) is False
    assert matches_any("test", []) is False
    assert matches_any("", set()) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [("error.timeout", True), ("warning.low", True), ("info.message", False)],
)
def test_matches_any_over_a_set(value: str, expected: bool) -> None:
    """matches_any is True when any element of the set matches (section 9 item 29)."""
    assert matches_any(value, {"error.*", "warning.*"}) is expected


# ------------------------------------------------------------------------------------------ exact rules


def test_matching_is_anchored_at_both_ends() -> None:
    """A glob must cover the whole value: no implicit leading or trailing wildcard."""
    assert not matches("xerror.timeout", "error.*")
    assert not matches("error.timeout.x", "*.timeout")
    assert not matches("a.error.b", "error")
    assert not matches("hello!", "h?llo")
    assert not matches("xhello", "h?llo")
    assert matches("error.timeout", "error.timeout")
    assert not matches("error.timeou", "error.timeout")


def test_matching_is_case_sensitive() -> None:
    """Exact names and globs compare case-sensitively, with no case folding."""
    assert not matches("Error.Timeout", "error.timeout")
    assert not matches("Error.timeout", "error.*")
    assert not matches("error.TIMEOUT", "*.timeout")
    assert not matches("HELLO", "h?llo")
    assert matches("Error.Timeout", "Error.*")


def test_star_crosses_dots() -> None:
    """A star matches any run of characters, dots included, so there are no segment semantics."""
    assert matches("a.b.c.d", "a.*")
    assert matches("a.b.c.d", "*.d")
    assert matches("a.b.c.d", "a*d")
    assert matches("log.error.db.timeout", "log.*.timeout")
    assert matches("a.", "a.*")
    assert not matches("a", "a.*")


def test_star_matches_the_empty_run() -> None:
    """A star may match nothing at all, wherever it sits in the pattern."""
    assert matches("ab", "a*b")
    assert matches("ab", "*ab")
    assert matches("ab", "ab*")
    assert matches("ab", "a**b")


def test_question_mark_matches_exactly_one_character() -> None:
    """A question mark matches one character, any character including a dot, never zero or two."""
    assert matches("a.c", "a?c")
    assert matches("abc", "a?c")
    assert not matches("ac", "a?c")
    assert not matches("abbc", "a?c")
    assert matches("abc", "???")
    assert not matches("ab", "???")
    assert not matches("abcd", "???")
    assert matches("x", "?")
    assert not matches("", "?")


def test_question_mark_inside_star_segments() -> None:
    """Question marks work inside the star-separated segments, at the head, middle and tail."""
    assert matches("order.42.placed", "order.??.*")
    assert not matches("order.4.placed", "order.??.*")
    assert matches("xx.order.42.placed.yy", "*order.?2.placed*")
    assert matches("log.error.db", "*.err?r.?b")
    assert not matches("log.error.dbx", "*.err?r.?b")


def test_star_alone_matches_everything() -> None:
    """The pattern "*" matches every value, the empty string included."""
    for value in ("", "a", "a.b.c", "*", "  ", "x,y", "[a]"):
        assert matches(value, "*")
        assert matches(value, "**")


def test_empty_string_rules() -> None:
    """The empty value only matches what allows nothing; the empty pattern is refused."""
    assert matches("", "*")
    assert not matches("", "?")
    assert not matches("", "a*")
    assert not matches("", "*a")
    assert not matches("", "a")
    with pytest.raises(ValueError, match="non-empty glob"):
        matches("", "")


def test_commas_and_spaces_are_literal() -> None:
    """`matches` never splits on commas: `,` and spaces are literal characters."""
    assert not matches("a", "a,b")
    assert not matches("b", "a,b")
    assert matches("a,b", "a,b")
    assert matches("a, b", "a,*")
    assert not matches("a", " a")
    assert matches(" a", " a")


@pytest.mark.parametrize("pattern", ["[abc]", "x[?]", "a[*", "]", "log.error.[a-z]", "shut.[", "", "a.]b"])
def test_unsupported_glob_syntax_raises_everywhere_a_pattern_is_accepted(pattern: str) -> None:
    """`[`, `]` and the empty pattern raise ValueError naming the pattern and the supported syntax."""
    message = "non-empty glob" if not pattern else rf"unsupported glob syntax in pattern '{re.escape(pattern)}'"
    calls: list[Callable[[], object]] = [
        lambda: compile_pattern(pattern),
        lambda: GlobPattern(pattern),
        lambda: matches("x", pattern),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message) as raised:
            call()
        assert "'*'" in str(raised.value)
        assert "'?'" in str(raised.value)
    if pattern:  # a blank alternative is skipped in a set; the others are refused
        for other in (lambda: PatternSet(["ok.*", pattern]), lambda: matches_any("x", f"ok.*, {pattern}")):
            with pytest.raises(ValueError, match="unsupported glob syntax"):
                other()


def test_compile_pattern_refuses_non_strings() -> None:
    """A pattern that is not a str raises TypeError naming it."""
    with pytest.raises(TypeError, match="pattern must be a str glob"):
        compile_pattern(3)


def test_backslash_is_not_an_escape() -> None:
    """A backslash is an ordinary character: it neither escapes a star nor disappears."""
    assert matches("a\\bc", "a\\*")
    assert matches("a\\*", "a\\*")
    assert not matches("a*", "a\\*")


def test_literal_parts_do_not_share_characters() -> None:
    """The literal parts between stars must fit in the value one after another, without overlapping."""
    assert not matches("aba", "ab*ba")
    assert matches("abba", "ab*ba")
    assert not matches("aa", "a*a*a")
    assert matches("aaa", "a*a*a")
    assert not matches("aaa", "*aa*aa*")
    assert matches("aaaa", "*aa*aa*")
    assert not matches("xabax", "*ab*ba*")
    assert matches("xabbax", "*ab*ba*")


# ------------------------------------------------------------------------------------------ objects


def test_glob_pattern_object() -> None:
    """GlobPattern keeps its pattern, is callable like `matches`, and has a readable repr."""
    glob = GlobPattern("order.*")
    assert glob.pattern == "order.*"
    assert glob.matches("order.placed")
    assert glob("order.placed")
    assert not glob("orders")
    assert repr(glob) == "GlobPattern('order.*')"


def test_compile_pattern_is_cached() -> None:
    """compile_pattern returns the same compiled object for the same pattern."""
    assert compile_pattern("cache.test.*") is compile_pattern("cache.test.*")
    assert isinstance(compile_pattern("x"), GlobPattern)


def test_pattern_set_splits_comma_alternatives_and_drops_blanks() -> None:
    """A PatternSet splits each element on commas, trims tokens, and drops blank tokens and duplicates."""
    patterns = PatternSet(["error.*, warning.*", "  ", "", "info.start,,  ,", "error.*"])
    assert patterns.patterns == ("error.*", "warning.*", "info.start")
    assert patterns.matches("error.db")
    assert patterns("warning.low")
    assert patterns.matches("info.start")
    assert not patterns.matches("info.stop")
    assert not patterns.matches(" info.start")
    assert not patterns.matches("")


def test_pattern_set_from_a_single_string() -> None:
    """A single string is one element (itself possibly a comma list), not an iterable of characters."""
    patterns = PatternSet("a.*, b")
    assert patterns.patterns == ("a.*", "b")
    assert patterns.matches("a.x")
    assert patterns.matches("b")
    assert not patterns.matches("a")


@pytest.mark.parametrize("element", ["a.{b,c}", "x, order.{placed,paid}.*", "{a,b}"])
def test_pattern_set_refuses_brace_alternatives(element: str) -> None:
    """Shell-style `{a,b}` would be cut at its comma into two wrong patterns: refused, naming the element."""
    with pytest.raises(ValueError, match=r"brace alternatives are not supported.*" + re.escape(repr(element))):
        PatternSet(element)
    with pytest.raises(ValueError, match="brace alternatives"):
        matches_any("a.b", element)


def test_braces_without_a_comma_are_literal_characters() -> None:
    """A brace with no comma inside is an ordinary character, as before."""
    assert PatternSet("a.{b}").matches("a.{b}")
    assert PatternSet("a.{b}, c").patterns == ("a.{b}", "c")


@pytest.mark.parametrize("empty", [None, [], (), "", " , ,", ["", "  "]])
def test_empty_pattern_set_matches_nothing(empty: list[str] | tuple[str, ...] | str | None) -> None:
    """A PatternSet with no usable pattern is falsy and matches nothing, not even the empty string."""
    patterns = PatternSet(empty)
    assert not patterns
    assert patterns.patterns == ()
    assert not patterns.matches("")
    assert not patterns.matches("anything")


def test_pattern_set_is_truthy_and_has_repr() -> None:
    """A non-empty PatternSet is truthy and shows its patterns in its repr."""
    patterns = PatternSet(["a", "b.*"])
    assert patterns
    assert repr(patterns) == "PatternSet(['a', 'b.*'])"


def test_pattern_set_rejects_non_strings() -> None:
    """A PatternSet element that is not a string raises TypeError."""
    with pytest.raises(TypeError, match="strings"):
        PatternSet(["a", 1])  # type: ignore[list-item]


def test_matches_any_splits_commas_and_skips_blanks() -> None:
    """matches_any splits each element on commas, trims each token and ignores blank elements and tokens."""
    assert matches_any("warning.low", {"error.*, warning.*"})
    assert matches_any("b", ["a,,  b  ,"])
    assert not matches_any("", ["", " ", ","])
    assert not matches_any(" ", [" "])
    assert matches_any("x", "y, x")
    assert not matches_any("x, y", ["x, y"])
    assert matches_any("anything", ["", "*"])


def test_matches_any_accepts_a_generator() -> None:
    """matches_any works with any iterable of patterns, such as a generator."""
    assert matches_any("b.1", (p for p in ["a.*", "b.*"]))
    assert not matches_any("c.1", (p for p in ["a.*", "b.*"]))


# ------------------------------------------------------------------------------------------ properties


_ALPHABET = "ab.*?"


@settings(max_examples=600, deadline=None, database=None)
@given(value=st.text(alphabet="ab.\n", max_size=10), pattern=st.text(alphabet=_ALPHABET, min_size=1, max_size=9))
def test_matches_agrees_with_fnmatchcase(value: str, pattern: str) -> None:
    """For any pattern over `*`, `?`, `.` and letters, matches equals fnmatchcase (newlines included)."""
    assert matches(value, pattern) is fnmatch.fnmatchcase(value, pattern)


@settings(max_examples=300, deadline=None, database=None)
@given(
    value=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12),
    pattern=st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10).filter(
        lambda p: "[" not in p and "]" not in p
    ),
)
def test_matches_agrees_with_fnmatchcase_on_any_text(value: str, pattern: str) -> None:
    """Over arbitrary characters (regex metacharacters, backslashes, digits after stars), the answers agree."""
    assert matches(value, pattern) is fnmatch.fnmatchcase(value, pattern)


@settings(max_examples=200, deadline=None, database=None)
@given(
    segments=st.lists(st.text(alphabet="ab?", min_size=1, max_size=4), min_size=101, max_size=110),
    value=st.text(alphabet="ab", max_size=30),
)
def test_many_segments_agree_with_fnmatchcase(segments: list[str], value: str) -> None:
    """Patterns with more than a hundred star-separated segments still agree (no group-number limits)."""
    pattern = "*" + "*".join(segments) + "*"
    assert matches(value, pattern) is fnmatch.fnmatchcase(value, pattern)


@settings(max_examples=200, deadline=None, database=None)
@given(
    value=st.text(alphabet="ab.", max_size=10),
    patterns=st.lists(st.text(alphabet="ab.*? ,", max_size=6), max_size=4),
)
def test_matches_any_agrees_with_splitting_by_hand(value: str, patterns: list[str]) -> None:
    """matches_any equals `any(matches(value, token))` over the trimmed, non-empty comma tokens."""
    tokens = [token.strip() for element in patterns for token in element.split(",")]
    expected = any(matches(value, token) for token in tokens if token)
    assert matches_any(value, patterns) is expected
    assert PatternSet(patterns).matches(value) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "*a" * 30 + "b",
        "*a" * 30 + "*b*",
        "a*" * 30 + "b",
        "*?a" * 30 + "b*",
        "*a?" * 30 + "*b",
        "*" + "a*" * 40 + "c",
        "*a?a?a?a?b*",
        "*" + "?" * 64 + "b*",
        "*" + "?a" * 20 + "?b",
    ],
)
def test_pathological_patterns_run_in_linear_time(pattern: str) -> None:
    """Patterns that make backtracking matchers exponential fail fast on a long value (complexity guard)."""
    value = "a" * 5000
    started = time.perf_counter()
    result = matches(value, pattern)
    elapsed = time.perf_counter() - started
    assert result is False
    assert elapsed < 0.5
