"""Operations: one execution of a coordinator's body, its signals, and what is left of it afterwards."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from ._causal import caused_event
from ._clock import TimeBase
from ._events import SignalConstraints, SignalEvent, SignalPropagation, SignalRetractedEvent
from ._hooks import call_isolated
from ._matcher import GlobPattern, compile_pattern
from ._sink import SignalFilter, SignalSink, as_predicate

__all__ = (
    "EphemeralOperation",
    "EphemeralOperationSnapshot",
    "OperationEcho",
    "OperationEchoStore",
    "OperationStatus",
    "current_operation",
)

R = TypeVar("R")


class WorkerSlot:
    """What a worker task is running; set once per worker in its context, updated per item."""

    __slots__ = ("operation",)

    def __init__(self) -> None:
        self.operation: EphemeralOperation | None = None


#: The worker slot of the running task: which operation its body belongs to.
worker_slot: ContextVar[WorkerSlot] = ContextVar("ephemeral_worker_slot")


def current_operation() -> EphemeralOperation:
    """The operation whose body is running in the current task (or a thread or task it started).

    Raises:
        RuntimeError: Called outside a coordinator's body.
    """
    slot = worker_slot.get(None)
    operation = None if slot is None else slot.operation
    if operation is None:
        raise RuntimeError("current_operation() is only available inside a coordinator's body")
    return operation


class OperationStatus(enum.Enum):
    """Where an accepted item ended up."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class EphemeralOperationSnapshot(Generic[R]):
    """A frozen view of an operation.

    Attributes:
        operation_id: The operation's id (as returned by ``enqueue_with_id``).
        key: The operation's key (keyed coordinators), else None.
        started: When the body started (or when the item was skipped or cancelled).
        completed: When it finished; None while running.
        error: The exception the body raised, if it failed.
        is_faulted: Whether the body raised.
        duration: ``completed - started``, or None while running.
        signals: The signals the operation emitted, oldest first.
        is_pinned: Whether the operation is pinned in the window.
        status: Running, completed, failed, skipped (by a cancel signal) or cancelled.
        result: What the body returned (result coordinators), else None.
        has_result: Whether the body returned successfully (result coordinators).
    """

    operation_id: int
    key: str | None
    started: datetime
    completed: datetime | None
    error: BaseException | None
    is_faulted: bool
    duration: timedelta | None
    signals: tuple[SignalEvent[Any], ...]
    is_pinned: bool
    status: OperationStatus
    result: R | None = None
    has_result: bool = False

    @property
    def id(self) -> int:
        """Alias of ``operation_id``."""
        return self.operation_id

    @property
    def is_success(self) -> bool:
        """Whether the body finished without raising."""
        return self.status is OperationStatus.COMPLETED

    def has_signal(self, signal: str) -> bool:
        """Whether the operation emitted ``signal`` (exact name)."""
        return any(event.signal == signal for event in self.signals)


class OperationHost:
    """What an operation needs from its coordinator to emit signals; shared by all its operations."""

    __slots__ = ("constraints", "dispatch_async", "on_signal", "on_signal_retracted", "sink", "time")

    def __init__(
        self,
        sink: SignalSink,
        time: TimeBase,
        constraints: SignalConstraints | None,
        on_signal: Callable[[SignalEvent[Any]], object] | None,
        on_signal_retracted: Callable[[SignalRetractedEvent], object] | None,
    ) -> None:
        self.sink = sink
        self.time = time
        self.constraints = constraints
        self.on_signal = on_signal
        self.on_signal_retracted = on_signal_retracted
        self.dispatch_async: Callable[[SignalEvent[Any] | SignalRetractedEvent], None] | None = None


class EphemeralOperation:
    """One execution of a coordinator's body. A body reaches its own through ``current_operation()``.

    Signals emitted here belong to the operation: they are visible through the coordinator's and the
    sink's queries while the operation is in the window, and leave with it.
    """

    __slots__ = (
        "_host",
        "_signals",
        "_state",
        "completed_at",
        "error",
        "finalized",
        "has_result",
        "id",
        "is_pinned",
        "key",
        "result",
        "sequence",
        "started_at",
        "status",
    )

    def __init__(
        self, operation_id: int, key: str | None, host: OperationHost, started_at: float, sequence: int
    ) -> None:
        self.id = operation_id
        self.key = key
        self._host = host
        self.started_at = started_at
        self.completed_at: float | None = None
        self.sequence = sequence
        self.error: BaseException | None = None
        self.status = OperationStatus.RUNNING
        self.is_pinned = False
        self.finalized = False
        self.result: Any = None
        self.has_result = False
        self._signals: list[SignalEvent[Any]] | None = None
        self._state: dict[str, Any] | None = None

    @property
    def operation_id(self) -> int:
        """Alias of ``id``."""
        return self.id

    @property
    def started(self) -> datetime:
        """When the body started."""
        return self._host.time.to_datetime(self.started_at)

    @property
    def completed(self) -> datetime | None:
        """When the body finished, or None while it runs."""
        return None if self.completed_at is None else self._host.time.to_datetime(self.completed_at)

    @property
    def duration(self) -> timedelta | None:
        """How long the body ran, or None while it runs."""
        return None if self.completed_at is None else timedelta(seconds=self.completed_at - self.started_at)

    # -- signals ------------------------------------------------------------------------------

    def emit(self, signal: str) -> bool:
        """Emit ``signal`` from this operation; False when the coordinator's constraints block it."""
        return self.emit_caused(signal, None)

    def emit_caused(self, signal: str, cause: SignalEvent[Any] | SignalPropagation | None) -> bool:
        """Emit ``signal`` as a consequence of ``cause``, subject to the coordinator's constraints.

        Returns:
            True when emitted; False when blocked (the constraints' ``on_blocked`` is told why).
        """
        if not isinstance(signal, str) or not signal:
            raise ValueError(f"signal must be a non-empty string, got {signal!r}")
        host = self._host
        constraints = host.constraints
        if cause is None and constraints is None:  # the plain emit: no chain to extend or check
            event: SignalEvent[Any] = SignalEvent(signal, self.id, self.key, host.time.now(), None)
        else:
            caused = caused_event(
                signal, cause, operation_id=self.id, key=self.key, timestamp=host.time.now(), constraints=constraints
            )
            if caused is None:
                return False
            event = caused
        if self._signals is None:
            self._signals = [event]
        else:
            self._signals.append(event)
        host.sink.publish(event)
        call_isolated(host.on_signal, event)
        if host.dispatch_async is not None:
            host.dispatch_async(event)
        return True

    def _retracted(self, event: SignalEvent[Any], pattern: str | None) -> None:
        host = self._host
        retracted = SignalRetractedEvent(event.signal, self.id, self.key, host.time.now(), pattern is not None, pattern)
        call_isolated(host.on_signal_retracted, retracted)
        if host.dispatch_async is not None:
            host.dispatch_async(retracted)

    def retract(self, signal: str) -> bool:
        """Withdraw the most recent ``signal`` this operation emitted; False when there is none."""
        signals = self._signals or []
        for index in range(len(signals) - 1, -1, -1):
            if signals[index].signal == signal:
                event = signals.pop(index)
                self._retracted(event, None)
                return True
        return False

    def retract_matching(self, pattern: str) -> int:
        """Withdraw every signal of this operation matching the glob ``pattern``; return how many."""
        glob = compile_pattern(pattern)
        signals = self._signals or []
        doomed = [event for event in signals if glob.matches(event.signal)]
        if doomed:
            self._signals = [event for event in signals if not glob.matches(event.signal)]
            for event in doomed:
                self._retracted(event, pattern)
        return len(doomed)

    def has_signal(self, signal: str) -> bool:
        """Whether this operation holds ``signal`` (exact name)."""
        return any(event.signal == signal for event in self._signals or ())

    def get_signals(self, selector: SignalFilter = None) -> list[SignalEvent[Any]]:
        """This operation's signals, oldest first, optionally only those matching ``selector``."""
        signals = list(self._signals or ())
        predicate = as_predicate(selector)
        return signals if predicate is None else [event for event in signals if predicate(event)]

    def cleanup_signals(
        self,
        *,
        older_than: float | timedelta | None = None,
        keep: int | None = None,
        matching: GlobPattern | None = None,
    ) -> int:
        """Drop signals (without retraction callbacks); return how many were dropped.

        Drops those whose name matches ``matching``, those older than ``older_than``, and all but the
        newest ``keep``.
        """
        signals = self._signals or []
        before = len(signals)
        if matching is not None:
            signals = [event for event in signals if not matching.matches(event.signal)]
        if older_than is not None:
            seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else float(older_than)
            cutoff = self._host.time.now() - timedelta(seconds=seconds)
            signals = [event for event in signals if event.timestamp >= cutoff]
        if keep is not None:
            signals = signals[max(0, len(signals) - max(0, keep)) :]
        self._signals = signals
        return before - len(signals)

    # -- state --------------------------------------------------------------------------------

    def set_state(self, name: str, value: Any) -> None:
        """Attach a value to the operation for the rest of its life."""
        if self._state is None:
            self._state = {}
        self._state[name] = value

    def get_state(self, name: str, default: Any = None) -> Any:
        """A value attached with ``set_state``, or ``default``."""
        return default if self._state is None else self._state.get(name, default)

    def has_state(self, name: str) -> bool:
        """Whether a value is attached under ``name``."""
        return self._state is not None and name in self._state

    # -- snapshots ----------------------------------------------------------------------------

    @property
    def has_signals(self) -> bool:
        """Whether the operation holds any signal."""
        return self._signals is not None and len(self._signals) > 0

    def signal_events(self) -> tuple[SignalEvent[Any], ...]:
        """The signals as an immutable tuple."""
        return tuple(self._signals) if self._signals else ()

    def snapshot(self) -> EphemeralOperationSnapshot[Any]:
        """A frozen view of the operation as it is now."""
        completed = self.completed_at
        time = self._host.time
        return EphemeralOperationSnapshot(
            self.id,
            self.key,
            time.to_datetime(self.started_at),
            None if completed is None else time.to_datetime(completed),
            self.error,
            self.error is not None,
            None if completed is None else timedelta(seconds=completed - self.started_at),
            self.signal_events(),
            self.is_pinned,
            self.status,
            self.result,
            self.has_result,
        )

    def __repr__(self) -> str:
        return f"<EphemeralOperation id={self.id} key={self.key!r} status={self.status.value}>"


@dataclass(frozen=True, slots=True)
class OperationEcho:
    """What is left of an operation after it left the window: its signals, for a while."""

    operation_id: int
    key: str | None
    signals: tuple[SignalEvent[Any], ...]
    finalized_at: datetime

    @property
    def timestamp(self) -> datetime:
        """Alias of ``finalized_at``."""
        return self.finalized_at


class OperationEchoStore:
    """A bounded, time-limited record of echoes (capacity and retention enforced when read)."""

    __slots__ = ("_entries", "_retention", "_time")

    def __init__(self, time: TimeBase, retention: float, capacity: int) -> None:
        self._time = time
        self._retention = retention
        self._entries: deque[tuple[int, str | None, tuple[SignalEvent[Any], ...], float]] = deque(maxlen=capacity)

    def add(self, operation: EphemeralOperation, at: float) -> None:
        """Record the echo of an operation finalised at clock reading ``at``."""
        self._entries.append((operation.id, operation.key, operation.signal_events(), at))

    def snapshot(self, pattern: str | None = None) -> list[OperationEcho]:
        """Live echoes, oldest first; with ``pattern``, only those holding a matching signal."""
        cutoff = self._time.clock() - self._retention
        glob = None if pattern is None else compile_pattern(pattern)
        return [
            OperationEcho(op_id, key, signals, self._time.to_datetime(at))
            for op_id, key, signals, at in tuple(self._entries)
            if at >= cutoff and (glob is None or any(glob.matches(event.signal) for event in signals))
        ]
