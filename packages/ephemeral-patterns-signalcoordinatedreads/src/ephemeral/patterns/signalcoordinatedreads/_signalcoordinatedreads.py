"""Quiescing reads during updates with signals instead of locks."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import anyio

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink
from ephemeral.core.lowlevel import check_int, loop_clock

__all__ = ("CoordinatedReadsResult", "SignalCoordinatedReads")

IN_PROGRESS = "update.in-progress"
DONE = "update.done"
#: How long a read and an update take in the demo, on the event loop's clock.
READ_SECONDS = 0.005
UPDATE_SECONDS = 0.05
#: How often a deferred reader looks at the sink again.
CHECK_INTERVAL = 0.02


class CoordinatedReadsResult(NamedTuple):
    """What a run of ``SignalCoordinatedReads`` did.

    Attributes:
        reads_completed: Reads that ran to the end.
        updates_completed: Updates that ran to the end.
        signals: The names of the signals in the sink's window at the end, oldest first.
        reads_started_during_update: Reads that started while ``update.in-progress`` was live (0: a
            read already running when an update starts finishes, but none starts during one).
        reads_after_update: Reads that started after an update had finished (they waited for it).
    """

    reads_completed: int
    updates_completed: int
    signals: list[str]
    reads_started_during_update: int
    reads_after_update: int


class SignalCoordinatedReads:
    """Readers defer while ``update.in-progress`` is live and resume once the update is done."""

    IN_PROGRESS = IN_PROGRESS
    DONE = DONE

    @staticmethod
    async def run(
        read_count: int = 10, update_count: int = 1, *, narrate: Callable[[str], object] | None = None
    ) -> CoordinatedReadsResult:
        """Run ``read_count`` reads and ``update_count`` updates side by side, coordinated by signals.

        Readers run 4 at a time on a coordinator with ``defer_on_signals="update.in-progress"``: a read
        reaching the front while that signal is live waits (looking again every 20 ms). Each update runs
        alone: it emits ``update.in-progress``, works 50 ms, retracts ``update.in-progress`` and emits
        ``update.done``, and the waiting reads go ahead. All reads are enqueued first, then the
        updates, as in the original demo, so the first reads run before the update and the rest after.

        Args:
            read_count: How many reads (at least 1).
            update_count: How many updates (at least 1).
            narrate: Called with a line of text for each step as it happens (``print``).

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``read_count`` or ``update_count`` is below 1.
        """
        check_int(read_count, "read_count")
        check_int(update_count, "update_count")
        if narrate is not None and not callable(narrate):
            raise TypeError(f"narrate must be callable or None, got {narrate!r}")
        say: Callable[[str], object] = narrate if narrate is not None else _silent
        sink = SignalSink(max_capacity=max(128, 4 * (read_count + update_count)), max_age=60.0, clock=loop_clock())
        clock = loop_clock()
        start = clock()
        updates_done = 0
        during = 0
        after = 0

        def stamp() -> str:
            return f"{(clock() - start) * 1000:5.0f} ms"

        async def read(item: int) -> None:
            nonlocal during, after
            if sink.detect(IN_PROGRESS):
                during += 1
            elif updates_done:
                after += 1
            say(f"{stamp()}  read {item} starts")
            await anyio.sleep(READ_SECONDS)
            sink.emit(f"read.completed:{item}")

        async def update(item: int) -> None:
            nonlocal updates_done
            say(f"{stamp()}  update {item} starts: emits {IN_PROGRESS}, new reads wait")
            sink.emit(IN_PROGRESS, key=str(item))
            await anyio.sleep(UPDATE_SECONDS)
            sink.retract(IN_PROGRESS, key=str(item))
            updates_done += 1
            sink.emit(DONE, key=str(item))
            say(f"{stamp()}  update {item} done: retracts {IN_PROGRESS}, emits {DONE}, reads resume")

        reader_options = EphemeralOptions(
            max_concurrency=4,
            signals=sink,
            defer_on_signals=IN_PROGRESS,
            defer_check_interval=CHECK_INTERVAL,
            max_defer_attempts=500,
            max_tracked_operations=max(read_count, 1),
        )
        updater_options = EphemeralOptions(max_concurrency=1, signals=sink, max_tracked_operations=update_count)
        async with (
            EphemeralWorkCoordinator(read, reader_options) as readers,
            EphemeralWorkCoordinator(update, updater_options) as updaters,
        ):
            for item in range(read_count):
                await readers.enqueue(item)
            for item in range(update_count):
                await updaters.enqueue(item)
            await updaters.drain()
            await readers.drain()
            reads, updates = readers.total_completed, updaters.total_completed
            signals = [event.signal for event in sink.sense()]
        return CoordinatedReadsResult(reads, updates, signals, during, after)


def _silent(line: str) -> None:
    """Narrate nothing."""
