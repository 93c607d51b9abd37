"""TypedSignalSink, and hierarchical signal names: SignalContext, ScopedSignalKey, ScopedSignalEmitter."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ephemeral.core import (
    ScopedSignalEmitter,
    ScopedSignalKey,
    SignalContext,
    SignalEvent,
    SignalPropagation,
    SignalRetractedEvent,
    SignalSink,
    TypedSignalSink,
)
from ephemeral.core.testing import ManualClock

WALL = datetime(2025, 6, 1, tzinfo=timezone.utc)


@dataclasses.dataclass(frozen=True)
class Evidence:
    source: str
    score: float


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(50.0)


@pytest.fixture
def error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.ERROR, logger="ephemeral.core"):
        yield caplog


# ------------------------------------------------------------------------------------------ TypedSignalSink


def test_typed_emit_keeps_the_payload() -> None:
    """A typed signal is stored with its payload, key and name, and emit returns that event."""
    typed: TypedSignalSink[str] = TypedSignalSink()
    returned = typed.emit("bot.evidence", "payload", "k1")
    (stored,) = typed.sense()
    assert stored is returned
    assert (stored.signal, stored.key, stored.payload) == ("bot.evidence", "k1", "payload")
    assert stored.operation_id > 0
    assert stored.timestamp.utcoffset() == timedelta(0)


def test_typed_signal_is_forwarded_without_payload() -> None:
    """Each typed signal reaches the untyped sink once, same name, id, key and time, but without payload."""
    typed: TypedSignalSink[str] = TypedSignalSink()
    untyped_seen: list[SignalEvent[Any]] = []
    typed.untyped.subscribe(untyped_seen.append)
    event = typed.emit("bot.evidence", "payload", "k1")
    assert len(untyped_seen) == 1
    forwarded = untyped_seen[0]
    assert forwarded.payload is None
    assert forwarded == event
    assert (forwarded.operation_id, forwarded.key, forwarded.timestamp) == (event.operation_id, "k1", event.timestamp)
    assert typed.untyped.detect("bot.evidence")
    assert [e.payload for e in typed.untyped.sense()] == [None]
    assert event.payload == "payload"


def test_typed_sink_forwards_to_a_given_inner_sink() -> None:
    """With inner= the typed sink forwards to that sink, which is exposed as untyped."""
    inner = SignalSink()
    typed: TypedSignalSink[int] = TypedSignalSink(inner)
    assert typed.untyped is inner
    typed.emit("score", 3)
    assert [e.signal for e in inner.sense()] == ["score"]


def test_typed_sink_rejects_a_non_sink_inner() -> None:
    """An inner that is not a SignalSink raises TypeError naming inner."""
    with pytest.raises(TypeError, match="inner"):
        TypedSignalSink("not a sink")  # type: ignore[arg-type]


def test_typed_sink_has_its_own_capacity() -> None:
    """The typed window keeps at most its own max_capacity; the untyped sink keeps what its capacity allows."""
    typed: TypedSignalSink[int] = TypedSignalSink(max_capacity=2)
    for index in range(5):
        typed.emit(f"n.{index}", index)
    assert [e.payload for e in typed.sense()] == [3, 4]
    assert len(typed) == 2
    assert [e.signal for e in typed.untyped.sense()] == [f"n.{i}" for i in range(5)]


def test_typed_default_capacity_is_512() -> None:
    """A typed sink keeps 512 signals by default."""
    typed: TypedSignalSink[int] = TypedSignalSink()
    for index in range(600):
        typed.emit("n", index)
    assert len(typed) == 512
    assert typed.sense()[0].payload == 88


def test_typed_sink_max_age_at_read_time(clock: ManualClock) -> None:
    """Typed signals older than max_age are invisible, read with the injected clock."""
    typed: TypedSignalSink[str] = TypedSignalSink(max_age=10, clock=clock, now=lambda: WALL)
    typed.emit("a", "old")
    clock.advance(6)
    typed.emit("b", "new")
    clock.advance(5)
    assert [e.payload for e in typed.sense()] == ["new"]
    assert not typed.detect("a")
    assert typed.now() == WALL + timedelta(seconds=11)
    assert typed.sense()[0].timestamp == WALL + timedelta(seconds=6)


def test_typed_sink_validates_its_window() -> None:
    """Invalid typed window settings raise errors naming the argument."""
    with pytest.raises(ValueError, match="max_capacity"):
        TypedSignalSink(max_capacity=0)
    with pytest.raises(ValueError, match="max_age"):
        TypedSignalSink(max_age=-1)


def test_typed_subscribers_get_the_payload() -> None:
    """Typed subscribers receive the payload; untyped subscribers of the same signal do not."""
    typed: TypedSignalSink[Evidence] = TypedSignalSink()
    typed_seen: list[Evidence | None] = []
    untyped_seen: list[object] = []
    subscription = typed.subscribe(lambda event: typed_seen.append(event.payload))
    typed.untyped.subscribe(lambda event: untyped_seen.append(event.payload))
    evidence = Evidence("ua", 0.5)
    typed.emit("score.ua", evidence)
    assert typed_seen == [evidence]
    assert typed_seen[0] is evidence
    assert untyped_seen == [None]
    subscription.close()
    typed.emit("score.ip", Evidence("ip", 0.3))
    assert typed_seen == [evidence]
    assert untyped_seen == [None, None]


def test_typed_sense_by_pattern_and_predicate() -> None:
    """Typed sense filters by glob, by exact name and by a predicate over the payload."""
    typed: TypedSignalSink[Evidence] = TypedSignalSink()
    typed.emit("score.ua", Evidence("ua", 0.5))
    typed.emit("score.ip", Evidence("ip", 0.3))
    typed.emit("verdict", Evidence("all", 0.9))
    assert [e.signal for e in typed.sense("score.*")] == ["score.ua", "score.ip"]
    assert [e.signal for e in typed.sense("verdict")] == ["verdict"]
    assert [e.signal for e in typed.sense(lambda e: e.payload is not None and e.payload.score > 0.4)] == [
        "score.ua",
        "verdict",
    ]
    scores = [e.payload.score for e in typed.sense("score.*") if e.payload is not None]
    assert sum(scores) == pytest.approx(0.8)
    assert typed.detect("score.ip")
    assert not typed.detect("score.header")


def test_dataclass_payload_survives_unchanged() -> None:
    """A dataclass payload is kept by identity in the typed window and stays comparable."""
    typed: TypedSignalSink[Evidence] = TypedSignalSink()
    evidence = Evidence("header", 0.7)
    typed.emit("score.header", evidence, key="req-1")
    (event,) = typed.sense()
    assert event.payload is evidence
    assert event.payload == Evidence("header", 0.7)
    assert event.without_payload().payload is None


def test_typed_emit_with_operation_id_and_propagation() -> None:
    """emit passes an explicit operation id and propagation through to both sinks."""
    typed: TypedSignalSink[int] = TypedSignalSink()
    path = SignalPropagation.root("cause").extend("effect")
    event = typed.emit("effect", 1, operation_id=77, propagation=path)
    assert (event.operation_id, event.propagation, event.depth) == (77, path, 2)
    (forwarded,) = typed.untyped.sense()
    assert (forwarded.operation_id, forwarded.propagation) == (77, path)


def test_typed_emit_event_stores_a_ready_event() -> None:
    """emit_event stores the given event with its payload and forwards it without payload."""
    typed: TypedSignalSink[str] = TypedSignalSink()
    event: SignalEvent[str] = SignalEvent("ready", 5, "k", WALL, None, "data")
    typed.emit_event(event)
    assert typed.sense() == [event]
    assert typed.sense()[0].payload == "data"
    assert typed.untyped.sense()[0].payload is None


def test_typed_emit_with_none_payload() -> None:
    """A None payload is allowed and forwarded like any other."""
    typed: TypedSignalSink[int | None] = TypedSignalSink()
    typed.emit("empty", None)
    assert typed.sense()[0].payload is None
    assert typed.untyped.detect("empty")


# ------------------------------------------------------------------------------------------ SignalContext


def test_signal_context_str_and_defaults() -> None:
    """A context prints as sink.coordinator.atom, and omitted parts are the wildcard."""
    assert str(SignalContext("orders", "ingest", "batch")) == "orders.ingest.batch"
    assert str(SignalContext("orders")) == "orders.*.*"
    assert SignalContext.WILDCARD == "*"


def test_signal_context_factories() -> None:
    """for_sink covers a whole sink and for_coordinator a whole coordinator."""
    assert SignalContext.for_sink("s") == SignalContext("s", "*", "*")
    assert SignalContext.for_coordinator("s", "c") == SignalContext("s", "c", "*")
    assert str(SignalContext.for_coordinator("s", "c")) == "s.c.*"


def test_signal_context_key() -> None:
    """key(name) builds the scoped key of a name within the context."""
    key = SignalContext("s", "c", "a").key("started")
    assert key == ScopedSignalKey("s", "c", "a", "started")
    assert str(key) == "s.c.a.started"


def test_signal_context_is_frozen() -> None:
    """SignalContext cannot be mutated."""
    context = SignalContext("s", "c", "a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.sink = "x"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ ScopedSignalKey


def test_scoped_key_str_and_factories() -> None:
    """A scoped key prints as sink.coordinator.atom.name; factories fill the wildcard where they should."""
    assert str(ScopedSignalKey("s", "c", "a", "n")) == "s.c.a.n"
    assert ScopedSignalKey.for_atom("s", "c", "a", "n") == ScopedSignalKey("s", "c", "a", "n")
    assert str(ScopedSignalKey.for_coordinator("s", "c", "n")) == "s.c.*.n"
    assert str(ScopedSignalKey.for_sink("s", "n")) == "s.*.*.n"


@pytest.mark.parametrize("value", ["", "abc", "a.b", "a.b.c", "..", "a..b"])
def test_scoped_key_try_parse_needs_three_dots(value: str) -> None:
    """try_parse returns None for a value with fewer than three dots."""
    assert ScopedSignalKey.try_parse(value) is None


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("s.c.a.n", ("s", "c", "a", "n")),
        ("s.c.a.order.placed.v2", ("s", "c", "a", "order.placed.v2")),
        ("s.*.*.n", ("s", "*", "*", "n")),
        ("...", ("", "", "", "")),
        ("s..a.", ("s", "", "a", "")),
        ("s.c.a..n", ("s", "c", "a", ".n")),
    ],
)
def test_scoped_key_try_parse_splits_at_the_first_three_dots(value: str, parts: tuple[str, str, str, str]) -> None:
    """try_parse splits off sink, coordinator and atom at the first three dots; the rest, dots included, is the name."""
    key = ScopedSignalKey.try_parse(value)
    assert key is not None
    assert (key.sink, key.coordinator, key.atom, key.name) == parts
    assert str(key) == value


def test_scoped_key_matches_a_glob() -> None:
    """A scoped key matches globs over its full name."""
    key = ScopedSignalKey("orders", "ingest", "batch", "flush.done")
    assert key.matches("orders.*")
    assert key.matches("*.flush.done")
    assert key.matches("orders.ingest.batch.flush.done")
    assert not key.matches("orders.ingest.*.started")


# ------------------------------------------------------------------------------------------ ScopedSignalEmitter


@pytest.fixture
def context() -> SignalContext:
    return SignalContext("orders", "ingest", "batch")


def test_emitter_emit_names_and_key(context: SignalContext) -> None:
    """emit puts sink.coordinator.atom.name on the sink with the operation id and the coordinator as key."""
    sink = SignalSink()
    emitter = ScopedSignalEmitter(context, 42, sink)
    assert emitter.key == "ingest"
    assert emitter.operation_id == 42
    event = emitter.emit("started")
    assert event.signal == "orders.ingest.batch.started"
    assert (event.operation_id, event.key) == (42, "ingest")
    assert sink.sense() == [event]


def test_emitter_coordinator_and_sink_signal_names(context: SignalContext) -> None:
    """emit_coordinator_signal names sink.coordinator.*.name and emit_sink_signal names sink.*.*.name."""
    sink = SignalSink()
    emitter = ScopedSignalEmitter(context, 1, sink)
    emitter.emit_coordinator_signal("paused")
    emitter.emit_sink_signal("drained")
    assert [e.signal for e in sink.sense()] == ["orders.ingest.*.paused", "orders.*.*.drained"]
    assert all(e.operation_id == 1 for e in sink.sense())


def test_emitter_without_sink_uses_a_private_one(context: SignalContext) -> None:
    """Without a sink the emitter keeps its signals on a private sink of its own."""
    emitter = ScopedSignalEmitter(context, 1)
    assert isinstance(emitter.sink, SignalSink)
    emitter.emit("x")
    assert [e.signal for e in emitter.sink.sense()] == ["orders.ingest.batch.x"]
    assert ScopedSignalEmitter(context, 2).sink is not emitter.sink


def test_emitter_on_signal_is_called(context: SignalContext) -> None:
    """on_signal is called with each emitted event."""
    seen: list[SignalEvent[Any]] = []
    emitter = ScopedSignalEmitter(context, 1, SignalSink(), on_signal=seen.append)
    first = emitter.emit("a")
    second = emitter.emit_sink_signal("b")
    assert seen == [first, second]


def test_emitter_on_signal_exceptions_are_isolated(
    context: SignalContext, error_logs: pytest.LogCaptureFixture
) -> None:
    """A raising on_signal is logged and swallowed, and the signal is still emitted."""

    def broken(event: SignalEvent[Any]) -> None:
        raise RuntimeError("boom")

    sink = SignalSink()
    emitter = ScopedSignalEmitter(context, 1, sink, on_signal=broken)
    event = emitter.emit("a")
    assert sink.sense() == [event]
    assert any(record.exc_info is not None for record in error_logs.records)


def test_emitter_has_signal(context: SignalContext) -> None:
    """has_signal is True only for this emitter's own live signal of that name."""
    sink = SignalSink()
    emitter = ScopedSignalEmitter(context, 1, sink)
    other = ScopedSignalEmitter(context, 2, sink)
    assert not emitter.has_signal("ready")
    emitter.emit("ready")
    assert emitter.has_signal("ready")
    assert not other.has_signal("ready")
    assert not emitter.has_signal("orders.ingest.batch.ready")
    emitter.emit_coordinator_signal("paused")
    assert not emitter.has_signal("paused")


def test_emitter_has_signal_respects_expiry(context: SignalContext, clock: ManualClock) -> None:
    """has_signal is False once the signal has aged out of the sink."""
    sink = SignalSink(max_age=5, clock=clock)
    emitter = ScopedSignalEmitter(context, 1, sink)
    emitter.emit("ready")
    clock.advance(6)
    assert not emitter.has_signal("ready")


def test_emitter_retract(context: SignalContext) -> None:
    """retract withdraws the signal, reports it to on_signal_retracted, and returns whether it was there."""
    retracted: list[SignalRetractedEvent] = []
    sink = SignalSink()
    emitter = ScopedSignalEmitter(context, 7, sink, on_signal_retracted=retracted.append)
    emitter.emit("ready")
    emitter.emit("other")
    assert emitter.retract("ready") is True
    assert not emitter.has_signal("ready")
    assert [e.signal for e in sink.sense()] == ["orders.ingest.batch.other"]
    assert [(e.signal, e.operation_id, e.key) for e in retracted] == [("orders.ingest.batch.ready", 7, "ingest")]
    assert emitter.retract("ready") is False
    assert len(retracted) == 1


def test_emitter_retract_leaves_other_emitters_signals(context: SignalContext) -> None:
    """retract withdraws only this emitter's signal, not the same-named signal of another operation."""
    sink = SignalSink()
    mine = ScopedSignalEmitter(context, 1, sink)
    theirs = ScopedSignalEmitter(context, 2, sink)
    mine.emit("ready")
    theirs.emit("ready")
    assert mine.retract("ready") is True
    assert not mine.has_signal("ready")
    assert theirs.has_signal("ready")
    assert [e.operation_id for e in sink.sense()] == [2]


def test_emitter_retract_callback_exceptions_are_isolated(
    context: SignalContext, error_logs: pytest.LogCaptureFixture
) -> None:
    """A raising on_signal_retracted is logged and swallowed; retract still reports success."""

    def broken(event: SignalRetractedEvent) -> None:
        raise RuntimeError("boom")

    emitter = ScopedSignalEmitter(context, 1, SignalSink(), on_signal_retracted=broken)
    emitter.emit("ready")
    assert emitter.retract("ready") is True
    assert not emitter.has_signal("ready")
    assert error_logs.records


def test_emitter_signals_reach_sink_subscribers(context: SignalContext) -> None:
    """Signals from an emitter are ordinary sink signals: subscribers and globs see them."""
    sink = SignalSink()
    seen: list[str] = []
    sink.subscribe(lambda event: seen.append(event.signal))
    emitter = ScopedSignalEmitter(context, 1, sink)
    emitter.emit("started")
    emitter.emit_coordinator_signal("paused")
    assert seen == ["orders.ingest.batch.started", "orders.ingest.*.paused"]
    assert sink.count("orders.ingest.*") == 2
    assert sink.count("*.paused") == 1
