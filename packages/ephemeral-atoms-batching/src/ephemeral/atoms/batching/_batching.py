"""BatchingAtom: items grouped into ordered batches, flushed when full or once the first has waited long enough."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Generic, NamedTuple, TypeVar

import anyio
from anyio.abc import TaskGroup

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import AtomBase, FlushBuffer, check_async_callable, check_int, to_seconds

__all__ = ("BatchingAtom", "BatchingStats")

T = TypeVar("T")
_Self = TypeVar("_Self", bound="BatchingAtom[Any]")
_log = logging.getLogger("ephemeral.atoms.batching")


class BatchingStats(NamedTuple):
    """Batch and item counters: ``batches, items, failures, pending, cancelled = atom.get_stats()``.

    Every accepted item is in exactly one of ``items``, ``pending`` and ``cancelled``.

    Attributes:
        batches: Batches ``on_batch`` was handed and is done with, successfully or not.
        items: The items in those batches.
        failures: Batches whose ``on_batch`` raised, or was interrupted because the atom closed on an error.
        pending: Items accepted and not yet through ``on_batch`` (buffered, waiting or being delivered).
        cancelled: Items never handed to ``on_batch`` because the atom closed on an error.
    """

    batches: int
    items: int
    failures: int
    pending: int
    cancelled: int


class BatchingAtom(AtomBase[EphemeralWorkCoordinator[list[T]]], Generic[T]):
    """Collects items into batches and hands each, in order, to ``async def on_batch(items)``.

    A batch is cut as soon as it holds ``max_batch_size`` items, or ``flush_interval`` after its first
    item arrived, whichever comes first; a timer sleeps until that deadline, and none runs while the
    buffer is empty. Batches run one at a time on the atom's coordinator, so they arrive in order and
    never overlap; each is an operation in its window. A batch whose ``on_batch`` raises is logged,
    counted as failed, recorded on its operation with a ``batch.failed:{size}`` signal, and the next
    batches go on. Leaving ``async with`` (or ``drain()``) flushes what is buffered and waits for it;
    leaving on an exception (or an outer cancellation) starts no new batch, interrupts the one being
    delivered (a failed batch) and drops the items never handed over, counted as ``cancelled``.

    Args:
        on_batch: ``async def on_batch(items: list)``; it owns the list it is given.
        max_batch_size: The most items in one batch.
        flush_interval: How long the first item of a batch may wait, as seconds or a timedelta.
        signals: A shared sink for the coordinator's operation signals.

    Raises:
        TypeError: ``on_batch`` is not callable, or an argument has the wrong type.
        ValueError: ``max_batch_size`` < 1 or ``flush_interval`` <= 0.

    Example:
        >>> async with BatchingAtom(save_entries, max_batch_size=100, flush_interval=5.0) as atom:
        ...     atom.enqueue(LogEntry("User logged in"))
    """

    def __init__(
        self,
        on_batch: Callable[[list[T]], Awaitable[object]],
        *,
        max_batch_size: int = 32,
        flush_interval: float | timedelta = 1.0,
        signals: SignalSink | None = None,
    ) -> None:
        check_async_callable(on_batch, "on_batch")
        check_int(max_batch_size, "max_batch_size")
        self._interval = to_seconds(flush_interval, "flush_interval")
        self._on_batch = on_batch
        self._max_batch_size = max_batch_size
        # One batch at a time keeps batches in order. The coordinator's window and queue hold up to
        # 200 batches; beyond that, cut batches wait in ``_waiting`` (``enqueue`` never blocks or drops).
        options = EphemeralOptions(max_concurrency=1, signals=signals, drain_on_signals=None)
        super().__init__(EphemeralWorkCoordinator(self._deliver, options))
        self._buffer: FlushBuffer[T] = FlushBuffer(max_batch_size, self._interval)  # the batch being filled
        self._waiting: deque[list[T]] = deque()  # cut batches not yet accepted by the coordinator
        self._handed_over: anyio.Event | None = None  # set once every batch is in the coordinator
        self._tg: TaskGroup | None = None
        self._closing = False
        self._accepted = 0
        self._delivered = 0
        self._cancelled = 0
        self._batches = 0
        self._failures = 0

    # -- lifecycle --------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._handed_over = anyio.Event()
        self._tg = tg
        tg.start_soon(self._cut_batches)

    async def _on_clean_exit(self) -> None:
        await self._hand_over_all()

    def _on_error_exit(self) -> None:
        self._closing = True
        self.coordinator.cancel()  # at once, before any await: no batch starts after an error

    def _on_close(self) -> None:
        self._closing = True

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        try:
            async with super()._outer_context():  # the coordinator's block, around the cutter's
                yield
        finally:
            self._buffer.take()
            self._waiting.clear()
            self._cancelled = self._accepted - self._delivered  # nothing runs any more

    def complete(self) -> None:
        """Stop accepting items; what is buffered is flushed at once and still delivered. Idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._tg is None:
            self.coordinator.complete()
        self._buffer.wake()

    async def drain(self) -> None:
        """Stop accepting items, flush what is buffered and wait until every batch has been delivered.

        Raises:
            RuntimeError: The atom has not been entered with ``async with``.
        """
        await self._hand_over_all()
        await self.coordinator.drain()

    async def _hand_over_all(self) -> None:
        if self._handed_over is None:
            raise self._not_entered()
        self.complete()
        await self._handed_over.wait()

    # -- intake -----------------------------------------------------------------------------------

    def enqueue(self, item: T) -> None:
        """Add ``item`` to the current batch; never blocks and never drops. Call it on the loop's thread.

        Raises:
            CoordinatorClosedError: The atom has been completed, drained or closed.
            RuntimeError: The atom has not been entered with ``async with``.
        """
        if self._closing:
            raise CoordinatorClosedError("BatchingAtom has been completed; no new items are accepted")
        if self._tg is None:
            raise self._not_entered()
        self._accepted += 1
        batch = self._buffer.add(item)  # the first item of a batch starts the cutter's timer
        if batch is not None:  # full
            self._hand_over(batch)

    def _hand_over(self, batch: list[T]) -> None:
        """Give a cut batch to the coordinator, behind any batch still waiting for room there."""
        if not self._waiting and self.coordinator.try_enqueue(batch):
            return
        self._waiting.append(batch)
        self._buffer.wake()

    async def _cut_batches(self) -> None:
        """Feed waiting batches to the coordinator as it makes room, and cut the open batch when due."""
        assert self._handed_over is not None
        while True:
            try:
                while self._waiting:
                    await self.coordinator.enqueue(self._waiting[0])
                    self._waiting.popleft()
            except CoordinatorClosedError:  # the coordinator was completed or cancelled directly
                self._abandon()
                return
            buffer = self._buffer
            if buffer and self._closing:
                self._hand_over(buffer.take())
            elif self._closing:
                self.coordinator.complete()
                self._handed_over.set()
                return
            elif await buffer.wait():  # the open batch is due (False: woken, look again)
                self._hand_over(buffer.take())

    def _abandon(self) -> None:
        undelivered = len(self._buffer) + sum(len(batch) for batch in self._waiting)
        _log.warning("BatchingAtom's coordinator stopped taking batches; %d items will not be delivered", undelivered)
        self._closing = True
        self._buffer.take()
        self._waiting.clear()
        self._cancelled += undelivered
        assert self._handed_over is not None
        self._handed_over.set()

    # -- delivery ---------------------------------------------------------------------------------

    async def _deliver(self, batch: list[T]) -> None:
        size = len(batch)
        ok = False
        try:
            await self._on_batch(batch)
            ok = True
        except Exception:
            _log.exception("on_batch raised for a batch of %d items; the next batches go on", size)
            current_operation().emit(f"batch.failed:{size}")
            raise  # recorded on the operation
        finally:
            # on_batch was handed the batch: it counts as delivered, and as failed unless it returned
            # (raised, or interrupted because the atom closed on an error).
            self._batches += 1
            self._delivered += size
            if not ok:
                self._failures += 1
        current_operation().emit(f"batch.flushed:{size}")

    # -- state ------------------------------------------------------------------------------------

    @property
    def max_batch_size(self) -> int:
        """The most items in one batch."""
        return self._max_batch_size

    @property
    def flush_interval(self) -> float:
        """How long, in seconds, the first item of a batch may wait before the batch is flushed."""
        return self._interval

    @property
    def buffered_count(self) -> int:
        """Items accepted and not yet handed to the coordinator (the open batch and cut ones waiting)."""
        return len(self._buffer) + sum(len(batch) for batch in self._waiting)

    def get_stats(self) -> BatchingStats:
        """Batch and item counters now (``stats()`` gives the coordinator's, counting batches)."""
        return BatchingStats(
            self._batches,
            self._delivered,
            self._failures,
            self._accepted - self._delivered - self._cancelled,
            self._cancelled,
        )
