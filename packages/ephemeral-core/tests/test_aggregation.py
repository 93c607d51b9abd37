"""Decaying reputation scores and statistics over the numbers carried by recent signals."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from ephemeral.core import DecayingReputationWindow, SignalAggregationWindow, SignalSink, TypedSignalSink
from ephemeral.core.testing import ManualClock

# -------------------------------------------------------------------------------------- reputation


def test_reputation_halves_every_half_life() -> None:
    """A score of 10 decays to 5 after one half-life, and adding 10 gives 15 (reference reputation test)."""
    clock = ManualClock()
    window = DecayingReputationWindow[str](60.0, clock=clock)
    assert window.update("user", 10) == pytest.approx(10)
    clock.advance(60)
    assert 4.9 <= window.get_score("user") <= 5.1
    assert 14.9 <= window.update("user", 10) <= 15.2
    assert window.get_score("unknown") == 0.0


def test_reputation_evicts_the_least_recently_updated_key() -> None:
    """Beyond max_keys the least recently updated key goes, whatever its score; reading does not refresh."""
    clock = ManualClock()
    window = DecayingReputationWindow[str](timedelta(minutes=1), max_keys=2, clock=clock)
    window.update("a", 1)
    window.update("b", 100)
    window.update("a", 1)
    window.update("c", 1)
    assert "b" not in window and "a" in window and len(window) == 2
    assert window.get_score("a") == pytest.approx(2)
    window.update("d", 1)
    assert "a" not in window
    assert list(window.get_scores()) == ["c", "d"]


def test_reputation_signals_and_invalidate() -> None:
    """update and invalidate emit reputation signals; invalidate forgets the key."""
    sink = SignalSink()
    window = DecayingReputationWindow[str](60.0, clock=ManualClock(), sink=sink)
    window.update("user", 10)
    assert window.invalidate("user")
    assert not window.invalidate("user")
    assert window.get_score("user") == 0.0
    assert [(e.signal, e.key) for e in sink.sense("reputation.*")] == [
        ("reputation.update:user:10.00", "user"),
        ("reputation.invalidate:user", "user"),
    ]


async def test_reputation_follows_the_loop_clock() -> None:
    """With clock=anyio.current_time virtual sleeps decay the score."""
    window = DecayingReputationWindow[str](3600.0, clock=anyio.current_time)
    window.update("k", 8)
    await anyio.sleep(7200)
    assert window.get_score("k") == pytest.approx(2)


def test_reputation_rejects_bad_arguments() -> None:
    """Bad arguments raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="half_life"):
        DecayingReputationWindow[str](0)
    with pytest.raises(ValueError, match="max_keys"):
        DecayingReputationWindow[str](1.0, max_keys=0)
    with pytest.raises(ValueError, match="delta"):
        DecayingReputationWindow[str](1.0).update("k", float("nan"))


# ------------------------------------------------------------------------------------- aggregation


def test_aggregation_count_sum_average() -> None:
    """Three scores carried in names give count 3, sum 1.5 and average 0.5 (reference aggregation test)."""
    sink = SignalSink()
    for name in ("score.ua=0.5", "score.ip=0.3", "score.header=0.7", "other=9"):
        sink.emit(name)
    window = SignalAggregationWindow(sink, timedelta(minutes=5))
    assert window.count("score.*") == 3
    assert window.sum("score.*") == pytest.approx(1.5)
    assert window.average("score.*") == pytest.approx(0.5)
    assert window.min("score.*") == pytest.approx(0.3)
    assert window.max("score.*") == pytest.approx(0.7)
    assert window.count() == 4


def test_aggregation_group_by() -> None:
    """group_by groups by the name without its value: ua twice, ip once (reference aggregation test)."""
    sink = SignalSink()
    for name in ("score.ua=0.5", "score.ua=0.6", "score.ip=0.3"):
        sink.emit(name, key=name[6:8])
    groups = SignalAggregationWindow(sink, 60.0).group_by("score.*")
    assert list(groups) == ["score.ua", "score.ip"]
    assert groups["score.ua"].count == 2 and groups["score.ua"].values == (0.5, 0.6)
    assert groups["score.ua"].average == pytest.approx(0.55)
    by_key = SignalAggregationWindow(sink, 60.0).group_by("score.*", key=lambda e: e.key or "")
    assert {k: v.count for k, v in by_key.items()} == {"ua": 2, "ip": 1}


def test_aggregation_of_nothing_and_of_signals_without_numbers() -> None:
    """No values give average 0.0 and min/max None; signals without a number count but add no value."""
    sink = SignalSink()
    window = SignalAggregationWindow(sink)
    assert (window.count("x.*"), window.sum("x.*"), window.average("x.*")) == (0, 0.0, 0.0)
    assert window.min("x.*") is None and window.max("x.*") is None
    sink.emit("x.a=oops")
    sink.emit("x.b")
    sink.emit("x.c=2")
    summary = window.aggregate("x.*")
    assert (summary.count, summary.values, summary.average) == (3, (2.0,), 2.0)


async def test_aggregation_honours_the_window_by_time() -> None:
    """Only signals emitted within the window count, and a query may use a wider one."""
    sink = SignalSink(max_age=3600.0, clock=anyio.current_time)
    window = SignalAggregationWindow(sink, 60.0)
    sink.emit("score.a=1")
    await anyio.sleep(120)
    sink.emit("score.b=2")
    assert window.count("score.*") == 1 and window.sum("score.*") == 2.0
    assert window.sum("score.*", window=timedelta(minutes=5)) == 3.0
    await anyio.sleep(61)
    assert window.count("score.*") == 0


async def test_aggregation_of_typed_payloads() -> None:
    """Numeric payloads of a typed sink are aggregated, within the window."""
    typed = TypedSignalSink[float](max_age=3600.0, clock=anyio.current_time)
    typed.emit("latency", 0.25, key="a")
    await anyio.sleep(30)
    typed.emit("latency", 0.75, key="b")
    window = SignalAggregationWindow(typed, 60.0)
    assert window.sum("latency") == pytest.approx(1.0)
    assert window.count("latency", window=10.0) == 1
    values = SignalAggregationWindow(typed, 60.0, value=lambda e: None if e.payload is None else e.payload * 1000)
    assert values.max("latency") == pytest.approx(750)


def test_aggregation_rejects_bad_arguments() -> None:
    """A non-positive window raises ValueError naming it."""
    with pytest.raises(ValueError, match="window"):
        SignalAggregationWindow(SignalSink(), 0)
    with pytest.raises(ValueError, match="window"):
        SignalAggregationWindow(SignalSink()).count(window=-1)
