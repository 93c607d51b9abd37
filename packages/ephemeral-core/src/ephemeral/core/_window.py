"""The operation window: what a coordinator shows of its work, bounded by count and age.

The window holds every running operation, the finished ones (at most ``capacity`` finished operations,
pinned ones included: trimming drops the oldest unpinned ones first), none older than ``lifetime``
after finishing unless pinned. An operation leaving the window is finalised once: the ``finalized``
hook fires with its snapshot and its signals leave an echo. The signal queries only read the window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import anyio

from ._clock import to_seconds
from ._events import SignalEvent
from ._hooks import EventHook
from ._matcher import compile_pattern
from ._operation import EphemeralOperation, EphemeralOperationSnapshot, OperationEcho, OperationEchoStore, OperationHost
from ._sink import SignalFilter, as_predicate

__all__ = ("OperationWindow", "WindowViews")

R = TypeVar("R")


class OperationWindow:
    """Running, finished and pinned operations, trimmed by count and age, finalised once on leaving.

    Args:
        capacity: The most finished operations kept (pinned ones count; they are trimmed last, never).
        lifetime: Seconds a finished, unpinned operation stays after finishing (None: until pushed out).
        finalized: Fired with the snapshot of each operation leaving the window.
    """

    __slots__ = (
        "_age_wake",
        "_room",
        "_sequence",
        "_trimmed",
        "capacity",
        "clock",
        "closed",
        "echoes",
        "finalized",
        "finished",
        "lifetime",
        "on_retire",
        "pinned",
        "running",
        "started",
    )

    def __init__(
        self,
        capacity: int,
        lifetime: float | None,
        finalized: EventHook[EphemeralOperationSnapshot[Any]] | None = None,
    ) -> None:
        self.capacity = capacity
        self.lifetime = lifetime
        self.finalized: EventHook[EphemeralOperationSnapshot[Any]] = (
            finalized if finalized is not None else EventHook("operation_finalized")
        )
        self.running: dict[int, EphemeralOperation] = {}
        self.finished: deque[EphemeralOperation] = deque()
        self.pinned: dict[int, EphemeralOperation] = {}
        self.echoes: OperationEchoStore | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.started = False
        self.closed = False
        #: Called with each operation once it finished (after it took its place in the window).
        self.on_retire: Callable[[EphemeralOperation], None] | None = None
        self._room = capacity  # finished, unpinned operations kept: capacity minus the finished pinned ones
        self._sequence = 0
        self._trimmed = 0  # the newest dispatch sequence trimmed by count
        self._age_wake: anyio.Event | None = None

    def bind(self, clock: Callable[[], float], echoes: OperationEchoStore | None) -> None:
        """Start: read time from ``clock`` (the loop's) and leave echoes in ``echoes``."""
        self.clock = clock
        self.echoes = echoes
        self.started = True

    # -- entering and leaving -----------------------------------------------------------------------

    def open(self, operation_id: int, key: str | None, host: OperationHost, now: float) -> EphemeralOperation:
        """A new running operation, next in dispatch order."""
        self._sequence = sequence = self._sequence + 1
        operation = EphemeralOperation(operation_id, key, host, now, sequence)
        self.running[operation_id] = operation
        return operation

    def record(self, operation_id: int, key: str | None, host: OperationHost, status: Any) -> None:
        """Put an item that never ran (skipped or cancelled) in the window as a finished operation."""
        now = self.clock() if self.started and not self.closed else 0.0
        operation = self.open(operation_id, key, host, now)
        operation.completed_at = now
        operation.status = status
        self.retire(operation)

    def retire(self, operation: EphemeralOperation) -> None:
        """An operation finished: it joins the finished ones (or the pinned ones), trimming the oldest."""
        if self.running.pop(operation.id, None) is None:  # evicted while running
            if self.on_retire is not None:
                self.on_retire(operation)
            return
        if operation.is_pinned:
            self.pinned[operation.id] = operation
            self._room -= 1
            self._trim_count()
        else:
            finished = self.finished
            if not finished and self._age_wake is not None:
                self._age_wake.set()
            finished.append(operation)
            if self.closed:
                self.finalize(operation)
            if len(finished) > self._room:
                oldest = finished.popleft()
                self._trimmed = oldest.sequence
                if oldest._signals or self.finalized.handlers:  # the attribute, not has_signals: once per item
                    self.finalize(oldest)  # nothing to echo or tell otherwise
        if self.on_retire is not None:
            self.on_retire(operation)

    def _trim_count(self) -> None:
        finished = self.finished
        while finished and len(finished) > self._room:
            oldest = finished.popleft()
            self._trimmed = oldest.sequence
            self.finalize(oldest)

    def finalize(self, operation: EphemeralOperation) -> None:
        """The operation left the window: fire ``finalized`` and leave an echo, once."""
        if operation.finalized:
            return
        operation.finalized = True
        if self.echoes is not None and operation.has_signals:
            self.echoes.add(operation, (operation.completed_at or 0.0) if self.closed else self.clock())
        if self.finalized.handlers:
            self.finalized.fire(operation.snapshot())

    def close(self) -> None:
        """The coordinator closed: finalise every finished operation; later ones are finalised as they finish."""
        if self.closed:
            return
        for operation in self.operations():
            if operation.completed_at is not None:  # bodies still unwinding are finalised as they retire
                self.finalize(operation)
        self.closed = True

    # -- age ----------------------------------------------------------------------------------------

    def trim_age(self) -> None:
        """Finalise the finished, unpinned operations older than ``lifetime``."""
        if self.lifetime is None or not self.started or self.closed:
            return
        lifetime, now = self.lifetime, self.clock()
        finished = self.finished
        # The same expression as the sweeper's deadline, so a wake-up at the deadline always trims.
        while finished and (finished[0].completed_at or 0.0) + lifetime <= now:
            self.finalize(finished.popleft())

    async def sweep(self) -> None:
        """Trim by age for ever, sleeping until the oldest finished operation is due (or one finishes)."""
        if self.lifetime is None:
            return
        lifetime = self.lifetime
        while True:
            self.trim_age()
            if self.finished:
                # A microsecond past the deadline: clock arithmetic rounding can never make the
                # sweeper wake just short of it and spin (under a virtual clock time would not move).
                # Whole microseconds too: looptime 0.7 can hang on a deadline between its ticks.
                deadline = (self.finished[0].completed_at or 0.0) + lifetime
                await anyio.sleep(round(max(deadline - self.clock(), 0.0) + 1e-6, 6))
            else:
                self._age_wake = anyio.Event()
                await self._age_wake.wait()
                self._age_wake = None

    # -- lookups, pins, evictions -------------------------------------------------------------------

    def operations(self) -> list[EphemeralOperation]:
        """Every operation in the window, in dispatch order (age trimmed first)."""
        self.trim_age()
        operations = [*self.running.values(), *self.finished, *self.pinned.values()]
        operations.sort(key=lambda operation: operation.sequence)
        return operations

    def find(self, operation_id: int) -> EphemeralOperation | None:
        """The operation with this id, if it is in the window."""
        found = self.running.get(operation_id) or self.pinned.get(operation_id)
        if found is None:
            found = next((op for op in self.finished if op.id == operation_id), None)
        return found

    def pin(self, operation_id: int) -> bool:
        """Keep an operation in the window until unpinned; False when it is not in the window."""
        operation = self.find(operation_id)
        if operation is None:
            return False
        if not operation.is_pinned and operation.completed_at is not None:
            self.finished.remove(operation)
            self.pinned[operation_id] = operation
            self._room -= 1
            self._trim_count()
        operation.is_pinned = True
        return True

    def unpin(self, operation_id: int) -> bool:
        """Let a pinned operation leave the window again; False when it is not pinned."""
        operation = self.find(operation_id)
        if operation is None or not operation.is_pinned:
            return False
        operation.is_pinned = False
        if self.pinned.pop(operation_id, None) is not None:
            self._room += 1
            if operation.sequence < self._trimmed:
                # Newer operations left while the pin held it: without the pin it would have left
                # before them, so it leaves now instead of starting a new stay.
                self.finalize(operation)
                return True
            # Back among the finished ones at its place by dispatch order.
            finished = self.finished
            position = sum(1 for other in finished if other.sequence < operation.sequence)
            finished.insert(position, operation)
            self._trim_count()
            self.trim_age()
        return True

    def evict(self, operation_id: int) -> bool:
        """Remove an operation from the window now, finalising it; a running body carries on unseen."""
        operation = self.find(operation_id)
        if operation is None:
            return False
        if self.running.pop(operation_id, None) is None:
            if self.pinned.pop(operation_id, None) is not None:
                self._room += 1
            else:
                self.finished.remove(operation)
        operation.is_pinned = False
        self.finalize(operation)
        return True

    # -- signal queries (read only) -----------------------------------------------------------------

    def signal_events(self) -> list[SignalEvent[Any]]:
        """Every signal held by the operations in the window (no age trim, no ordering)."""
        return [
            event
            for operations in (self.running.values(), self.finished, self.pinned.values())
            for operation in list(operations)
            if operation.has_signals
            for event in operation.signal_events()
        ]

    def signals(self, selector: SignalFilter = None) -> list[SignalEvent[Any]]:
        """The signals of the operations in the window, in dispatch order, optionally filtered."""
        predicate = as_predicate(selector)
        events = [event for operation in self.operations() for event in operation.signal_events()]
        return events if predicate is None else [event for event in events if predicate(event)]

    def cleanup_signals(
        self, *, age: float | timedelta | None = None, count: int | None = None, pattern: str | None = None
    ) -> int:
        """Drop signals held by the operations in the window; return how many were dropped.

        Args:
            age: Drop signals older than this.
            count: Keep only the newest ``count`` signals of each operation.
            pattern: Drop signals whose name matches this glob.
        """
        seconds = None if age is None else to_seconds(age, "age", allow_zero=True)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise TypeError(f"count must be an int, got {count!r}")
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        glob = None if pattern is None else compile_pattern(pattern)
        return sum(
            operation.cleanup_signals(older_than=seconds, keep=count, matching=glob)
            for operation in self.operations()
            if operation.has_signals
        )


class WindowViews(Generic[R]):
    """The public, read-mostly views of a coordinator's window (snapshots, pins, echoes, signal queries)."""

    _window: OperationWindow

    def get_snapshot(self) -> list[EphemeralOperationSnapshot[R]]:
        """Every operation in the window, in dispatch order."""
        return [operation.snapshot() for operation in self._window.operations()]

    def get_running(self) -> list[EphemeralOperationSnapshot[R]]:
        """Operations whose body is running."""
        return [s for s in self.get_snapshot() if s.completed is None]

    def get_completed(self) -> list[EphemeralOperationSnapshot[R]]:
        """Finished operations in the window (succeeded, failed, skipped or cancelled)."""
        return [s for s in self.get_snapshot() if s.completed is not None]

    def get_failed(self) -> list[EphemeralOperationSnapshot[R]]:
        """Operations whose body raised."""
        return [s for s in self.get_snapshot() if s.error is not None]

    def get_operation(self, operation_id: int) -> EphemeralOperationSnapshot[R] | None:
        """The snapshot of one operation, if it is in the window."""
        operation = self._window.find(operation_id)
        return None if operation is None else operation.snapshot()

    def pin(self, operation_id: int) -> bool:
        """Keep an operation in the window until unpinned; False when it is not in the window.

        A pinned operation counts toward ``max_tracked_operations``: the oldest unpinned finished
        operations leave first to make room for it.
        """
        return self._window.pin(operation_id)

    def unpin(self, operation_id: int) -> bool:
        """Let a pinned operation leave the window again; False when it is not pinned."""
        return self._window.unpin(operation_id)

    def evict(self, operation_id: int) -> bool:
        """Remove an operation from the window now, finalising it; a running body carries on unseen."""
        return self._window.evict(operation_id)

    def try_kill(self, operation_id: int) -> bool:
        """Like ``evict`` (the body is not interrupted); False for ids <= 0 or unknown ids."""
        return operation_id > 0 and self._window.evict(operation_id)

    def get_echoes(self, pattern: str | None = None) -> list[OperationEcho]:
        """Echoes of operations that left the window, oldest first; with ``pattern``, those holding a match."""
        echoes = self._window.echoes
        return [] if echoes is None else echoes.snapshot(pattern)

    def iter_signal_events(self) -> list[SignalEvent[Any]]:
        """Every signal held by the operations in the window."""
        return self._window.signal_events()

    def get_signals(self, selector: SignalFilter = None) -> list[SignalEvent[Any]]:
        """The signals of the operations in the window, in dispatch order, optionally filtered."""
        return self._window.signals(selector)

    def get_signals_by_pattern(self, pattern: str) -> list[SignalEvent[Any]]:
        """Signals whose name matches the glob."""
        return self.get_signals(pattern)

    def get_signals_by_name(self, name: str) -> list[SignalEvent[Any]]:
        """Signals with exactly this name."""
        return self.get_signals(lambda event: event.signal == name)

    def get_signals_by_key(self, key: Any) -> list[SignalEvent[Any]]:
        """Signals emitted by operations with this key."""
        return self.get_signals(lambda event: event.key == key)

    def get_signals_since(self, since: datetime) -> list[SignalEvent[Any]]:
        """Signals emitted at or after ``since``."""
        return self.get_signals(lambda event: event.timestamp >= since)

    def get_signals_by_time_range(self, start: datetime, end: datetime) -> list[SignalEvent[Any]]:
        """Signals emitted between ``start`` and ``end``, both included."""
        return self.get_signals(lambda event: start <= event.timestamp <= end)

    def has_signal(self, name: str) -> bool:
        """Whether an operation in the window holds a signal with exactly this name."""
        return any(operation.has_signal(name) for operation in self._window.operations())

    def has_signal_matching(self, pattern: str) -> bool:
        """Whether an operation in the window holds a signal matching the glob."""
        return bool(self.get_signals(pattern))

    def count_signals(self, name: str | None = None) -> int:
        """How many signals the window holds (with exactly this name, when given)."""
        return len(self.get_signals(None if name is None else (lambda event: event.signal == name)))

    def count_signals_matching(self, pattern: str) -> int:
        """How many signals in the window match the glob."""
        return len(self.get_signals(pattern))

    def cleanup_signals(
        self, *, age: float | timedelta | None = None, count: int | None = None, pattern: str | None = None
    ) -> int:
        """Drop signals held by the operations in the window; return how many were dropped.

        Args:
            age: Drop signals older than this.
            count: Keep only the newest ``count`` signals of each operation.
            pattern: Drop signals whose name matches this glob.
        """
        return self._window.cleanup_signals(age=age, count=count, pattern=pattern)
