"""PersistentSignalWindow: an in-memory signal window, written to SQLite in the background and restored on startup."""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from itertools import islice
from typing import Any, NamedTuple

import anyio
from anyio.abc import TaskGroup

from ephemeral.core import CoordinatorClosedError, SignalEvent, SignalFilter, SignalSink, Subscription
from ephemeral.core.lowlevel import (
    LoopBinding,
    TaskGroupOwner,
    Wakeup,
    check_int,
    loop_clock,
    next_id,
    to_seconds,
    utc_now,
)
from ephemeral.sqlite.singlewriter import SqliteConnection, SqliteSingleWriter, SqliteSingleWriterOptions

from ._store import LOAD_SQL, Row, StoredRow, create_schema, insert_rows

__all__ = ("PersistentSignalWindow", "WindowStats")

_log = logging.getLogger("ephemeral.patterns.persistentwindow")

#: A signal waiting to be written: (sequence number, operation id, name, key, epoch seconds).
_Pending = tuple[int, int, str, "str | None", float]


class WindowStats(NamedTuple):
    """What a window holds and has written: ``window.get_stats()``.

    Every signal given to ``emit`` is in exactly one of ``total_flushed``, ``pending_flush`` and ``dropped``.

    Attributes:
        in_memory_count: Live signals in the window's sink (its own ``window.*`` signals included).
        total_emitted: Signals given to ``emit`` (restored ones are not counted).
        last_flushed_id: The database row id of the last signal written; 0 before the first write.
        pending_flush: Signals emitted and not yet written.
        total_flushed: Signals written to the database.
        dropped: Signals kept in memory but never queued for writing, because ``max_pending`` were waiting.
    """

    in_memory_count: int
    total_emitted: int
    last_flushed_id: int
    pending_flush: int
    total_flushed: int
    dropped: int


class PersistentSignalWindow(TaskGroupOwner):
    """A signal window kept in memory and written to a SQLite file, so its signals survive a restart.

    ``emit`` records a signal in the window's ``sink`` (a ``SignalSink(max_window_size, window_max_age)``),
    where ``sense``, ``detect`` and ``count`` read it at once, and queues it for writing. A background task
    writes what is queued ``flush_interval`` after the first unwritten signal arrived (sooner once
    ``max_signals_per_flush`` are waiting), in emission order, in transactions of at most
    ``max_signals_per_flush`` rows; ``await flush()`` writes now, and leaving ``async with`` writes the
    rest. Each signal is written exactly once, whatever the window evicted meanwhile. A failed write is
    signalled (``window.flush.error:{ExceptionClass}``) and logged, its signals stay queued, and the task
    retries one interval later. ``await load_from_disk(max_age)`` restores the signals earlier runs stored.

    The database (``signals`` table, WAL) is opened by the first load or write, not by ``async with``: a
    window whose disk is unavailable still works in memory and keeps retrying.

    Args:
        path: A file path, or a ``"Data Source=signals.db"`` connection string.
        flush_interval: How long the first unwritten signal waits before a write, in seconds or a timedelta.
        max_signals_per_flush: The most rows written in one transaction.
        max_window_size: The most signals the in-memory window keeps.
        window_max_age: How long a signal stays in the in-memory window, in seconds or a timedelta.
        sample_rate: One write transaction in ``sample_rate`` emits ``window.flush.start`` and ``.done``.
        max_pending: The most signals waiting to be written; beyond it, signals are kept in memory only and
            counted in ``WindowStats.dropped`` (the window emits ``window.pending.full`` once per episode).
        now: The wall clock (aware UTC datetimes), read once here to map the event loop's clock, which the
            window's timestamps follow, onto wall-clock time.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A size or duration is out of range, or ``path`` is empty or an unusable connection string.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_interval: float | timedelta = 30.0,
        *,
        max_signals_per_flush: int = 1000,
        max_window_size: int = 10000,
        window_max_age: float | timedelta = 600.0,
        sample_rate: int = 10,
        max_pending: int = 100_000,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._interval = to_seconds(flush_interval, "flush_interval")
        self._chunk = check_int(max_signals_per_flush, "max_signals_per_flush")
        self._max_window_size = check_int(max_window_size, "max_window_size")
        self._max_age = to_seconds(window_max_age, "window_max_age")
        self._rate = check_int(sample_rate, "sample_rate")
        self._max_pending = check_int(max_pending, "max_pending")
        if not callable(now):
            raise TypeError(f"now must be callable, got {now!r}")
        if not isinstance(sample := now(), datetime) or sample.utcoffset() is None:
            raise ValueError(f"now must return timezone-aware datetimes (such as utc_now), got {sample!r}")
        self._writer = SqliteSingleWriter(path, SqliteSingleWriterOptions(read_connections=1))
        self._sink = SignalSink(self._max_window_size, self._max_age, clock=loop_clock(), now=now)
        self._lock = threading.Lock()  # guards the queue and counters: ``emit`` may run on any thread
        self._own: dict[int, SignalEvent[Any]] = {}  # the window's own and restored events, while emitted
        self._subscription: Subscription | None = None
        self._pending: deque[_Pending] = deque()
        self._seq = 0  # the sequence number of the last signal accepted
        self._flushed_seq = 0  # ... and of the last one written
        self._emitted = 0
        self._flushed = 0
        self._dropped = 0
        self._overflowing = False
        self._last_flushed_id = 0
        self._stored_through: int | None = None  # the last row id of earlier runs, once the schema is ready
        self._writes = 0
        self._healthy = True  # the last write succeeded: a full queue may be written before the interval
        self._flush_lock = anyio.Lock()
        self._schema_lock = anyio.Lock()
        self._clock: Callable[[], float] = loop_clock()  # the loop's, set again on entering
        self._wakeup = Wakeup(self._clock)  # the flush loop's sleep
        self._binding: LoopBinding | None = None
        self._entered = False
        self._closing = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._entered = True
        self._binding = LoopBinding()
        self._clock = loop_clock()
        self._wakeup = Wakeup(self._clock)
        self._subscription = self._sink.subscribe(self._on_signal)
        tg.start_soon(self._flush_loop)

    def _on_close(self) -> None:
        """Stop intake; the background task is cancelled next (a chunk being written finishes: it is shielded)."""
        with self._lock:
            self._closing = True
        if self._subscription is not None:
            self._subscription.close()

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        """Once the background task has stopped, write every queued signal and close the database."""
        try:
            yield
        except BaseException:
            try:
                await self._write_the_rest()
            except Exception:
                _log.exception("the final flush failed; %d signals were not written", len(self._pending))
            raise
        await self._write_the_rest()

    async def _write_the_rest(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._flush_through(self._seq)
            finally:
                await self._writer.aclose()

    def _check_open(self) -> None:
        if self._closing:
            raise CoordinatorClosedError("the PersistentSignalWindow is closed")
        if not self._entered:
            raise self._not_entered("window", "window")

    # -- emitting ---------------------------------------------------------------------------------

    def emit(self, signal: str | SignalEvent[Any], key: str | None = None) -> SignalEvent[Any]:
        """Record a signal in the window and queue it for writing. Safe to call from any thread.

        Args:
            signal: A signal name, or a ready ``SignalEvent`` (its name, operation id, key and
                timezone-aware timestamp are kept; a payload or propagation path is not stored).
            key: An optional correlation key (only with a name: an event carries its own).

        Returns:
            The event recorded.

        Raises:
            TypeError: ``signal`` is neither a str nor a SignalEvent, ``key`` not a str, or a key is given
                with an event.
            ValueError: The name is empty, or the event's timestamp is naive.
            RuntimeError: The window has not been entered with ``async with``.
            CoordinatorClosedError: The window is closed (an ``anyio.ClosedResourceError`` too).
        """
        if isinstance(signal, SignalEvent):
            if key is not None:
                raise TypeError("key: a SignalEvent carries its own key; call emit(event) alone")
            if signal.timestamp.utcoffset() is None:
                raise ValueError(f"signal: the event's timestamp must be timezone-aware, got {signal.timestamp!r}")
            event: SignalEvent[Any] = signal
        elif isinstance(signal, str):
            if not signal:
                raise ValueError("signal must not be empty")
            if key is not None and not isinstance(key, str):
                raise TypeError(f"key must be a str or None, got {key!r}")
            name = signal if signal.__class__ is str else str.__str__(signal)  # a str-valued Enum: its value
            event = SignalEvent(name, next_id(), key, self._sink.now())
        else:
            raise TypeError(f"signal must be a str or a SignalEvent, got {signal!r}")
        with self._lock:
            self._check_open()
        self._sink.emit(event)  # queued for writing by ``_on_signal``, like every signal on the sink
        return event

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        """Queue a signal that reached the window's sink (from ``emit``, or from anything sharing the sink)."""
        if id(event) in self._own:
            return  # the window's own signals and restored ones are not written
        row = (event.operation_id, event.signal, event.key, event.timestamp.timestamp())
        with self._lock:
            if self._closing:
                return
            self._emitted += 1
            queued = len(self._pending)
            overflow_began = False
            if queued >= self._max_pending:
                self._dropped += 1
                overflow_began, self._overflowing = not self._overflowing, True
            else:
                self._seq += 1
                self._pending.append((self._seq, *row))
                queued += 1
        if overflow_began:
            _log.warning("%d signals are waiting to be written; new signals stay in memory only", queued)
            self._signal("window.pending.full")
        elif queued == 1 or queued == self._chunk:
            self._wake_loop()

    def _signal(self, name: str) -> None:
        """Emit one of the window's own signals: in the window, never written."""
        self._untracked(self._sink.emit, SignalEvent(name, next_id(), None, self._sink.now()))

    def _untracked(self, record: Callable[[SignalEvent[Any]], object], event: SignalEvent[Any]) -> Any:
        """``record(event)`` on the sink without queueing the event for writing."""
        self._own[id(event)] = event
        try:
            return record(event)
        finally:
            del self._own[id(event)]

    # -- reading ----------------------------------------------------------------------------------

    def sense(self, pattern: SignalFilter = None, *, within: float | timedelta | None = None) -> list[SignalEvent[Any]]:
        """The live signals in the window, oldest first.

        Args:
            pattern: Only signals matching this glob, ``PatternSet`` or predicate on the event.
            within: Only signals at most this old (seconds or a timedelta).
        """
        return self._sink.sense(pattern, within=within)

    def detect(self, pattern: SignalFilter) -> bool:
        """Whether any live signal in the window matches ``pattern``."""
        return self._sink.detect(pattern)

    def count(self, pattern: SignalFilter = None, *, within: float | timedelta | None = None) -> int:
        """How many live signals in the window match ``pattern`` (all of them when None)."""
        return self._sink.count(pattern, within=within)

    def get_stats(self) -> WindowStats:
        """What the window holds and has written, now."""
        in_memory = self._sink.count()
        with self._lock:
            return WindowStats(
                in_memory_count=in_memory,
                total_emitted=self._emitted,
                last_flushed_id=self._last_flushed_id,
                pending_flush=len(self._pending),
                total_flushed=self._flushed,
                dropped=self._dropped,
            )

    @property
    def sink(self) -> SignalSink:
        """The in-memory window; give it to coordinators (``signals=window.sink``) to share it."""
        return self._sink

    @property
    def database(self) -> str:
        """The resolved absolute path of the database file."""
        return self._writer.database

    @property
    def flush_interval(self) -> float:
        """How long, in seconds, the first unwritten signal waits before a write."""
        return self._interval

    # -- writing ----------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write every signal emitted before this call, in transactions of ``max_signals_per_flush`` rows.

        Returns:
            How many signals this call wrote (0 when none were waiting, or a running write took them).

        Raises:
            RuntimeError: The window has not been entered with ``async with``.
            CoordinatorClosedError: The window is closed (an ``anyio.ClosedResourceError`` too).
            sqlite3.Error: A write failed (signalled as ``window.flush.error:{ExceptionClass}``); the
                signals it did not write stay queued, in order, for the next flush.
        """
        self._check_open()
        return await self._flush_through(self._seq)

    async def _flush_through(self, last: int) -> int:
        """Write the queued signals up to sequence number ``last``, one transaction per chunk."""
        written = 0
        async with self._flush_lock:
            while True:
                with self._lock:
                    chunk = [row for row in islice(self._pending, self._chunk) if row[0] <= last]
                if not chunk:
                    return written
                # Shielded: once rows are committed the queue must learn it, or the next flush would
                # write them again. A cancellation waits for at most one chunk.
                with anyio.CancelScope(shield=True):
                    written += await self._write_chunk(chunk)

    async def _write_chunk(self, chunk: list[_Pending]) -> int:
        size = len(chunk)
        self._writes += 1
        sampled = self._writes % self._rate == 1 % self._rate
        if sampled:
            self._signal(f"window.flush.start:{size}")
        try:
            await self._ensure_schema()
            rows: list[Row] = [pending[1:] for pending in chunk]
            last_id = await self._writer.execute_in_transaction(partial(insert_rows, rows))
        except Exception as error:
            self._healthy = False
            self._signal(f"window.flush.error:{type(error).__name__}")
            raise
        with self._lock:
            self._flushed_seq = chunk[-1][0]  # the high-water mark: every signal up to it is written
            pending = self._pending
            while pending and pending[0][0] <= self._flushed_seq:
                pending.popleft()
            self._flushed += size
            self._last_flushed_id = last_id
            if len(self._pending) < self._max_pending:
                self._overflowing = False
        self._healthy = True
        if sampled:
            self._signal(f"window.flush.done:{size}")
        return size

    async def _ensure_schema(self) -> int:
        """Create the table on first use; return the last row id stored by earlier runs."""
        if self._stored_through is None:
            async with self._schema_lock:
                if self._stored_through is None:
                    self._stored_through = await self._writer.execute_in_transaction(create_schema)
                    self._signal("window.initialized")
        return self._stored_through

    # -- the background task ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        """Write the queue ``flush_interval`` after a signal arrives in it empty, or at once when a chunk is full."""
        while True:
            await self._wait_until(lambda: bool(self._pending))
            deadline = self._clock() + self._interval
            # After a failure, wait out the interval even when a chunk is full: no busy retries.
            await self._wait_until(lambda: self._healthy and len(self._pending) >= self._chunk, deadline)
            try:
                await self._flush_through(self._seq)
            except Exception as error:
                _log.warning(
                    "writing the signal window failed (%s); %d signals stay queued and are retried in %s s",
                    type(error).__name__,
                    len(self._pending),
                    self._interval,
                    exc_info=True,
                )

    async def _wait_until(self, ready: Callable[[], bool], deadline: float | None = None) -> None:
        """Sleep until ``ready()`` (re-checked whenever ``emit`` wakes the task) or ``deadline``."""
        while not ready():
            if not await self._wakeup.wait(deadline, ready=ready):
                return

    def _wake_loop(self) -> None:
        # Only while the loop waits: an emit from a thread the loop is itself waiting on must not block.
        if self._wakeup.waiting and self._binding is not None:
            self._binding.call(self._wakeup.wake)

    # -- restoring --------------------------------------------------------------------------------

    async def load_from_disk(self, max_age: float | timedelta | None = None) -> int:
        """Restore the signals earlier runs stored, newer than ``max_age``, into the window.

        Each comes back with its name, key, operation id and timestamp, in the order it was emitted, and
        ages from that timestamp: signals older than the window's ``window_max_age`` would be invisible
        already and are skipped, and so are the oldest beyond ``max_window_size``. Restored signals are not
        written again, and a signal already live in the window is not restored twice. Call it on startup,
        before emitting: restored signals enter the window after the signals already in it.

        Args:
            max_age: Restore only signals at most this old (seconds or a timedelta); None for the window's
                ``window_max_age``.

        Returns:
            How many signals were restored (also emitted as ``window.load.done:{n}``).

        Raises:
            TypeError: ``max_age`` is not seconds or a timedelta.
            ValueError: ``max_age`` is not positive.
            RuntimeError: The window has not been entered with ``async with``.
            CoordinatorClosedError: The window is closed (an ``anyio.ClosedResourceError`` too).
            sqlite3.Error: The database could not be read.
        """
        horizon = self._max_age if max_age is None else min(to_seconds(max_age, "max_age"), self._max_age)
        self._check_open()
        stored_through = await self._ensure_schema()
        cutoff = self._sink.now().timestamp() - horizon
        params = (stored_through, cutoff, self._max_window_size)

        async def read(connection: SqliteConnection) -> list[StoredRow]:
            return await connection.execute_fetchall(LOAD_SQL, params)

        rows = await self._writer.query(read)
        restored = self._restore(reversed(rows))
        self._signal(f"window.load.done:{restored}")
        return restored

    def _restore(self, rows: Iterable[StoredRow]) -> int:
        live = {(e.operation_id, e.signal, e.key, e.timestamp) for e in self._sink.sense()}
        restored = 0
        for _, operation_id, name, key, stamp in rows:
            timestamp = datetime.fromtimestamp(stamp, timezone.utc)
            if (operation_id, name, key, timestamp) in live:
                continue
            # The sink ages a restored signal from its stored timestamp; one already too old is refused.
            restored += self._untracked(self._sink.restore, SignalEvent(name, operation_id, key, timestamp))
        return restored

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open" if self._entered else "not entered"
        return f"<PersistentSignalWindow {self._writer.database!r} {state}>"
