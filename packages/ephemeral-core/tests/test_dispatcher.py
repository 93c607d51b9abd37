"""SignalDispatcher: async handlers by glob pattern, isolated failures, bounded backlog, non-terminal flush."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from ephemeral.core import CoordinatorClosedError, SignalDispatcher, SignalEvent, SignalSink
from ephemeral.core.testing import ConcurrencyProbe, Gate


def event(name: str, key: str | None = None) -> SignalEvent[Any]:
    return SignalEvent(name, 0, key, SignalSink().now())


async def test_every_matching_handler_runs_in_registration_order() -> None:
    """Each signal runs every handler whose glob matches it, in registration order; others are skipped."""
    calls: list[str] = []

    def recorder(label: str) -> Any:
        async def handler(evt: SignalEvent[Any]) -> None:
            await anyio.sleep(0.01)
            calls.append(f"{label}:{evt.signal}")

        return handler

    async with SignalDispatcher(max_concurrency=1) as dispatcher:
        dispatcher.register("order.*", recorder("orders"))
        dispatcher.register("*.placed", recorder("placed"))
        dispatcher.register("order.placed", recorder("exact"))
        dispatcher.register("payment.*", recorder("payments"))
        assert dispatcher.dispatch(event("order.placed"))
        assert dispatcher.dispatch(event("order.shipped"))
        await dispatcher.flush()
    assert calls == ["orders:order.placed", "placed:order.placed", "exact:order.placed", "orders:order.shipped"]
    assert dispatcher.processed_count == 2


async def test_a_raising_handler_does_not_skip_the_others() -> None:
    """Bug 19: the first handler raising leaves the second and third running; the failure is counted."""
    calls: list[str] = []

    async def broken(evt: SignalEvent[Any]) -> None:
        calls.append("broken")
        raise RuntimeError("handler bug")

    async def fine(evt: SignalEvent[Any]) -> None:
        calls.append("fine")

    async def cancelled_like(evt: SignalEvent[Any]) -> None:
        calls.append("third")
        raise ValueError("another bug")

    async with SignalDispatcher() as dispatcher:
        dispatcher.register("job.*", broken)
        dispatcher.register("job.*", fine)
        dispatcher.register("job.*", cancelled_like)
        dispatcher.dispatch(event("job.run"))
        dispatcher.dispatch(event("job.run"))
    assert calls == ["broken", "fine", "third"] * 2
    assert dispatcher.failed_count == 4
    assert dispatcher.processed_count == 2 and dispatcher.dropped_count == 0


async def test_flush_is_a_barrier_not_the_end() -> None:
    """flush() waits for what was dispatched and leaves the dispatcher running for later signals."""
    seen: list[str] = []

    async def handler(evt: SignalEvent[Any]) -> None:
        await anyio.sleep(1)
        seen.append(evt.signal)

    async with SignalDispatcher(max_concurrency=2) as dispatcher:
        dispatcher.register("*", handler)
        for name in ("a", "b", "c"):
            dispatcher.dispatch(event(name))
        await dispatcher.flush()
        assert sorted(seen) == ["a", "b", "c"]
        assert dispatcher.dispatch(event("d"))
        await dispatcher.wait_idle()
        assert seen[-1] == "d"
        await dispatcher.flush()  # nothing queued: returns at once


async def test_concurrent_flushes_all_return() -> None:
    """Several tasks flushing at once all wake when the queue empties."""
    gate = anyio.Event()
    done: list[int] = []

    async def handler(evt: SignalEvent[Any]) -> None:
        await gate.wait()

    async def flusher(number: int, dispatcher: SignalDispatcher) -> None:
        await dispatcher.flush()
        done.append(number)

    async with SignalDispatcher(max_concurrency=1) as dispatcher:
        dispatcher.register("*", handler)
        dispatcher.dispatch(event("x"))
        async with anyio.create_task_group() as tg:
            for number in range(3):
                tg.start_soon(flusher, number, dispatcher)
            await anyio.sleep(0.1)
            assert done == []
            gate.set()
    assert sorted(done) == [0, 1, 2]


async def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    """Beyond max_queued waiting signals the oldest waiting one is dropped and counted; the rest are handled."""
    gate = anyio.Event()
    handled: list[str] = []

    async def handler(evt: SignalEvent[Any]) -> None:
        await gate.wait()
        handled.append(evt.signal)

    async with SignalDispatcher(max_concurrency=1, max_queued=2) as dispatcher:
        dispatcher.register("s*", handler)
        dispatcher.dispatch(event("s0"))
        await anyio.sleep(0.01)  # s0 is being handled
        assert all(dispatcher.dispatch(event(f"s{n}")) for n in range(1, 6))
        assert dispatcher.queued_count == 2 and dispatcher.dropped_count == 3
        gate.set()
    assert handled == ["s0", "s4", "s5"]
    assert dispatcher.processed_count + dispatcher.dropped_count == 6


async def test_dispatch_while_not_running_is_refused_and_counted() -> None:
    """Before `async with` and after it, dispatch returns False and every signal a handler wanted is counted."""
    dispatcher = SignalDispatcher()

    async def handler(evt: SignalEvent[Any]) -> None:
        pass

    dispatcher.register("x", handler)
    assert not dispatcher.dispatch(event("x"))
    assert not dispatcher.dispatch(event("unwanted"))
    assert dispatcher.dropped_count == 1
    async with dispatcher:
        assert dispatcher.dispatch(event("x"))
        assert dispatcher.dispatch(event("unwanted"))
    assert not dispatcher.dispatch(event("x"))
    assert dispatcher.dropped_count == 2 and dispatcher.processed_count == 1


async def test_attach_dispatches_sink_signals_until_detached() -> None:
    """A sink given to the constructor and one attached later both feed the dispatcher until detached."""
    first, second = SignalSink(), SignalSink()
    seen: list[tuple[str, str | None]] = []

    async def handler(evt: SignalEvent[Any]) -> None:
        seen.append((evt.signal, evt.key))

    async with SignalDispatcher(first) as dispatcher:
        dispatcher.register("log.error.*", handler)
        attachment = dispatcher.attach(second)
        first.emit("log.error.db", key="a")
        second.emit("log.error.net", key="b")
        second.emit("log.info.ok", key="c")
        await dispatcher.flush()
        attachment.close()
        second.emit("log.error.late", key="d")
        await dispatcher.flush()
    first.emit("log.error.after", key="e")  # detached on exit
    assert seen == [("log.error.db", "a"), ("log.error.net", "b")]
    assert dispatcher.dropped_count == 0
    with pytest.raises(CoordinatorClosedError, match="SignalDispatcher is closed"):
        dispatcher.attach(second)


async def test_closing_a_registration_removes_only_that_handler() -> None:
    """The Subscription from register removes its own handler, even when another uses the same pattern."""
    calls: list[str] = []

    async def one(evt: SignalEvent[Any]) -> None:
        calls.append("one")

    async def two(evt: SignalEvent[Any]) -> None:
        calls.append("two")

    async with SignalDispatcher() as dispatcher:
        registration = dispatcher.register("a", one)
        dispatcher.register("a", two)
        assert dispatcher.patterns == ["a", "a"]
        registration.close()
        dispatcher.dispatch(event("a"))
    assert calls == ["two"]


async def test_concurrency_is_bounded_and_reached() -> None:
    """At most max_concurrency signals are handled at once, and that many are."""
    probe = ConcurrencyProbe()

    async def handler(evt: SignalEvent[Any]) -> None:
        with probe:
            await anyio.sleep(0.5)

    async with SignalDispatcher(max_concurrency=3) as dispatcher:
        dispatcher.register("*", handler)
        for number in range(12):
            dispatcher.dispatch(event(f"s{number}"))
    assert probe.peak == 3 and dispatcher.processed_count == 12


async def test_handlers_emitting_cascade_before_flush_returns() -> None:
    """A handler emitting on the attached sink triggers more handling, and flush waits for the whole cascade."""
    sink = SignalSink()
    seen: list[str] = []

    async def stage(evt: SignalEvent[Any]) -> None:
        seen.append(evt.signal)
        number = int(evt.signal.split(".")[1])
        if number < 5:
            await anyio.sleep(0.1)
            sink.emit(f"stage.{number + 1}")

    async with SignalDispatcher(sink) as dispatcher:
        dispatcher.register("stage.*", stage)
        sink.emit("stage.1")
        await dispatcher.flush()
        assert seen == [f"stage.{n}" for n in range(1, 6)]


async def test_leaving_the_block_handles_what_is_queued() -> None:
    """Leaving `async with` normally waits for every queued signal before stopping."""
    handled: list[str] = []

    async def handler(evt: SignalEvent[Any]) -> None:
        await anyio.sleep(10)
        handled.append(evt.signal)

    async with SignalDispatcher(max_concurrency=1) as dispatcher:
        dispatcher.register("*", handler)
        for name in "abc":
            dispatcher.dispatch(event(name))
    assert handled == ["a", "b", "c"]


async def test_error_in_the_block_drops_queued_signals_visibly() -> None:
    """An exception in the block propagates unchanged; queued signals are counted as dropped, not lost silently."""
    gate = Gate()

    with pytest.raises(KeyError):
        async with SignalDispatcher(max_concurrency=1) as dispatcher:
            dispatcher.register("*", gate)
            for name in "abcd":
                dispatcher.dispatch(event(name))
            await anyio.sleep(0.01)
            raise KeyError("stop")
    assert dispatcher.dropped_count == 4  # three waiting, one interrupted
    assert dispatcher.processed_count == 0


def test_validation() -> None:
    """Blank patterns, non-callable handlers and bounds below 1 are refused with clear errors."""
    dispatcher = SignalDispatcher()

    async def handler(evt: SignalEvent[Any]) -> None:
        pass

    with pytest.raises(ValueError, match="pattern"):
        dispatcher.register(" ", handler)
    with pytest.raises(TypeError, match="handler"):
        dispatcher.register("x", "handler")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_concurrency"):
        SignalDispatcher(max_concurrency=0)
    with pytest.raises(ValueError, match="max_queued"):
        SignalDispatcher(max_queued=0)
    with pytest.raises(TypeError, match="sink"):
        dispatcher.attach("sink")  # type: ignore[arg-type]


@pytest.mark.real_time
async def test_signals_from_other_threads_are_handled_on_the_loop() -> None:
    """Signals emitted on 4 threads are all handled, each handler running on the loop's thread."""
    sink = SignalSink()
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    count = 0

    async def handler(evt: SignalEvent[Any]) -> None:
        nonlocal count
        threads.add(threading.get_ident())
        count += 1

    def emit_many(prefix: str) -> None:
        for number in range(100):
            sink.emit(f"{prefix}.{number}")

    async with SignalDispatcher(sink, max_queued=1000) as dispatcher:
        dispatcher.register("t*", handler)
        async with anyio.create_task_group() as tg:
            for prefix in ("t1", "t2", "t3", "t4"):
                tg.start_soon(anyio.to_thread.run_sync, emit_many, prefix)
        await dispatcher.flush()
    assert count == 400 and dispatcher.dropped_count == 0
    assert threads == {loop_thread}
