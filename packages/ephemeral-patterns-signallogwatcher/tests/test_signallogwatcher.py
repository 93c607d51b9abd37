"""SignalLogWatcher: once per match in order, sync and async callbacks, errors, shutdown, threads, README."""

from __future__ import annotations

import contextlib
import random
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalEvent, SignalSink, current_operation
from ephemeral.core.testing import arun_readme_examples, output_blocks
from ephemeral.patterns.signallogwatcher import SignalLogWatcher


# Sleeps are whole milliseconds: looptime 0.7 (Python 3.10) never wakes from some arbitrary float sleeps.
def ms(seconds: float) -> float:
    """``seconds`` rounded to whole milliseconds."""
    return round(seconds, 3)


def virtual_sink() -> SignalSink:
    return SignalSink(max_age=3600, clock=anyio.current_time)


async def test_seed_example_sync_callback() -> None:
    """The seed: two errors reach on_match, in order; the info signal does not."""
    sink = virtual_sink()
    seen: list[tuple[str, str | None]] = []
    both = anyio.Event()

    def on_match(evt: SignalEvent[Any]) -> None:
        seen.append((evt.signal, evt.key))
        if len(seen) == 2:
            both.set()

    async with SignalLogWatcher(sink, on_match=on_match, pattern="error.*", poll_interval=0.2) as watcher:
        sink.emit("error.database", key="db")
        sink.emit("error.timeout")
        sink.emit("info.started")
        start = anyio.current_time()
        await both.wait()
        assert anyio.current_time() == start  # no polling interval: handled without virtual time passing
        assert seen == [("error.database", "db"), ("error.timeout", None)]
    assert (watcher.match_count, watcher.handled_count, watcher.error_count, watcher.dropped_count) == (2, 2, 0, 0)
    assert watcher.poll_interval == timedelta(milliseconds=200)


async def test_async_callback_runs_one_at_a_time_in_order() -> None:
    """An async on_match is awaited; slow callbacks keep the order and never overlap."""
    sink = virtual_sink()
    seen: list[str] = []
    running = 0

    async def on_match(event: SignalEvent[Any]) -> None:
        nonlocal running
        running += 1
        assert running == 1
        await anyio.sleep(ms(random.random()))
        seen.append(event.signal)
        running -= 1

    names = [f"error.{n}" for n in range(50)]
    async with SignalLogWatcher(sink, on_match=on_match) as watcher:
        for name in names:
            sink.emit(name)
            sink.emit("debug.noise")
            if random.random() < 0.3:
                await anyio.sleep(ms(random.random()))
    assert seen == names  # leaving the block finished the queue
    assert watcher.handled_count == 50


async def test_raising_callback_emits_watcher_error_and_carries_on() -> None:
    sink = virtual_sink()
    handled: list[str] = []

    async def on_match(event: SignalEvent[Any]) -> None:
        if event.signal == "error.bad":
            raise KeyError("boom")
        handled.append(event.signal)

    async with SignalLogWatcher(sink, on_match=on_match, pattern="error.*") as watcher:
        sink.emit("error.first")
        sink.emit("error.bad", key="k")
        sink.emit("error.after")
    assert handled == ["error.first", "error.after"]
    [error] = sink.sense("watcher.error*")
    assert error.signal == "watcher.error:KeyError"
    assert error.key == "error.*"
    assert error.propagation is not None and error.propagation.path == ("error.bad", "watcher.error:KeyError")
    assert (watcher.match_count, watcher.handled_count, watcher.error_count) == (3, 2, 1)


async def test_broad_pattern_never_feeds_its_own_errors_back() -> None:
    """With pattern "*" a callback that always raises does not loop on its own watcher.error signals."""
    sink = virtual_sink()
    calls: list[str] = []

    def on_match(event: SignalEvent[Any]) -> None:
        calls.append(event.signal)
        raise ValueError(event.signal)

    async with SignalLogWatcher(sink, on_match=on_match, pattern="*") as watcher:
        sink.emit("a")
        sink.emit("b")
        await anyio.sleep(1)
        sink.emit("watcher.error:Foreign")  # someone else's error signal is delivered
    assert calls == ["a", "b", "watcher.error:Foreign"]
    # Failing on a watcher.error signal is counted and logged, not signalled again (see the next test).
    assert [e.signal for e in sink.sense("watcher.error:ValueError")] == ["watcher.error:ValueError"] * 2
    assert watcher.error_count == 3


async def test_two_failing_broad_watchers_do_not_feed_each_other() -> None:
    """Each watcher's error signal matches the other's pattern: failing on it must not signal again."""
    sink = virtual_sink()
    seen: list[str] = []
    sink.subscribe(lambda event: seen.append(event.signal))

    calls = 0

    def on_match(event: SignalEvent[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 50:  # bounded, so that a ping-pong ends (and fails the test) instead of hanging it
            raise RuntimeError(event.signal)

    async with (
        SignalLogWatcher(sink, on_match=on_match, pattern="*") as first,
        SignalLogWatcher(sink, on_match=on_match, pattern="*") as second,
    ):
        sink.emit("error.db")
        await anyio.sleep(1)
    assert seen == ["error.db", "watcher.error:RuntimeError", "watcher.error:RuntimeError"]
    assert (first.error_count, second.error_count) == (2, 2)


async def test_signals_of_coordinators_sharing_the_sink() -> None:
    sink = virtual_sink()
    seen: list[str] = []
    async with SignalLogWatcher(sink, on_match=lambda e: seen.append(e.signal), pattern="error.*, order.*"):

        async def body(item: int) -> None:
            current_operation().emit(f"order.{item}")
            if item % 2:
                current_operation().emit(f"error.item.{item}")

        async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=1, signals=sink)) as c:
            for item in range(4):
                await c.enqueue(item)
    assert seen == ["order.0", "order.1", "error.item.1", "order.2", "order.3", "error.item.3"]


async def test_only_signals_emitted_inside_the_block() -> None:
    sink = virtual_sink()
    seen: list[str] = []
    sink.emit("error.before")
    async with SignalLogWatcher(sink, on_match=lambda e: seen.append(e.signal)):
        sink.emit("error.during")
    sink.emit("error.after")
    await anyio.sleep(1)
    assert seen == ["error.during"]


async def test_exception_out_of_the_block_drops_queued_signals_and_counts_them() -> None:
    sink = virtual_sink()
    seen: list[str] = []

    async def slow(event: SignalEvent[Any]) -> None:
        await anyio.sleep(10)
        seen.append(event.signal)

    with pytest.raises(ZeroDivisionError):
        async with SignalLogWatcher(sink, on_match=slow) as watcher:
            for n in range(5):
                sink.emit(f"error.{n}")
            await anyio.sleep(15)  # error.0 handled, error.1 in its callback
            raise ZeroDivisionError
    assert seen == ["error.0"]
    assert watcher.handled_count == 1
    assert watcher.dropped_count == 4  # one interrupted, three never started
    assert watcher.match_count == watcher.handled_count + watcher.error_count + watcher.dropped_count


@pytest.mark.parametrize("seed", range(5))
async def test_outer_cancel_at_random_deadlines_accounts_for_every_match(seed: int) -> None:
    rng = random.Random(seed)
    sink = virtual_sink()
    seen: list[str] = []

    async def on_match(event: SignalEvent[Any]) -> None:
        await anyio.sleep(ms(rng.random()))
        seen.append(event.signal)

    with anyio.move_on_after(ms(rng.uniform(0.5, 8))):
        async with SignalLogWatcher(sink, on_match=on_match) as watcher:
            for n in range(20):
                sink.emit(f"error.{n}")
                await anyio.sleep(ms(rng.random() / 2))
    stopped = len(seen)
    sink.emit("error.late")
    await anyio.sleep(5)
    assert len(seen) == stopped  # nothing runs after the cancel
    assert seen == [f"error.{n}" for n in range(stopped)]
    assert watcher.match_count == watcher.handled_count + watcher.error_count + watcher.dropped_count
    assert watcher.pending_count == 0


async def test_overflow_drops_the_oldest_waiting_signal() -> None:
    sink = virtual_sink()
    seen: list[str] = []
    gate = anyio.Event()

    async def on_match(event: SignalEvent[Any]) -> None:
        await gate.wait()
        seen.append(event.signal)

    async with SignalLogWatcher(sink, on_match=on_match, max_pending=3) as watcher:
        sink.emit("error.0")
        await anyio.sleep(0.1)  # error.0 is in the callback
        for n in range(1, 6):
            sink.emit(f"error.{n}")
        assert watcher.pending_count == 3
        gate.set()
    assert seen == ["error.0", "error.3", "error.4", "error.5"]
    assert watcher.dropped_count == 2
    assert watcher.match_count == 6


@pytest.mark.real_time
async def test_signals_emitted_from_other_threads() -> None:
    sink = SignalSink()
    seen: list[str] = []
    async with SignalLogWatcher(sink, on_match=lambda e: seen.append(e.signal)) as watcher:

        def emit_many() -> None:
            for n in range(100):
                sink.emit(f"error.thread.{n}")

        await anyio.to_thread.run_sync(emit_many)
    assert seen == [f"error.thread.{n}" for n in range(100)]
    assert watcher.handled_count == 100
    assert threading.active_count() >= 1


async def test_entered_only_once() -> None:
    watcher = SignalLogWatcher(virtual_sink(), on_match=print)
    async with watcher:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with watcher:
            pass


async def test_many_watchers_on_one_sink_each_get_their_own_matches() -> None:
    """Watchers share one subscription per sink through a pattern index; each sees exactly its matches."""
    sink = virtual_sink()
    seen: dict[str, list[SignalEvent[Any]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for n in range(200):
            pattern = f"svc{n}.error.*"
            seen[pattern] = []
            watcher = SignalLogWatcher(sink, on_match=seen[pattern].append, pattern=pattern)
            await stack.enter_async_context(watcher)
        seen["*.error.db"] = []
        await stack.enter_async_context(
            SignalLogWatcher(sink, on_match=seen["*.error.db"].append, pattern="*.error.db")
        )
        twin: list[str] = []
        await stack.enter_async_context(
            SignalLogWatcher(sink, on_match=lambda e: twin.append(e.signal), pattern="svc7.error.*")
        )
        for n in range(200):
            sink.emit(f"svc{n}.error.db")
            sink.emit(f"svc{n}.info")
    for n in range(200):
        assert [e.signal for e in seen[f"svc{n}.error.*"]] == [f"svc{n}.error.db"]
    assert [e.signal for e in seen["*.error.db"]] == [f"svc{n}.error.db" for n in range(200)]
    assert twin == ["svc7.error.db"]


async def test_a_closed_watcher_stops_hearing_while_others_carry_on() -> None:
    sink = virtual_sink()
    first: list[str] = []
    second: list[str] = []
    async with SignalLogWatcher(sink, on_match=lambda e: second.append(e.signal)):
        async with SignalLogWatcher(sink, on_match=lambda e: first.append(e.signal)):
            sink.emit("error.one")
        sink.emit("error.two")
    sink.emit("error.three")
    async with SignalLogWatcher(sink, on_match=lambda e: first.append(e.signal)):  # a fresh subscription works
        sink.emit("error.four")
    assert first == ["error.one", "error.four"]
    assert second == ["error.one", "error.two"]


def test_bad_input_names_the_argument() -> None:
    sink = SignalSink()
    with pytest.raises(TypeError, match="sink"):
        SignalLogWatcher(None, on_match=print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_match"):
        SignalLogWatcher(sink, on_match="print")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        SignalLogWatcher(sink, on_match=print, pattern="")
    with pytest.raises(ValueError, match="pattern"):
        SignalLogWatcher(sink, on_match=print, pattern="error.[a-z]")
    with pytest.raises(ValueError, match="pattern"):
        SignalLogWatcher(sink, on_match=print, pattern=" , ")
    with pytest.raises(ValueError, match="poll_interval"):
        SignalLogWatcher(sink, on_match=print, poll_interval=0)
    with pytest.raises(TypeError, match="poll_interval"):
        SignalLogWatcher(sink, on_match=print, poll_interval="200ms")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pending"):
        SignalLogWatcher(sink, on_match=print, max_pending=0)


async def test_readme_example() -> None:
    """The README's examples run as written (on this backend, in virtual time) and print what it shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert await arun_readme_examples(readme) == "".join(output_blocks(readme))
