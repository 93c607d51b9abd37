"""The original's sink maintenance calls (clear*, sink.cleared) and typed keys (SignalKey, emit(event))."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ephemeral.core import SignalEvent, SignalKey, SignalRetractedEvent, SignalSink, TypedSignalSink


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink(clock: Clock) -> SignalSink:
    return SignalSink(max_capacity=100, max_age=60.0, clock=clock)


def _watch(sink: SignalSink) -> tuple[list[SignalEvent[Any]], list[SignalRetractedEvent]]:
    published: list[SignalEvent[Any]] = []
    retracted: list[SignalRetractedEvent] = []
    sink.subscribe(published.append)
    sink.subscribe_retracted(retracted.append)
    return published, retracted


def test_clear_publishes_sink_cleared_with_the_count(sink: SignalSink) -> None:
    """clear() tells subscribers `sink.cleared` with key = the count, leaving the window empty."""
    for name in ("a", "b", "c"):
        sink.emit(name)
    published, retracted = _watch(sink)
    assert sink.clear() == 3
    assert [(e.signal, e.key) for e in published] == [("sink.cleared", "3")]
    assert sink.sense() == []
    assert retracted == []
    assert sink.clear() == 0
    assert len(published) == 1


def test_clear_pattern_publishes_the_pattern_and_count(sink: SignalSink) -> None:
    """clear_pattern removes the matching signals and publishes `sink.cleared.pattern` with `pattern:count`."""
    for name in ("error.db", "error.net", "info.up"):
        sink.emit(name)
    published, _ = _watch(sink)
    assert sink.clear_pattern("error.*") == 2
    assert [e.signal for e in sink.sense()] == ["info.up"]
    assert [(e.signal, e.key) for e in published] == [("sink.cleared.pattern", "error.*:2")]
    assert sink.clear_pattern("nothing.*") == 0
    assert len(published) == 1
    with pytest.raises(ValueError, match="glob"):
        sink.clear_pattern("")
    with pytest.raises(ValueError, match="unsupported glob syntax"):
        sink.clear_pattern("error.[a-z]")


def test_clear_matching_key_and_operation_are_silent(sink: SignalSink) -> None:
    """clear_matching, clear_key and clear_operation remove what they select and emit nothing."""
    sink.emit("a", key="k1")
    sink.emit("b", key="k2")
    sink.emit(SignalEvent("c", 42, "k2", sink.now()))
    sink.emit("d", key="k1")
    published, retracted = _watch(sink)
    assert sink.clear_matching(lambda e: e.signal == "a") == 1
    assert sink.clear_operation(42) == 1
    assert sink.clear_key("k2") == 1
    assert [e.signal for e in sink.sense()] == ["d"]
    assert published == [] and retracted == []
    with pytest.raises(ValueError, match="key"):
        sink.clear_key("")
    with pytest.raises(TypeError, match="predicate"):
        sink.clear_matching("a")  # type: ignore[arg-type]


def test_clear_older_than_and_clear_oldest(sink: SignalSink, clock: Clock) -> None:
    """clear_older_than removes by age; clear_oldest removes the n oldest live signals (n <= 0 removes none)."""
    for name in ("s0", "s1", "s2", "s3"):
        sink.emit(name)
        clock.now += 10
    assert sink.clear_older_than(timedelta(seconds=25)) == 2
    assert [e.signal for e in sink.sense()] == ["s2", "s3"]
    assert sink.clear_oldest(0) == 0
    assert sink.clear_oldest(-3) == 0
    assert sink.clear_oldest(1) == 1
    assert [e.signal for e in sink.sense()] == ["s3"]
    assert sink.clear_oldest(5) == 1
    assert sink.sense() == []
    with pytest.raises(TypeError, match="count"):
        sink.clear_oldest(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="age"):
        sink.clear_older_than(-1)


def test_clear_counts_only_live_signals_but_removes_expired_ones(sink: SignalSink, clock: Clock) -> None:
    """Expired leftovers are removed by every clear call without being counted."""
    sink.emit("old", key="k")
    clock.now += 61
    sink.emit("new", key="k")
    assert sink.clear_key("k") == 1
    clock.now -= 61
    assert sink.sense() == []


def test_removals_keep_signals_emitted_later_and_queries_stay_right(sink: SignalSink) -> None:
    """After a removal the index is rebuilt: later emits and queries see exactly what is left."""
    for number in range(10):
        sink.emit(f"a.{number % 3}")
    assert sink.count("a.*") == 10
    assert sink.retract("a.1") == 3
    sink.emit("a.1")
    assert [e.signal for e in sink.sense("a.1")] == ["a.1"]
    assert sink.count("a.*") == 8


# ------------------------------------------------------------------------------------------ SignalKey


SCORE: SignalKey[float] = SignalKey[float]("bot.score")


def test_signal_key_is_its_name() -> None:
    """A SignalKey converts to (and is) its name, and refuses empty names and glob characters."""
    assert str(SCORE) == "bot.score"
    assert SCORE == "bot.score"
    assert SCORE.name == "bot.score"
    assert repr(SCORE) == "SignalKey('bot.score')"
    for bad in ("", "bot.*", "a?", "a[b]"):
        with pytest.raises(ValueError, match="name"):
            SignalKey(bad)
    with pytest.raises(TypeError, match="name"):
        SignalKey(3)  # type: ignore[arg-type]


def test_typed_emit_and_sense_by_key() -> None:
    """Emitting through a key then sensing by it gives exactly that signal with its payload (the original's test)."""
    typed: TypedSignalSink[float] = TypedSignalSink()
    typed.emit(SCORE, 0.95, "test-op")
    typed.emit("bot.score.extra", 0.1)
    found = typed.sense(SCORE)
    assert len(found) == 1
    assert found[0].payload == 0.95
    assert found[0].key == "test-op"
    assert typed.detect(SCORE)
    assert [e.signal for e in typed.untyped.sense(SCORE)] == ["bot.score"]
    assert typed.untyped.sense(SCORE)[0].payload is None


def test_untyped_sink_emits_a_key_as_its_name() -> None:
    """sink.emit(key, op_key) stores the plain name."""
    sink = SignalSink()
    sink.emit(SCORE, "op")
    [event] = sink.sense()
    assert type(event.signal) is str
    assert (event.signal, event.key) == ("bot.score", "op")


def test_typed_emit_accepts_a_ready_event() -> None:
    """TypedSignalSink.emit(event) stores the ready event as it is and forwards it without payload."""
    typed: TypedSignalSink[int] = TypedSignalSink()
    event: SignalEvent[int] = SignalEvent("n", 5, "k", typed.now(), payload=3)
    assert typed.emit(event) is event
    assert typed.sense() == [event]
    assert typed.sense()[0].payload == 3
    assert [(e.signal, e.operation_id, e.payload) for e in typed.untyped.sense()] == [("n", 5, None)]
    with pytest.raises(TypeError, match="alone"):
        typed.emit(event, 4)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="payload"):
        typed.emit("n")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="signal"):
        typed.emit(3, 4)  # type: ignore[call-overload]


def test_typed_emit_keeps_a_given_operation_id_and_propagation() -> None:
    """operation_id and propagation given to emit are kept on the stored event."""
    typed: TypedSignalSink[str] = TypedSignalSink()
    event = typed.emit("x", "p", operation_id=77)
    assert event.operation_id == 77
    assert typed.sense("x")[0].operation_id == 77
