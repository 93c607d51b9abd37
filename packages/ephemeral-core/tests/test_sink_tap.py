"""SignalSink.open_tap: a subscription-free collector of the signals emitted on a sink."""

from __future__ import annotations

import enum
import threading
from datetime import datetime, timezone
from typing import Any

import anyio.lowlevel
import pytest

from ephemeral.core import SignalEvent, SignalSink, TypedSignalSink
from ephemeral.core.lowlevel import SignalTap
from ephemeral.core.testing import ManualClock

WALL = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class Color(str, enum.Enum):
    RED = "color.red"


def make_sink(max_capacity: int = 1000) -> SignalSink:
    return SignalSink(max_capacity, 60.0, clock=ManualClock(), now=lambda: WALL)


def names(events: list[SignalEvent[Any]]) -> list[str]:
    return [event.signal for event in events]


async def test_a_tap_sees_every_form_of_local_emit_in_order() -> None:
    sink = make_sink()
    tap = sink.open_tap(100)
    ready = sink.make_event("ready", "k1", operation_id=7, payload={"x": 1})
    sink.emit("plain", "k0")
    sink.emit(ready)
    sink.emit(Color.RED)
    caused = sink.emit_caused("caused", ready)
    typed = TypedSignalSink[int](sink)
    typed.emit("typed", 5)
    sink.subscribe(lambda event: None)  # with a subscriber, emit stores the event itself
    sink.emit("subscribed", "k2")
    sink.emit(sink.make_event("ready.subscribed"))
    await anyio.lowlevel.checkpoint()
    events = tap.take()
    assert names(events) == [
        "plain",
        "ready",
        "color.red",
        "caused",
        "typed",
        "subscribed",
        "ready.subscribed",
    ]
    assert events == sink.sense()  # the very events the sink's queries return
    assert events[1] is ready and events[3] is caused
    assert events[0].key == "k0" and events[0].timestamp == WALL
    assert type(events[2].signal) is str
    assert tap.take() == [] and tap.dropped == 0 and len(tap) == 0


async def test_restored_signals_do_not_reach_a_tap() -> None:
    sink = make_sink()
    tap = sink.open_tap(10)
    sink.emit("before")
    assert sink.restore(SignalEvent("received", 1, None, WALL))
    sink.emit("after")
    await anyio.lowlevel.checkpoint()
    assert names(tap.take()) == ["before", "after"]
    assert names(sink.sense()) == ["before", "received", "after"]


async def test_drops_beyond_max_pending_are_counted_exactly() -> None:
    sink = make_sink(max_capacity=3)
    tap = sink.open_tap(4)
    for i in range(10):
        sink.emit(f"s{i}")
    assert len(tap) == 4
    assert tap.dropped == 6  # the oldest were lost
    assert names(tap.take()) == ["s6", "s7", "s8", "s9"]
    assert tap.dropped == 6
    sink.subscribe(lambda event: None)
    for i in range(5):
        sink.emit(f"t{i}")
    assert tap.dropped == 7
    assert names(tap.take()) == ["t1", "t2", "t3", "t4"]
    assert tap.dropped == 7 and tap.max_pending == 4


async def test_closing_stops_the_tap_but_what_waits_can_be_taken() -> None:
    sink = make_sink()
    tap = sink.open_tap(10)
    other = sink.open_tap(10)
    sink.emit("a")
    tap.close()
    assert tap.closed and not other.closed
    sink.emit("b")
    assert names(tap.take()) == ["a"]
    assert tap.take() == []
    tap.close()  # again: nothing
    assert names(other.take()) == ["a", "b"]
    other.close()
    sink.emit("c")
    assert other.take() == []
    assert names(sink.sense()) == ["a", "b", "c"]
    assert "closed" in repr(tap)


async def test_subscribers_and_several_taps_work_beside_each_other() -> None:
    sink = make_sink()
    seen: list[str] = []
    sink.subscribe(lambda event: seen.append(event.signal))
    first, second = sink.open_tap(10), sink.open_tap(2)
    for name in ("a", "b", "c"):
        sink.emit(name)
    await anyio.lowlevel.checkpoint()
    assert seen == ["a", "b", "c"]
    assert names(first.take()) == ["a", "b", "c"]
    assert names(second.take()) == ["b", "c"] and second.dropped == 1 and first.dropped == 0


async def test_a_tap_survives_the_window_being_rebuilt() -> None:
    sink = make_sink()
    tap = sink.open_tap(10)
    sink.emit("a")
    sink.emit("b")
    assert sink.retract("a") == 1  # the window is replaced: emits after it still reach the tap
    sink.clear()
    sink.emit("c")
    assert names(tap.take()) == ["a", "b", "c"]
    assert names(sink.sense()) == ["c"]


def test_emit_without_a_tap_is_the_window_append() -> None:
    sink = make_sink()
    assert sink._store.__closure__ is not None
    cell = {c.cell_contents for c in sink._store.__closure__}
    assert any(getattr(c, "__self__", None) is sink._window for c in cell)  # bound deque.append
    tap = sink.open_tap(1)
    tap.close()
    cell = {c.cell_contents for c in sink._store.__closure__}
    assert any(getattr(c, "__self__", None) is sink._window for c in cell)


def test_taps_take_emits_from_other_threads() -> None:
    sink = SignalSink(100_000)
    tap = sink.open_tap(100_000)
    taken: list[SignalEvent[Any]] = []

    def emitter(prefix: str) -> None:
        for i in range(2000):
            sink.emit(f"{prefix}.{i}")

    threads = [threading.Thread(target=emitter, args=(p,)) for p in ("x", "y")]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        taken += tap.take()
    taken += tap.take()
    assert len(taken) == 4000 and tap.dropped == 0
    for prefix in ("x", "y"):
        assert [e.signal for e in taken if e.signal.startswith(prefix)] == [f"{prefix}.{i}" for i in range(2000)]


def test_max_pending_is_checked() -> None:
    sink = make_sink()
    with pytest.raises(ValueError, match="max_pending"):
        sink.open_tap(0)
    with pytest.raises(TypeError, match="max_pending"):
        sink.open_tap(1.5)  # type: ignore[arg-type]
    assert isinstance(sink.open_tap(1), SignalTap)
