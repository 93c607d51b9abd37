"""Every way of reacting to a signal, in one run: callbacks, a dispatcher, polling, defer and cancel."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import anyio

from ephemeral.core import (
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalDispatcher,
    SignalEvent,
    SignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import check_int, loop_clock

__all__ = ("SignalReactionResult", "SignalReactionShowcase")

#: How long each stage of the demo's work takes, on the event loop's clock.
WORK_SECONDS = 0.005
#: How long the deferred work is held back before the pause signal is retracted.
PAUSE_SECONDS = 0.05


class SignalReactionResult(NamedTuple):
    """What each kind of reaction saw in a run of ``SignalReactionShowcase``.

    Attributes:
        dispatched_hits: Calls of the ``SignalDispatcher`` handler registered for ``stage.done:*``.
        polled_hits: ``stage.done:*`` signals found by reading the sink's window afterwards (``sense``).
        signals: The names of every signal emitted on or through the sink, in emission order.
        on_signal_hits: Calls of the coordinator's synchronous ``on_signal`` callback.
        on_signal_async_hits: Calls of the coordinator's ``on_signal_async`` callback.
        deferred_count: Items held back by ``defer_on_signals`` while ``maintenance.pause`` was live,
            which all ran once it was retracted.
        ran_while_paused: Deferred items that started while the pause signal was live (0).
        cancelled_count: Items skipped by ``cancel_on_signals`` while ``maintenance.abort`` was live.
    """

    dispatched_hits: int
    polled_hits: int
    signals: list[str]
    on_signal_hits: int
    on_signal_async_hits: int
    deferred_count: int
    ran_while_paused: int
    cancelled_count: int


class SignalReactionShowcase:
    """Runs a small workload and reacts to its signals in every way ephemeral offers."""

    @staticmethod
    async def run(item_count: int = 8, *, narrate: Callable[[str], object] | None = None) -> SignalReactionResult:
        """Run ``item_count`` items through each reaction and count what every reaction saw.

        1. Work: each item emits ``stage.start:{i}``, works 5 ms, emits ``stage.done:{i}``; the
           coordinator's ``on_signal`` (sync, on the emitting path) and ``on_signal_async`` (awaited
           off it) see every signal, a ``SignalDispatcher`` runs its ``stage.done:*`` handler, and the
           sink's window is read (``sense("stage.done:*")``) at the end.
        2. Defer: with ``maintenance.pause`` live, a coordinator with ``defer_on_signals`` holds
           ``item_count`` items back; retracting the signal lets them all run.
        3. Cancel: with ``maintenance.abort`` live, a coordinator with ``cancel_on_signals`` skips
           ``item_count`` items (counted, never run).

        Args:
            item_count: How many items each step runs (at least 1).
            narrate: Called with a line of text describing each step as it happens (``print``).

        Raises:
            TypeError: ``item_count`` is not an int, or ``narrate`` is not callable.
            ValueError: ``item_count`` is below 1.
        """
        n = check_int(item_count, "item_count")
        if narrate is not None and not callable(narrate):
            raise TypeError(f"narrate must be callable or None, got {narrate!r}")
        say: Callable[[str], object] = narrate if narrate is not None else _silent
        sink = SignalSink(max_capacity=max(64, 8 * n), max_age=60.0, clock=loop_clock())
        signals: list[str] = []
        counts = {"sync": 0, "async": 0, "dispatched": 0}

        def on_signal(event: SignalEvent[Any]) -> None:
            counts["sync"] += 1

        async def on_signal_async(event: SignalEvent[Any]) -> None:
            counts["async"] += 1

        async def on_done(event: SignalEvent[Any]) -> None:
            counts["dispatched"] += 1

        async def stage(item: int) -> None:
            operation = current_operation()
            operation.emit(f"stage.start:{item}")
            await anyio.sleep(WORK_SECONDS)
            operation.emit(f"stage.done:{item}")

        concurrency = min(os.cpu_count() or 1, 8)
        with sink.subscribe(lambda event: signals.append(event.signal)):
            # 1. Callbacks, a dispatcher, and a read of the window.
            say(f"1. {n} items each emit stage.start:<i>, work 5 ms, then emit stage.done:<i>.")
            async with SignalDispatcher(sink, max_concurrency=4) as dispatcher:
                dispatcher.register("stage.done:*", on_done)
                options = EphemeralOptions(
                    max_concurrency=concurrency,
                    signals=sink,
                    on_signal=on_signal,
                    on_signal_async=on_signal_async,
                    max_tracked_operations=max(n, 1),
                )
                async with EphemeralWorkCoordinator(stage, options) as work:
                    for item in range(n):
                        await work.enqueue(item)
                    await work.drain()
                    polled = len(sink.sense("stage.done:*"))
            say(f"   on_signal (sync, as each signal is emitted) saw {counts['sync']} signals;")
            say(f"   on_signal_async (awaited off the emitting path) saw {counts['async']};")
            say(f"   the dispatcher's stage.done:* handler ran {counts['dispatched']} times;")
            say(f"   reading the window afterwards (sense) found {polled} stage.done signals.")

            # 2. Defer while a signal is live.
            ran: list[tuple[int, bool]] = []

            async def deferred(item: int) -> None:
                ran.append((item, sink.detect("maintenance.pause")))

            say(f"2. maintenance.pause is emitted; {n} items go to a coordinator deferring on it.")
            defer_options = EphemeralOptions(
                max_concurrency=concurrency,
                signals=sink,
                defer_on_signals="maintenance.pause",
                defer_check_interval=0.01,
                max_defer_attempts=1_000,
            )
            async with EphemeralWorkCoordinator(deferred, defer_options) as paused:
                sink.emit("maintenance.pause")
                for item in range(n):
                    await paused.enqueue(item)
                await anyio.sleep(PAUSE_SECONDS)
                held = paused.pending_count
                say(f"   after {PAUSE_SECONDS * 1000:.0f} ms: {len(ran)} ran, {held} wait at the front.")
                sink.retract("maintenance.pause")
                await paused.drain()
            say(f"   maintenance.pause is retracted: all {len(ran)} ran.")

            # 3. Cancel while a signal is live.
            cancel_options = EphemeralOptions(
                max_concurrency=concurrency, signals=sink, cancel_on_signals="maintenance.abort"
            )
            cancelled_ran: list[int] = []

            async def cancellable(item: int) -> None:
                cancelled_ran.append(item)

            say(f"3. maintenance.abort is emitted; {n} items go to a coordinator cancelling on it.")
            async with EphemeralWorkCoordinator(cancellable, cancel_options) as aborting:
                sink.emit("maintenance.abort")
                for item in range(n):
                    await aborting.enqueue(item)
                await aborting.drain()
                skipped = aborting.total_skipped
            say(f"   {skipped} skipped (counted in total_skipped), {len(cancelled_ran)} ran.")

        return SignalReactionResult(
            dispatched_hits=counts["dispatched"],
            polled_hits=polled,
            signals=signals,
            on_signal_hits=counts["sync"],
            on_signal_async_hits=counts["async"],
            deferred_count=held,
            ran_while_paused=sum(1 for _, paused_then in ran if paused_then),
            cancelled_count=skipped,
        )


def _silent(line: str) -> None:
    """Narrate nothing."""
