"""SignalSink: the bounded, time-limited signal window with subscribers and the shared view."""

from __future__ import annotations

import enum
import gc
import logging
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    GlobPattern,
    PatternSet,
    SignalEvent,
    SignalPropagation,
    SignalRetractedEvent,
    SignalSink,
    Subscription,
)
from ephemeral.core.testing import ManualClock

WALL = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeSource:
    """A stand-in for a coordinator sharing the sink: a name and a list of held signals."""

    def __init__(self, coordinator_id: str | None, events: Iterable[SignalEvent[Any]] = ()) -> None:
        self._coordinator_id = coordinator_id
        self.events = list(events)

    @property
    def coordinator_id(self) -> str | None:
        return self._coordinator_id

    def iter_signal_events(self) -> Iterable[SignalEvent[Any]]:
        return list(self.events)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sink(clock: ManualClock) -> SignalSink:
    return SignalSink(max_capacity=100, max_age=60.0, clock=clock, now=lambda: WALL)


def names(events: Iterable[SignalEvent[Any]]) -> list[str]:
    return [event.signal for event in events]


@pytest.fixture
def error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.ERROR, logger="ephemeral.core"):
        yield caplog


# ------------------------------------------------------------------------------------------ emit and query


def test_emit_then_sense_returns_signals_oldest_first(sink: SignalSink) -> None:
    """emit records name and key; sense returns every live signal oldest first with fresh positive ids."""
    sink.emit("order.placed", key="o-1")
    sink.emit("order.paid", key="o-1")
    sink.emit("error.db")
    events = sink.sense()
    assert names(events) == ["order.placed", "order.paid", "error.db"]
    assert [event.key for event in events] == ["o-1", "o-1", None]
    ids = [event.operation_id for event in events]
    assert len(set(ids)) == 3
    assert all(op_id > 0 for op_id in ids)
    assert all(event.propagation is None and event.depth == 0 for event in events)


def test_sense_with_glob_pattern_set_glob_object_and_predicate(sink: SignalSink) -> None:
    """sense filters by a glob string, a PatternSet, a GlobPattern or a predicate over events."""
    for name, key in [("error.db", "a"), ("error.http.timeout", "b"), ("warning.low", "a"), ("info", None)]:
        sink.emit(name, key=key)
    assert names(sink.sense("error.*")) == ["error.db", "error.http.timeout"]
    assert names(sink.sense("*.timeout")) == ["error.http.timeout"]
    assert names(sink.sense("info")) == ["info"]
    assert names(sink.sense("Error.*")) == []
    assert names(sink.sense(PatternSet(["warning.*, info"]))) == ["warning.low", "info"]
    assert names(sink.sense(GlobPattern("*.db"))) == ["error.db"]
    assert names(sink.sense(lambda event: event.key == "a")) == ["error.db", "warning.low"]
    assert names(sink.sense(None)) == ["error.db", "error.http.timeout", "warning.low", "info"]


def test_detect_with_globs_and_predicates(sink: SignalSink) -> None:
    """detect is True when any live signal matches the selector and False otherwise."""
    assert not sink.detect(None)
    assert not sink.detect("*")
    sink.emit("error.db", key="k")
    assert sink.detect("error.*")
    assert sink.detect("error.db")
    assert sink.detect(PatternSet("x, error.db"))
    assert sink.detect(lambda event: event.key == "k")
    assert sink.detect(None)
    assert not sink.detect("error")
    assert not sink.detect("warning.*")
    assert not sink.detect(lambda event: event.key == "other")


def test_count_with_globs_pattern_sets_and_predicates(sink: SignalSink) -> None:
    """count returns how many live signals match, all of them without a selector."""
    for name in ["a.1", "a.2", "b.1", "a.1"]:
        sink.emit(name)
    assert sink.count() == 4
    assert sink.count("a.*") == 3
    assert sink.count("a.1") == 2
    assert sink.count(PatternSet(["b.*", "a.2"])) == 2
    assert sink.count(lambda event: event.signal.endswith(".1")) == 3
    assert sink.count("c.*") == 0
    assert len(sink) == 4


def test_get_op_signals_filters_by_operation_id(sink: SignalSink) -> None:
    """get_op_signals returns the live signals carrying one operation id, optionally filtered."""
    sink.emit(SignalEvent("op.start", 42, None, WALL))
    sink.emit("other")
    sink.emit(SignalEvent("op.stop", 42, None, WALL))
    assert names(sink.get_op_signals(42)) == ["op.start", "op.stop"]
    assert names(sink.get_op_signals(42, "*.stop")) == ["op.stop"]
    assert sink.get_op_signals(43) == []


def test_default_window_settings() -> None:
    """A sink built without arguments keeps 1000 signals for 60 seconds."""
    sink = SignalSink()
    assert sink.max_capacity == 1000
    assert sink.max_age == 60.0


def test_capacity_bound_drops_the_oldest(clock: ManualClock) -> None:
    """Beyond max_capacity the oldest signals go first and the newest stay."""
    sink = SignalSink(max_capacity=3, clock=clock)
    for index in range(5):
        sink.emit(f"s{index}")
    assert names(sink.sense()) == ["s2", "s3", "s4"]
    assert len(sink) == 3
    assert sink.count() == 3
    assert sink.max_capacity == 3
    assert not sink.detect("s0")


def test_capacity_one_keeps_only_the_latest(clock: ManualClock) -> None:
    """With max_capacity=1 the sink keeps exactly the latest signal."""
    sink = SignalSink(max_capacity=1, clock=clock)
    sink.emit("a")
    sink.emit("b")
    assert names(sink.sense()) == ["b"]


def test_max_age_is_enforced_at_read_time(sink: SignalSink, clock: ManualClock) -> None:
    """A signal older than max_age is invisible to sense, detect, count and len without any emit in between."""
    sink.emit("old")
    clock.advance(30)
    sink.emit("new")
    clock.advance(30.5)
    assert names(sink.sense()) == ["new"]
    assert not sink.detect("old")
    assert sink.count() == 1
    assert len(sink) == 1
    clock.advance(30)
    assert sink.sense() == []
    assert not sink.detect(None)
    assert sink.count() == 0
    assert len(sink) == 0


def test_signal_just_younger_than_max_age_is_visible(sink: SignalSink, clock: ManualClock) -> None:
    """A signal stays visible for its whole max_age and disappears just after."""
    sink.emit("a")
    clock.advance(59.9)
    assert sink.detect("a")
    clock.advance(0.2)
    assert not sink.detect("a")


async def test_max_age_follows_the_loop_clock() -> None:
    """A sink given the loop's clock ages signals out in (virtual) loop time on both backends."""
    sink = SignalSink(max_age=60, clock=anyio.current_time)
    sink.emit("a")
    await anyio.sleep(59)
    assert sink.detect("a")
    sink.emit("b")
    await anyio.sleep(2)
    assert names(sink.sense()) == ["b"]
    await anyio.sleep(3600)
    assert sink.sense() == []


def test_max_age_as_timedelta(clock: ManualClock) -> None:
    """max_age accepts a timedelta and is reported in seconds."""
    sink = SignalSink(max_age=timedelta(minutes=2), clock=clock)
    assert sink.max_age == 120.0
    sink.emit("a")
    clock.advance(119)
    assert sink.detect("a")
    clock.advance(2)
    assert not sink.detect("a")


def test_within_restricts_to_recent_signals(sink: SignalSink, clock: ManualClock) -> None:
    """within= keeps only signals emitted at most that long ago, as seconds or a timedelta."""
    sink.emit("a.old")
    clock.advance(10)
    sink.emit("a.mid")
    clock.advance(10)
    sink.emit("a.new")
    assert names(sink.sense(within=5)) == ["a.new"]
    assert names(sink.sense("a.*", within=timedelta(seconds=15))) == ["a.mid", "a.new"]
    assert sink.count(within=15.0) == 2
    assert sink.count("a.new", within=1) == 1
    assert sink.count(within=25) == 3


def test_within_never_extends_beyond_max_age(sink: SignalSink, clock: ManualClock) -> None:
    """A within= longer than max_age still hides expired signals."""
    sink.emit("expired")
    clock.advance(61)
    sink.emit("fresh")
    assert names(sink.sense(within=3600)) == ["fresh"]
    assert sink.count(within=timedelta(hours=1)) == 1


def test_sense_returns_a_snapshot(sink: SignalSink) -> None:
    """The list sense returns is a copy: later emits do not change it, and changing it does not touch the sink."""
    sink.emit("a")
    snapshot = sink.sense()
    sink.emit("b")
    assert names(snapshot) == ["a"]
    snapshot.clear()
    assert names(sink.sense()) == ["a", "b"]


# ------------------------------------------------------------------------------------------ emitting events


def test_emit_of_a_ready_event_keeps_it_as_is(sink: SignalSink) -> None:
    """Emitting a SignalEvent stores it unchanged (id, key, timestamp, propagation) and ignores the key argument."""
    stamp = WALL - timedelta(seconds=5)
    event: SignalEvent[Any] = SignalEvent("x.y", 99, "k", stamp, SignalPropagation.root("x.y"))
    seen: list[SignalEvent[Any]] = []
    sink.subscribe(seen.append)
    sink.emit(event, key="ignored")
    assert seen == [event]
    assert seen[0] is event
    (stored,) = sink.sense()
    assert stored == event
    assert stored.key == "k"
    assert stored.operation_id == 99
    assert stored.timestamp == stamp
    assert stored.depth == 1


def test_emit_of_a_made_event(sink: SignalSink, clock: ManualClock) -> None:
    """``emit(make_event(...))`` stores and delivers the event itself: its operation id, key, payload, path and time."""
    seen: list[SignalEvent[Any]] = []
    path = SignalPropagation.root("cause").extend("x.y")
    made = sink.make_event("x.y", "k", operation_id=7, propagation=path, payload={"n": 1})
    clock.advance(3)
    sink.emit(made)
    sink.subscribe(seen.append)
    sink.emit(sink.make_event("x.z"))
    first, second = sink.sense()
    assert first is made
    assert (first.signal, first.operation_id, first.key, first.propagation, first.payload) == (
        "x.y",
        7,
        "k",
        path,
        {"n": 1},
    )
    assert first.timestamp == WALL  # stamped when made (the clock read 0), as the sink maps its readings
    assert seen == [second] and second.signal == "x.z" and second.operation_id not in (7, first.operation_id)
    clock.advance(2)
    assert sink.sense("x.y", within=3) == [made]  # it ages from when it was emitted (2 s ago), not made (5 s)


class Signals(str, enum.Enum):
    PAUSE = "work.pause"


def test_emit_accepts_str_subclasses_and_stores_the_plain_name(sink: SignalSink) -> None:
    """A str subclass such as a str-valued Enum member is a signal name; the stored name is its plain value."""
    sink.emit(Signals.PAUSE, key="k")
    (event,) = sink.sense()
    assert event.signal == "work.pause"
    assert type(event.signal) is str
    assert sink.detect("work.*")
    assert sink.retract("work.pause") == 1


def test_emit_rejects_other_types(sink: SignalSink) -> None:
    """emit raises TypeError for anything but a name or a SignalEvent, and stores nothing."""
    with pytest.raises(TypeError, match="signal"):
        sink.emit(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sink.emit(None)  # type: ignore[arg-type]
    assert sink.sense() == []


def test_emit_caused_records_the_chain(sink: SignalSink) -> None:
    """emit_caused extends the cause's path, starts one from a cause without a path, and stores the event."""
    sink.emit("root", key="r")
    (root,) = sink.sense()
    first = sink.emit_caused("second", root, key="k2")
    assert first.propagation == SignalPropagation(("root", "second"))
    assert first.depth == 2
    assert first.key == "k2"
    second = sink.emit_caused("third", first)
    assert second.propagation == SignalPropagation(("root", "second", "third"))
    assert second.would_cycle("root")
    uncaused = sink.emit_caused("alone", None)
    assert uncaused.propagation is None
    assert names(sink.sense()) == ["root", "second", "third", "alone"]
    assert sink.sense("third") == [second]


def test_publish_notifies_without_storing(sink: SignalSink) -> None:
    """publish tells subscribers about an event stored elsewhere and leaves the window untouched."""
    seen: list[SignalEvent[Any]] = []
    sink.subscribe(seen.append)
    event: SignalEvent[Any] = SignalEvent("op.signal", 5, None, WALL)
    sink.publish(event)
    assert seen == [event]
    assert sink.sense() == []


def test_timestamps_are_utc_and_follow_the_injected_clock(sink: SignalSink, clock: ManualClock) -> None:
    """Timestamps are timezone-aware UTC datetimes that move with the injected monotonic clock."""
    sink.emit("a")
    clock.advance(2.5)
    sink.emit("b")
    clock.advance(10)
    first, second = sink.sense()
    assert first.timestamp == WALL
    assert second.timestamp == WALL + timedelta(seconds=2.5)
    for event in (first, second):
        assert event.timestamp.tzinfo is not None
        assert event.timestamp.utcoffset() == timedelta(0)
    assert sink.now() == WALL + timedelta(seconds=12.5)
    assert sink.now().utcoffset() == timedelta(0)


def test_default_timestamps_are_current_utc() -> None:
    """Without injection, timestamps are aware UTC datetimes close to the wall clock."""
    sink = SignalSink()
    before = datetime.now(timezone.utc)
    sink.emit("a")
    after = datetime.now(timezone.utc)
    (event,) = sink.sense()
    assert event.timestamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= event.timestamp <= after + timedelta(seconds=1)


# ------------------------------------------------------------------------------------------ retract and clear


def test_retract_by_name_removes_every_match_and_notifies(sink: SignalSink) -> None:
    """retract(name) removes every signal with that name, returns how many, and tells retraction subscribers."""
    retracted: list[SignalRetractedEvent] = []
    sink.subscribe_retracted(retracted.append)
    sink.emit("pause", key="a")
    sink.emit("keep")
    sink.emit("pause", key="b")
    ids = {event.operation_id for event in sink.sense("pause")}
    assert sink.retract("pause") == 2
    assert names(sink.sense()) == ["keep"]
    assert [(event.signal, event.key) for event in retracted] == [("pause", "a"), ("pause", "b")]
    assert {event.operation_id for event in retracted} == ids
    assert all(not event.was_pattern_match and event.pattern is None for event in retracted)
    assert all(event.timestamp == WALL for event in retracted)


def test_retract_by_name_and_key(sink: SignalSink) -> None:
    """retract(name, key) removes only the signals with that name and key."""
    sink.emit("pause", key="a")
    sink.emit("pause", key="b")
    sink.emit("pause")
    assert sink.retract("pause", key="a") == 1
    assert [event.key for event in sink.sense("pause")] == ["b", None]
    assert sink.retract("pause", key="zzz") == 0


def test_retract_exact_removes_what_one_reported_retraction_removed(sink: SignalSink) -> None:
    """retract_exact(name, key, operation_id) applies a reported retraction: a None key is the keyless signal only."""
    other = SignalSink(max_age=timedelta(days=100_000))  # keeps the fixture's signals from 2025
    reported: list[SignalRetractedEvent] = []
    other.subscribe_retracted(reported.append)
    sink.emit("pause", key="a")
    sink.emit("pause")
    for event in sink.sense("pause"):
        other.restore(event)  # another copy of the window, as a bridge keeps it
    other.emit("pause", key="b")  # only in the copy
    told: list[SignalRetractedEvent] = []
    sink.subscribe_retracted(told.append)
    (keyless,) = [e for e in sink.sense("pause") if e.key is None]
    assert sink.retract_exact("pause", None, keyless.operation_id) == 1
    assert [e.key for e in sink.sense("pause")] == ["a"]
    assert [(e.signal, e.key, e.operation_id) for e in told] == [("pause", None, keyless.operation_id)]
    assert other.retract_exact(told[0].signal, told[0].key, told[0].operation_id) == 1
    assert sorted(e.key or "" for e in other.sense("pause")) == ["a", "b"]  # retract("pause") would leave none
    assert len(reported) == 1
    (keyed,) = sink.sense("pause")
    assert sink.retract_exact("pause", "a", keyed.operation_id + 1) == 0  # another operation's
    assert sink.retract_exact("pause", "a", keyed.operation_id) == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [((1, None, 1), TypeError), (("a", 1, 1), TypeError), (("a", None, "1"), TypeError)],
)
def test_retract_exact_checks_its_arguments(sink: SignalSink, args: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        sink.retract_exact(*args)


def test_retract_is_exact_not_a_glob(sink: SignalSink) -> None:
    """retract compares names exactly, so a glob-looking name removes nothing else."""
    sink.emit("error.db")
    assert sink.retract("error.*") == 0
    assert sink.retract("error") == 0
    assert names(sink.sense()) == ["error.db"]


def test_retract_of_nothing_returns_zero_without_notifying(sink: SignalSink) -> None:
    """Retracting an absent signal returns 0 and calls no retraction subscriber."""
    retracted: list[SignalRetractedEvent] = []
    sink.subscribe_retracted(retracted.append)
    assert sink.retract("absent") == 0
    assert sink.retract_matching("absent.*") == 0
    assert retracted == []


def test_retract_ignores_expired_signals(sink: SignalSink, clock: ManualClock) -> None:
    """An expired signal is already gone: retracting it counts 0 and notifies nobody."""
    retracted: list[SignalRetractedEvent] = []
    sink.subscribe_retracted(retracted.append)
    sink.emit("pause")
    clock.advance(61)
    sink.emit("pause")
    assert sink.retract("pause") == 1
    assert len(retracted) == 1
    assert sink.sense() == []


def test_retract_matching_uses_a_glob(sink: SignalSink) -> None:
    """retract_matching removes every signal matching the glob and reports the pattern to subscribers."""
    retracted: list[SignalRetractedEvent] = []
    sink.subscribe_retracted(retracted.append)
    for name in ["error.db", "warning.low", "error.http.timeout", "Error.x"]:
        sink.emit(name)
    assert sink.retract_matching("error.*") == 2
    assert names(sink.sense()) == ["warning.low", "Error.x"]
    assert [event.signal for event in retracted] == ["error.db", "error.http.timeout"]
    assert all(event.was_pattern_match and event.pattern == "error.*" for event in retracted)


def test_retracted_signals_are_gone_from_every_query(sink: SignalSink) -> None:
    """After retract, detect, count and len no longer see the signal."""
    sink.emit("throttle")
    assert sink.detect("throttle")
    sink.retract("throttle")
    assert not sink.detect("throttle")
    assert sink.count("throttle") == 0
    assert len(sink) == 0


def test_clear_empties_the_window_silently(sink: SignalSink) -> None:
    """clear removes every signal, returns how many, and does not notify retraction subscribers."""
    retracted: list[SignalRetractedEvent] = []
    sink.subscribe_retracted(retracted.append)
    for name in ["a", "b", "c"]:
        sink.emit(name)
    assert sink.clear() == 3
    assert sink.sense() == []
    assert retracted == []
    assert sink.clear() == 0
    sink.emit("d")
    assert names(sink.sense()) == ["d"]


def test_clear_counts_only_live_signals(sink: SignalSink, clock: ManualClock) -> None:
    """clear reports the signals that were visible, not expired leftovers."""
    sink.emit("old")
    clock.advance(61)
    sink.emit("new")
    assert sink.clear() == 1
    clock.value -= 61  # back in time: the expired signal would be visible again if kept
    assert sink.sense() == []


# ------------------------------------------------------------------------------------------ subscribers


def test_subscribers_are_called_in_order_synchronously(sink: SignalSink) -> None:
    """Subscribers run in subscription order on the emitting call, after the signal is already in the window."""
    calls: list[tuple[str, str, bool]] = []

    def first(event: SignalEvent[Any]) -> None:
        calls.append(("first", event.signal, sink.detect(event.signal)))

    def second(event: SignalEvent[Any]) -> None:
        calls.append(("second", event.signal, sink.detect(event.signal)))

    sink.subscribe(first)
    sink.subscribe(second)
    sink.emit("a")
    assert calls == [("first", "a", True), ("second", "a", True)]
    sink.emit("b")
    assert calls[2:] == [("first", "b", True), ("second", "b", True)]


def test_subscriber_receives_the_stored_event(sink: SignalSink) -> None:
    """The event given to subscribers equals the one sense returns."""
    seen: list[SignalEvent[Any]] = []
    sink.subscribe(seen.append)
    sink.emit("x", key="k")
    assert seen == sink.sense()
    assert seen[0].key == "k"
    assert seen[0].timestamp == WALL


def test_raising_subscriber_is_isolated(sink: SignalSink, error_logs: pytest.LogCaptureFixture) -> None:
    """A raising subscriber is logged and counted; later subscribers still run and emit does not raise."""
    seen: list[str] = []

    def broken(event: SignalEvent[Any]) -> None:
        raise RuntimeError("boom")

    sink.subscribe(broken)
    sink.subscribe(lambda event: seen.append(event.signal))
    assert sink.subscriber_errors == 0
    sink.emit("a")
    sink.emit("b")
    assert seen == ["a", "b"]
    assert sink.subscriber_errors == 2
    assert names(sink.sense()) == ["a", "b"]
    assert any(record.exc_info is not None for record in error_logs.records)


def test_raising_retraction_subscriber_is_isolated(sink: SignalSink, error_logs: pytest.LogCaptureFixture) -> None:
    """A raising retraction subscriber is counted in subscriber_errors; others still run and retract returns."""
    seen: list[str] = []

    def broken(event: SignalRetractedEvent) -> None:
        raise ValueError("boom")

    sink.subscribe_retracted(broken)
    sink.subscribe_retracted(lambda event: seen.append(event.signal))
    sink.emit("a")
    assert sink.retract("a") == 1
    assert seen == ["a"]
    assert sink.subscriber_errors == 1


def test_subscription_close_is_idempotent(sink: SignalSink) -> None:
    """Closing a subscription stops further calls, and closing it again does nothing."""
    seen: list[str] = []
    subscription = sink.subscribe(lambda event: seen.append(event.signal))
    assert isinstance(subscription, Subscription)
    assert not subscription.closed
    sink.emit("a")
    subscription.close()
    assert subscription.closed
    subscription.close()
    sink.emit("b")
    assert seen == ["a"]


def test_subscription_as_context_manager(sink: SignalSink) -> None:
    """A subscription used as a context manager disconnects when the block ends."""
    seen: list[str] = []
    with sink.subscribe(lambda event: seen.append(event.signal)) as subscription:
        sink.emit("inside")
    assert subscription.closed
    sink.emit("outside")
    assert seen == ["inside"]


def test_subscription_is_callable_to_disconnect(sink: SignalSink) -> None:
    """Calling the subscription disconnects it, like close."""
    seen: list[str] = []
    disconnect = sink.subscribe(lambda event: seen.append(event.signal))
    sink.emit("a")
    disconnect()
    disconnect()
    sink.emit("b")
    assert seen == ["a"]


def test_same_handler_twice_is_called_twice(sink: SignalSink) -> None:
    """Subscribing the same handler twice registers two entries; closing one leaves the other."""
    seen: list[str] = []

    def handler(event: SignalEvent[Any]) -> None:
        seen.append(event.signal)

    first = sink.subscribe(handler)
    sink.subscribe(handler)
    sink.emit("a")
    assert seen == ["a", "a"]
    first.close()
    sink.emit("b")
    assert seen == ["a", "a", "b"]


def test_closing_one_subscription_keeps_the_others(sink: SignalSink) -> None:
    """Closing a subscription removes only its handler; the remaining ones keep their order."""
    seen: list[str] = []
    sink.subscribe(lambda event: seen.append("1"))
    middle = sink.subscribe(lambda event: seen.append("2"))
    sink.subscribe(lambda event: seen.append("3"))
    middle.close()
    sink.emit("a")
    assert seen == ["1", "3"]


def test_subscribe_rejects_non_callables(sink: SignalSink) -> None:
    """subscribe and subscribe_retracted raise TypeError for a handler that is not callable."""
    with pytest.raises(TypeError, match="callable"):
        sink.subscribe(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        sink.subscribe_retracted("nope")  # type: ignore[arg-type]


def test_subscribing_during_emit_takes_effect_on_the_next_emit(sink: SignalSink) -> None:
    """A handler added while an emit is fanning out is first called on the following emit."""
    seen: list[str] = []

    def late(event: SignalEvent[Any]) -> None:
        seen.append("late:" + event.signal)

    def adder(event: SignalEvent[Any]) -> None:
        if event.signal == "a":
            sink.subscribe(late)

    sink.subscribe(adder)
    sink.emit("a")
    assert seen == []
    sink.emit("b")
    assert seen == ["late:b"]


def test_reentrant_emit_from_a_subscriber(sink: SignalSink) -> None:
    """A subscriber may emit; the nested signal is stored and delivered to every subscriber too."""
    seen: list[str] = []

    def react(event: SignalEvent[Any]) -> None:
        seen.append(event.signal)
        if event.signal == "order.placed":
            sink.emit("order.ack", key=event.key)

    sink.subscribe(react)
    sink.emit("order.placed", key="o-1")
    assert seen == ["order.placed", "order.ack"]
    assert names(sink.sense()) == ["order.placed", "order.ack"]
    assert sink.sense("order.ack")[0].key == "o-1"


def test_infinite_emit_loop_is_cut(sink: SignalSink, error_logs: pytest.LogCaptureFixture) -> None:
    """A subscriber that always emits again is stopped after a bounded depth, without RecursionError."""
    calls = 0

    def loop(event: SignalEvent[Any]) -> None:
        nonlocal calls
        calls += 1
        sink.emit("loop")

    sink.subscribe(loop)
    sink.emit("loop")
    assert 2 <= calls < sys.getrecursionlimit() // 4
    assert sink.count("loop") == calls + 1
    assert error_logs.records


def test_delivery_resumes_after_a_loop_was_cut(sink: SignalSink, error_logs: pytest.LogCaptureFixture) -> None:
    """After a runaway loop is cut, the next top-level emit reaches subscribers again with full depth."""
    depth = 0
    runaway = True

    def loop(event: SignalEvent[Any]) -> None:
        nonlocal depth
        depth += 1
        if runaway:
            sink.emit("loop")

    sink.subscribe(loop)
    sink.emit("loop")
    first_run = depth
    runaway = False
    depth = 0
    sink.emit("after")
    assert depth == 1
    runaway = True
    depth = 0
    sink.emit("loop")
    assert depth == first_run


def test_loop_across_two_sinks_is_cut(clock: ManualClock, error_logs: pytest.LogCaptureFixture) -> None:
    """Two sinks forwarding to each other do not recurse without bound."""
    left = SignalSink(clock=clock)
    right = SignalSink(clock=clock)
    left.subscribe(lambda event: right.emit(event.signal))
    right.subscribe(lambda event: left.emit(event.signal))
    left.emit("ping")
    assert 2 <= left.count() + right.count() < 1000


def test_one_raising_subscriber_is_isolated(sink: SignalSink, error_logs: pytest.LogCaptureFixture) -> None:
    """The only subscriber raising is logged and counted, emit does not raise, and the signal is stored."""

    def broken(event: SignalEvent[Any]) -> None:
        raise RuntimeError("boom")

    sink.subscribe(broken)
    sink.emit("a")
    sink.emit(sink.make_event("b"))
    assert sink.subscriber_errors == 2
    assert names(sink.sense()) == ["a", "b"]
    assert any(record.exc_info is not None for record in error_logs.records)


def test_subscribers_added_and_removed_one_by_one(sink: SignalSink) -> None:
    """Going from no subscriber to one, two, one and none again, each emit reaches exactly the connected ones."""
    seen: list[str] = []
    first = sink.subscribe(lambda event: seen.append("1:" + event.signal))
    sink.emit("a")
    second = sink.subscribe(lambda event: seen.append("2:" + event.signal))
    sink.emit("b")
    first.close()
    sink.emit("c")
    second.close()
    sink.emit("d")
    assert seen == ["1:a", "1:b", "2:b", "2:c"]
    assert names(sink.sense()) == ["a", "b", "c", "d"]


def test_emit_bound_before_a_clear_stores_in_the_new_window(sink: SignalSink) -> None:
    """``emit`` taken from the sink before a removal rebuilt the window still stores where queries look."""
    emit = sink.emit
    emit("a")
    assert sink.clear() == 1
    emit("b")
    sink.emit("c")
    assert sink.retract("c") == 1
    emit("d")
    assert names(sink.sense()) == ["b", "d"]


def test_emit_is_documented_and_callable_through_the_class(sink: SignalSink) -> None:
    """``sink.emit`` carries the method's docs, and ``SignalSink.emit(sink, ...)`` records as well."""
    assert sink.emit.__doc__ == SignalSink.emit.__doc__
    assert SignalSink.emit.__doc__ is not None and "Record a signal" in SignalSink.emit.__doc__
    SignalSink.emit(sink, "a", "k")
    assert [(event.signal, event.key) for event in sink.sense()] == [("a", "k")]


def test_a_subclass_overriding_emit_is_called(clock: ManualClock) -> None:
    """A subclass's ``emit`` runs for every emit, and ``super().emit`` records the signal."""
    calls: list[str] = []

    class Counting(SignalSink):
        def emit(self, signal: str | SignalEvent[Any], key: str | None = None) -> None:
            calls.append(signal if isinstance(signal, str) else signal.signal)
            super().emit(signal, key)

    sink = Counting(clock=clock)
    seen: list[str] = []
    sink.subscribe(lambda event: seen.append(event.signal))
    sink.emit("a")
    sink.request_drain_all()
    assert calls == ["a", "coordinator.drain.all"]
    assert seen == calls
    assert names(sink.sense()) == calls


def test_a_dropped_sink_is_freed_without_the_cycle_collector() -> None:
    """Nothing the sink builds for ``emit`` refers back to it: dropping the last reference frees it at once."""
    sink = SignalSink()
    sink.subscribe(lambda event: None)
    sink.emit("a")
    collected = gc.isenabled()
    gc.disable()
    try:
        alive = weakref.ref(sink)
        del sink
        assert alive() is None
    finally:
        if collected:
            gc.enable()


# ------------------------------------------------------------------------------------------ threads


@pytest.mark.real_time
def test_concurrent_emits_from_threads_lose_nothing() -> None:
    """8 threads emitting 5,000 signals each at once: every signal is stored once and every subscriber call happens."""
    threads_count, per_thread = 8, 5_000
    sink = SignalSink(max_capacity=threads_count * per_thread + 10, max_age=3600)
    delivered = 0
    lock = threading.Lock()

    def count(event: SignalEvent[Any]) -> None:
        nonlocal delivered
        with lock:
            delivered += 1

    sink.subscribe(count)
    start = threading.Barrier(threads_count)

    def work(thread: int) -> None:
        start.wait()
        for index in range(per_thread):
            sink.emit(f"t{thread}.s", key=str(index))

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)

    events = sink.sense()
    assert len(events) == threads_count * per_thread
    assert sink.count() == threads_count * per_thread
    assert delivered == threads_count * per_thread
    assert len({event.operation_id for event in events}) == len(events)
    for number in range(threads_count):
        keys = [event.key for event in events if event.signal == f"t{number}.s"]
        assert keys == [str(index) for index in range(per_thread)]
    assert sink.subscriber_errors == 0


@pytest.mark.real_time
def test_concurrent_emit_and_retract_from_threads() -> None:
    """Emitting and retracting from several threads at once never raises and leaves a consistent window."""
    sink = SignalSink(max_capacity=500, max_age=3600)
    errors: list[BaseException] = []

    def emitter() -> None:
        try:
            for index in range(3_000):
                sink.emit("noise" if index % 2 else "pause")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def retractor() -> None:
        try:
            for _ in range(300):
                sink.retract("pause")
                sink.sense("pause")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=emitter) for _ in range(3)] + [threading.Thread(target=retractor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sink.retract("pause")
    assert sink.count("pause") == 0
    assert 0 < len(sink) <= 500


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "10", None, True])
def test_invalid_max_capacity_names_the_argument(capacity: Any) -> None:
    """A max_capacity that is not an int >= 1 is refused with an error naming max_capacity."""
    with pytest.raises((ValueError, TypeError), match="max_capacity"):
        SignalSink(max_capacity=capacity)


@pytest.mark.parametrize("age", [-1, -0.5, 0, timedelta(seconds=-1), float("nan"), "60", None, True])
def test_invalid_max_age_names_the_argument(age: Any) -> None:
    """A max_age that is not a positive duration is refused with an error naming max_age."""
    with pytest.raises((ValueError, TypeError), match="max_age"):
        SignalSink(max_age=age)


@pytest.mark.parametrize("argument", ["clock", "now"])
def test_non_callable_clocks_name_the_argument(argument: str) -> None:
    """A clock or now that is not callable raises TypeError naming the argument."""
    kwargs: dict[str, Any] = {argument: 5.0}
    with pytest.raises(TypeError, match=argument):
        SignalSink(**kwargs)


def test_invalid_within_names_the_argument(sink: SignalSink) -> None:
    """A negative or non-duration within= is refused with an error naming within."""
    with pytest.raises(ValueError, match="within"):
        sink.sense(within=-1)
    with pytest.raises(TypeError, match="within"):
        sink.count(within="5")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ drain requests


def test_request_drain_all(sink: SignalSink) -> None:
    """request_drain_all emits coordinator.drain.all with no key."""
    sink.request_drain_all()
    (event,) = sink.sense()
    assert (event.signal, event.key) == ("coordinator.drain.all", None)


def test_request_drain_by_id(sink: SignalSink) -> None:
    """request_drain emits coordinator.drain.id keyed by the coordinator id."""
    sink.request_drain("ingest")
    (event,) = sink.sense()
    assert (event.signal, event.key) == ("coordinator.drain.id", "ingest")


def test_request_drain_pattern(sink: SignalSink) -> None:
    """request_drain_pattern emits coordinator.drain.pattern keyed by the glob."""
    sink.request_drain_pattern("workers-*")
    (event,) = sink.sense()
    assert (event.signal, event.key) == ("coordinator.drain.pattern", "workers-*")


def test_drain_requests_reach_subscribers(sink: SignalSink) -> None:
    """Drain requests are ordinary signals: subscribers see them."""
    seen: list[str] = []
    sink.subscribe(lambda event: seen.append(event.signal))
    sink.request_drain_all()
    sink.request_drain("a")
    sink.request_drain_pattern("a*")
    assert seen == ["coordinator.drain.all", "coordinator.drain.id", "coordinator.drain.pattern"]


def test_drain_requests_reject_empty_arguments(sink: SignalSink) -> None:
    """request_drain and request_drain_pattern refuse an empty argument and emit nothing."""
    with pytest.raises(ValueError, match="coordinator_id"):
        sink.request_drain("")
    with pytest.raises(ValueError, match="pattern"):
        sink.request_drain_pattern("")
    assert sink.sense() == []


# ------------------------------------------------------------------------------------------ shared view


def test_sources_are_included_in_queries(sink: SignalSink) -> None:
    """Signals held by a registered source appear after the sink's own in sense, detect and count."""
    held: SignalEvent[Any] = SignalEvent("op.done", 7, None, WALL)
    source = FakeSource("ingest", [held])
    sink.emit("free")
    sink.register_source(source)
    assert names(sink.sense()) == ["free", "op.done"]
    assert sink.detect("op.*")
    assert sink.count() == 2
    assert len(sink) == 1
    assert sink.get_op_signals(7) == [held]
    assert sink.coordinator_count == 1
    assert sink.get_coordinator_ids() == ["ingest"]
    assert sink.sense_by_coordinator("ing*") == [held]
    assert sink.sense_by_coordinator("other") == []


def test_registering_twice_counts_once_and_unregister_removes(sink: SignalSink) -> None:
    """Registering the same source twice counts it once; unregistering removes its signals from queries."""
    source = FakeSource(None, [SignalEvent("op.x", 1, None, WALL)])
    sink.register_source(source)
    sink.register_source(source)
    assert sink.coordinator_count == 1
    assert sink.count() == 1
    assert sink.get_coordinator_ids() == []
    sink.unregister_source(source)
    assert sink.coordinator_count == 0
    assert sink.sense() == []


def test_sources_are_held_weakly(sink: SignalSink) -> None:
    """A source that is garbage-collected drops out of the sink's view."""
    source = FakeSource("gone", [SignalEvent("op.x", 1, None, WALL)])
    sink.register_source(source)
    assert sink.coordinator_count == 1
    del source
    assert sink.coordinator_count == 0
    assert sink.sense() == []


def test_within_applies_to_source_signals(sink: SignalSink, clock: ManualClock) -> None:
    """within= also filters the signals of registered sources by their timestamps."""
    clock.advance(100)
    old: SignalEvent[Any] = SignalEvent("op.old", 1, None, WALL + timedelta(seconds=10))
    new: SignalEvent[Any] = SignalEvent("op.new", 2, None, WALL + timedelta(seconds=95))
    source = FakeSource("c", [old, new])
    sink.register_source(source)
    assert names(sink.sense(within=30)) == ["op.new"]
    assert names(sink.sense()) == ["op.old", "op.new"]


# ------------------------------------------------------------------------------------------ restore


def test_restore_ages_a_signal_from_its_own_timestamp(sink: SignalSink, clock: ManualClock) -> None:
    seen: list[SignalEvent[Any]] = []
    sink.subscribe(seen.append)
    stored: SignalEvent[Any] = SignalEvent("order.done", 7, "k", WALL - timedelta(seconds=50))
    assert sink.restore(stored)
    assert sink.sense("order.*") == [stored] and seen == [stored]
    clock.advance(9)
    assert sink.detect("order.done")  # 59 s old
    clock.advance(2)
    assert not sink.detect("order.done")  # 61 s old: gone, though restored 11 s ago


def test_restore_refuses_a_signal_older_than_max_age(sink: SignalSink) -> None:
    assert not sink.restore(SignalEvent("old", 1, None, WALL - timedelta(seconds=61)))
    assert sink.sense() == []
    with pytest.raises(TypeError, match="SignalEvent"):
        sink.restore("old")  # type: ignore[arg-type]


def test_ids_do_not_repeat_across_restarts_of_a_process() -> None:
    """Signals reloaded from storage keep their ids: a restarted process must not hand the same ids out."""
    import subprocess

    script = "from ephemeral.core.lowlevel import next_id; print(next_id(), *(next_id() for _ in range(999)))"
    first = [int(i) for i in subprocess.check_output([sys.executable, "-c", script], text=True).split()]
    second = [int(i) for i in subprocess.check_output([sys.executable, "-c", script], text=True).split()]
    assert first == sorted(set(first)) and second == sorted(set(second))
    assert second[0] > first[-1]


@pytest.mark.parametrize("pattern", ["log.error.[a-z]", "shut.[", "a]", ""])
def test_sink_calls_refuse_unsupported_globs(pattern: str) -> None:
    """Every sink call taking a glob raises ValueError naming the pattern instead of silently matching nothing."""
    sink = SignalSink()
    sink.emit("log.error.x")
    for call in (
        lambda: sink.sense(pattern),
        lambda: sink.detect(pattern),
        lambda: sink.count(pattern),
        lambda: sink.retract_matching(pattern),
        lambda: sink.request_drain_pattern(pattern),
        lambda: sink.sense_by_coordinator(pattern),
    ):
        with pytest.raises(ValueError, match="glob"):
            call()
    assert sink.count() == 1
