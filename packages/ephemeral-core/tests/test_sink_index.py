"""The sink's query paths (name/prefix index, detect, lazy events, the subscriber fast path) against a naive model."""

from __future__ import annotations

import fnmatch
import threading
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from ephemeral.core import PatternSet, SignalEvent, SignalSink


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_NAMES = st.sampled_from(["a", "a.b", "a.b.c", "a.bc", "a.b.d", "b.a", "error.db", "error", "x.y.z", "a.", "a..b"])
_PATTERNS = st.sampled_from(
    ["a", "a.b", "a.b.*", "a.*", "a.b?", "a.b.c", "error.*", "*.b", "*", "a.?.*", "b.*", "x.y.*", "a.", "a.*.d", "z.*"]
)
_OPS = st.one_of(
    st.tuples(st.just("emit"), _NAMES, st.sampled_from([None, "k1", "k2"])),
    st.tuples(st.just("emit_event"), _NAMES, st.sampled_from([None, "k1"])),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 1.0, 30.0, 61.0])),
    st.tuples(st.just("retract"), _NAMES),
    st.tuples(st.just("retract_matching"), _PATTERNS),
    st.tuples(st.just("clear_key"), st.sampled_from(["k1", "k2"])),
    st.tuples(st.just("clear_oldest"), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("restore"), _NAMES, st.sampled_from([10.0, 50.0, 70.0])),
    st.tuples(st.just("query"), _PATTERNS),
    st.tuples(st.just("subscribe")),
)


def _ids(events: list[SignalEvent[Any]]) -> list[tuple[str, int, str | None]]:
    return [(e.signal, e.operation_id, e.key) for e in events]


@settings(max_examples=250, deadline=None, database=None)
@given(ops=st.lists(_OPS, max_size=40), capacity=st.integers(min_value=1, max_value=6))
def test_indexed_queries_agree_with_a_scan_of_every_signal(ops: list[tuple[Any, ...]], capacity: int) -> None:
    """sense/detect/count on globs (index or not) equal filtering sense() by fnmatchcase, whatever happened before."""
    clock = Clock()
    sink = SignalSink(max_capacity=capacity, max_age=60.0, clock=clock)
    seen: list[SignalEvent[Any]] = []
    for op in ops:
        kind = op[0]
        if kind == "emit":
            sink.emit(op[1], key=op[2])
        elif kind == "emit_event":
            sink.emit(SignalEvent(op[1], 7, op[2], sink.now()))
        elif kind == "advance":
            clock.now += op[1]
        elif kind == "retract":
            sink.retract(op[1])
        elif kind == "retract_matching":
            sink.retract_matching(op[1])
        elif kind == "clear_key":
            sink.clear_key(op[1])
        elif kind == "clear_oldest":
            sink.clear_oldest(op[1])
        elif kind == "restore":
            sink.restore(SignalEvent(op[1], 9, None, sink.now() - timedelta(seconds=op[2])))
        elif kind == "subscribe":
            sink.subscribe(seen.append)
        else:
            _check(sink, op[1])
    for pattern in ["a", "a.b.*", "a.*", "*", "a.b?", "error.*", "x.y.*"]:
        _check(sink, pattern)


def _check(sink: SignalSink, pattern: str) -> None:
    everything = sink.sense()
    expected = [e for e in everything if fnmatch.fnmatchcase(e.signal, pattern)]
    assert _ids(sink.sense(pattern)) == _ids(expected)
    assert sink.detect(pattern) is bool(expected)
    assert sink.count(pattern) == len(expected)
    assert _ids(sink.sense(PatternSet(pattern))) == _ids(expected)
    assert _ids(sink.sense(lambda e: fnmatch.fnmatchcase(e.signal, pattern))) == _ids(expected)
    # The same signal is the same event whichever path returned it.
    assert {(e.signal, e.operation_id, e.timestamp) for e in sink.sense(pattern)} == {
        (e.signal, e.operation_id, e.timestamp) for e in expected
    }


def test_within_narrows_indexed_queries(clock_sink: tuple[Clock, SignalSink]) -> None:
    """sense/count with ``within`` keep only the recent signals on the indexed path too."""
    clock, sink = clock_sink
    sink.emit("a.b.old")
    clock.now += 10
    sink.emit("a.b.new")
    assert [e.signal for e in sink.sense("a.b.*", within=5)] == ["a.b.new"]
    assert sink.count("a.b.*", within=timedelta(seconds=15)) == 2


def test_detect_on_a_literal_name_looks_at_that_name_only(clock_sink: tuple[Clock, SignalSink]) -> None:
    """detect of a literal name is answered from its own bucket: the rest of a large window is not visited."""
    _, sink = clock_sink
    for number in range(5000):
        sink.emit(f"noise.{number}")
    sink.emit("target")
    assert sink.detect("target")
    assert not sink.detect("absent")
    assert sink._index._by_name["target"]


def test_timestamps_are_aware_utc_and_derived_from_the_clock(clock_sink: tuple[Clock, SignalSink]) -> None:
    """An emitted signal's timestamp is the sink's wall time at emit, stable however often it is read."""
    clock, sink = clock_sink
    received: list[SignalEvent[Any]] = []
    sink.subscribe(received.append)
    before = sink.now()
    sink.emit("a")
    clock.now += 5
    sink.emit("b")
    stamps = [e.timestamp for e in sink.sense()]
    assert stamps[0] == before
    assert stamps[1] - stamps[0] == timedelta(seconds=5)
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
    assert received[0].timestamp == stamps[0]
    assert received[0] == sink.sense("a")[0]


def test_a_subscriber_that_emits_nests_without_looping_forever(clock_sink: tuple[Clock, SignalSink]) -> None:
    """A subscriber re-emitting on its own sink is stopped by the nesting bound instead of recursing forever."""
    _, sink = clock_sink
    calls = 0

    def again(event: SignalEvent[Any]) -> None:
        nonlocal calls
        calls += 1
        sink.emit("again")

    sink.subscribe(again)
    sink.emit("start")
    assert 2 <= calls <= 70


@pytest.mark.real_time
def test_concurrent_emits_and_queries_from_threads_lose_nothing() -> None:
    """Threads emitting with a subscriber while others query and retract: every emit is delivered and counted."""
    sink = SignalSink(max_capacity=100_000, max_age=3600)
    delivered: list[str] = []
    lock = threading.Lock()

    def record(event: SignalEvent[Any]) -> None:
        with lock:
            delivered.append(event.signal)

    sink.subscribe(record)
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            sink.sense("t.*")
            sink.detect("t.0.5")
            sink.retract("never.there")

    def emit(thread: int) -> None:
        for number in range(2000):
            sink.emit(f"t.{thread}.{number}")

    readers = [threading.Thread(target=query) for _ in range(2)]
    writers = [threading.Thread(target=emit, args=(n,)) for n in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert len(delivered) == 8000
    assert sink.count("t.*") == 8000
    assert len({e.operation_id for e in sink.sense("t.*")}) == 8000


@pytest.fixture
def clock_sink() -> tuple[Clock, SignalSink]:
    clock = Clock()
    return clock, SignalSink(max_capacity=10_000, max_age=60.0, clock=clock)
