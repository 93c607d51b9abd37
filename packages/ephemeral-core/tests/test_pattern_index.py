"""PatternIndex: every registered glob matching a name, found without trying every pattern."""

from __future__ import annotations

import fnmatch
import threading

import pytest
from hypothesis import given, settings, strategies as st

from ephemeral.core.lowlevel import PatternIndex

# Names and patterns over few letters and dots, so prefixes collide and buckets share segments.
_NAME = st.text(alphabet="ab.", max_size=7)
_PATTERN = st.text(alphabet="ab.*?", min_size=1, max_size=7)


@settings(max_examples=300, deadline=None, database=None)
@given(patterns=st.lists(_PATTERN, max_size=12), names=st.lists(_NAME, min_size=1, max_size=6))
def test_match_agrees_with_fnmatchcase_over_every_pattern(patterns: list[str], names: list[str]) -> None:
    """For any patterns and names, match returns exactly the values fnmatchcase accepts, in registration order."""
    index: PatternIndex[int] = PatternIndex()
    for number, pattern in enumerate(patterns):
        index.add(pattern, number)
    for name in names:
        expected = [number for number, pattern in enumerate(patterns) if fnmatch.fnmatchcase(name, pattern)]
        assert index.match(name) == expected
        assert index.matches(name) is bool(expected)


@settings(max_examples=200, deadline=None, database=None)
@given(
    patterns=st.lists(_PATTERN, min_size=1, max_size=10),
    removed=st.sets(st.integers(min_value=0, max_value=9)),
    names=st.lists(_NAME, min_size=1, max_size=5),
)
def test_remove_forgets_exactly_the_removed_registrations(
    patterns: list[str], removed: set[int], names: list[str]
) -> None:
    """After removing some registrations, the rest still match as fnmatchcase says; removed ones never do."""
    index: PatternIndex[int] = PatternIndex()
    handles = [index.add(pattern, number) for number, pattern in enumerate(patterns)]
    for number in removed:
        if number < len(handles):
            assert index.remove(handles[number]) is True
            assert index.remove(handles[number]) is False
    kept = [n for n in range(len(patterns)) if n not in removed]
    assert len(index) == len(kept)
    for name in names:
        assert index.match(name) == [n for n in kept if fnmatch.fnmatchcase(name, patterns[n])]


def test_removing_everything_leaves_an_empty_index() -> None:
    """Once every registration is removed, the buckets are pruned and nothing matches."""
    index: PatternIndex[str] = PatternIndex()
    handles = [index.add(p, p) for p in ("a.b.c.*", "a.b.x*", "a.*", "*.c", "a.b.c", "a?")]
    for handle in handles:
        index.remove(handle)
    assert not index
    assert index.match("a.b.c.d") == []
    assert index._root.children == {}


def test_comma_alternatives_return_the_value_once() -> None:
    """A registration with alternatives is one value, returned once even when several alternatives match."""
    index: PatternIndex[str] = PatternIndex()
    index.add("error.*, *.timeout", "alert")
    index.add(["error.db", "warn.*"], "both")
    assert index.match("error.timeout") == ["alert"]
    assert index.match("error.db") == ["alert", "both"]
    assert index.match("warn.low") == ["both"]
    assert index.match("info") == []


def test_the_same_value_may_be_registered_twice() -> None:
    """Each registration is separate: the same value under two handles comes back twice."""
    index: PatternIndex[str] = PatternIndex()
    first = index.add("a.*", "v")
    index.add("a.b", "v")
    assert index.match("a.b") == ["v", "v"]
    index.remove(first)
    assert index.match("a.b") == ["v"]


@pytest.mark.parametrize("bad", ["", " , ", [], "a.[bc]", "x]"])
def test_add_refuses_unsupported_or_missing_patterns(bad: str | list[str]) -> None:
    """An empty registration or an unsupported glob raises ValueError at add, naming the pattern."""
    index: PatternIndex[int] = PatternIndex()
    with pytest.raises(ValueError, match="pattern"):
        index.add(bad, 1)
    assert not index


def test_add_refuses_non_strings() -> None:
    """A pattern that is not a string raises TypeError."""
    index: PatternIndex[int] = PatternIndex()
    with pytest.raises(TypeError, match="strings"):
        index.add([1], 1)  # type: ignore[list-item]


def test_a_lookup_tries_only_the_buckets_of_the_name() -> None:
    """With a thousand literal-prefix patterns, a name is checked against its own bucket only."""
    index: PatternIndex[int] = PatternIndex()
    for number in range(1000):
        index.add(f"svc{number}.error.*", number)
    index.add("*.fatal", -1)
    assert len(index._candidates("svc7.error.db")) == 2
    assert index.match("svc7.error.db") == [7]
    assert index.match("svc7.fatal") == [-1]


def test_clear_and_repr() -> None:
    """clear removes everything; the repr counts registrations."""
    index: PatternIndex[int] = PatternIndex()
    index.add("a", 1)
    assert repr(index) == "PatternIndex(1 registrations)"
    index.clear()
    assert len(index) == 0
    assert index.match("a") == []


@pytest.mark.real_time
def test_lookups_stay_correct_while_another_thread_adds_and_removes() -> None:
    """A lookup running while another thread registers and removes patterns always sees the stable ones."""
    index: PatternIndex[str] = PatternIndex()
    index.add("order.*", "stable")
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            handles = [index.add(f"order.p{n}*", "churn") for n in range(20)]
            for handle in handles:
                index.remove(handle)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(20_000):
            assert "stable" in index.match("order.placed")
    finally:
        stop.set()
        thread.join()
