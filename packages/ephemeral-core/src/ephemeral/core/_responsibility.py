"""Responsibilities: keep an operation pinned in its window until a consumer acknowledges it.

A producer pins an operation (``pin_until_queried``) and announces its result; the consumer that
fetches it emits an ack signal with the agreed key, which unpins the operation. ``max_pin_duration``
bounds the wait by time: inside ``async with`` one timer task sleeps until the next expiry (none
while nothing is pinned), and without it expiry is checked on every signal and every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from anyio import RunFinishedError
from anyio.abc import TaskGroup

from ._clock import TimeBase, loop_clock, to_seconds, utc_now
from ._events import SignalEvent
from ._hooks import call_isolated
from ._lifecycle import CoordinatorClosedError, TaskGroupOwner
from ._loop import LoopBinding
from ._matcher import GlobPattern, compile_pattern
from ._sink import SignalSink
from ._wakeup import Wakeup

__all__ = (
    "ACKED_SIGNAL",
    "DEFAULT_ACK_PATTERN",
    "EXPIRED_SIGNAL",
    "Pinning",
    "ResponsibilitySignalManager",
    "ResponsibilitySnapshot",
    "ack_pattern_for",
)

T = TypeVar("T")
_Self = TypeVar("_Self", bound="ResponsibilitySignalManager")

#: The ack pattern used when ``pin_until_queried`` is given none (the ack key defaults to the operation id).
DEFAULT_ACK_PATTERN = "responsibility.ack.*"
#: Emitted when an ack releases a responsibility (key: the operation id); caused by the ack signal.
ACKED_SIGNAL = "responsibility.acked"
#: Emitted when ``max_pin_duration`` releases a responsibility nobody acknowledged (key: the operation id).
EXPIRED_SIGNAL = "responsibility.expired"


class Pinning(Protocol):
    """What the manager pins operations in: a coordinator, or any object with these two methods."""

    def pin(self, operation_id: int) -> bool:
        """Keep the operation in its window; False when it is not there."""

    def unpin(self, operation_id: int) -> bool:
        """Let the operation leave its window again; False when it was not pinned."""


def ack_pattern_for(signal: str) -> str:
    """The ack pattern of a responsibility announced by ``signal``.

    A glob (``"responsibility.ack.*"``) and a name with an ``ack`` segment (``"file.ready.ack"``,
    ``"responsibility.ack.42"``) are ack patterns already and are used as given. Any other name ``X``
    announces the responsibility and is acknowledged by ``X.ack``: after
    ``pin_until_queried(op, "file.ready", ack_key=file_id)`` the consumer's ``"file.ready.ack"`` (key
    ``file_id``) releases the pin, and the producer's own ``"file.ready"`` does not.

    Raises:
        ValueError: ``signal`` is blank.
    """
    if not isinstance(signal, str) or not signal.strip():
        raise ValueError(f"ack_signal_pattern must be a non-blank signal name or glob, got {signal!r}")
    if "*" in signal or "?" in signal or "ack" in signal.split("."):
        return signal
    return signal + ".ack"


@dataclass(frozen=True, slots=True)
class ResponsibilitySnapshot:
    """A frozen view of one responsibility.

    Attributes:
        operation_id: The pinned operation.
        ack_pattern: The glob an ack signal's name must match.
        ack_key: The key the ack signal must carry.
        description: What the operation is responsible for, if given.
        pinned_at: When it was pinned (UTC).
        expires_at: When ``max_pin_duration`` releases it (UTC), or None without a limit.
    """

    operation_id: int
    ack_pattern: str
    ack_key: str
    description: str | None
    pinned_at: datetime
    expires_at: datetime | None


class _Responsibility:
    __slots__ = ("ack_key", "description", "expires_at", "glob", "operation_id", "pinned_at")

    def __init__(
        self,
        operation_id: int,
        glob: GlobPattern,
        ack_key: str,
        description: str | None,
        pinned_at: float,
        expires_at: float | None,
    ) -> None:
        self.operation_id = operation_id
        self.glob = glob
        self.ack_key = ack_key
        self.description = description
        self.pinned_at = pinned_at
        self.expires_at = expires_at


def _current_loop() -> LoopBinding | None:
    try:
        return LoopBinding()
    except RuntimeError:  # no event loop is running here
        return None


class ResponsibilitySignalManager(TaskGroupOwner):
    """Pins operations until an ack signal arrives on the sink, or until ``max_pin_duration`` passes.

    An ack is a signal whose name matches the responsibility's ack pattern and whose key equals its
    ack key (by default the operation id as a string). The manager then unpins the operation and
    emits ``responsibility.acked``; a responsibility that outlives ``max_pin_duration`` is unpinned
    and ``responsibility.expired`` is emitted instead. Both carry the operation id as key.

    Use it as ``async with ResponsibilitySignalManager(...) as manager:`` so that a timer releases
    expired pins on time even when no signal arrives; the timer sleeps until the next expiry on the
    loop's clock and not at all while nothing is pinned. Used as a plain object, expiry is applied
    on each sink signal and on each call. Acks may be emitted from any thread: when the manager lives
    in an event loop, it acts on that loop (the coordinator it pins is not thread-safe).

    Args:
        pinning: Where operations are pinned: a coordinator, or anything with ``pin`` and ``unpin``.
        sink: The sink that carries the acks and receives the manager's signals.
        max_pin_duration: How long a responsibility may wait for its ack (seconds or a timedelta);
            None waits for ever.
        ack_pattern: The ack pattern of responsibilities pinned without one (see ``ack_pattern_for``).
        clock: A monotonic clock in seconds. By default the event loop's clock when created or
            entered in one, so virtual time drives expiry in tests; ``time.monotonic`` otherwise.
        now: The wall-clock source for snapshot timestamps.

    Example:
        >>> manager = ResponsibilitySignalManager(coordinator, sink, max_pin_duration=300)
        >>> if manager.pin_until_queried(op_id, "file.ready", ack_key=file_id, description="Awaiting fetch"):
        ...     sink.emit("file.ready", key=file_id)
        >>> sink.emit("file.ready.ack", key=file_id)  # the consumer: releases the pin
    """

    def __init__(
        self,
        pinning: Pinning,
        sink: SignalSink,
        max_pin_duration: float | timedelta | None = None,
        ack_pattern: str = DEFAULT_ACK_PATTERN,
        clock: Callable[[], float] | None = None,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if not callable(getattr(pinning, "pin", None)) or not callable(getattr(pinning, "unpin", None)):
            raise TypeError(f"pinning must have pin(id) and unpin(id) methods, got {pinning!r}")
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable or None, got {clock!r}")
        self._pinning = pinning
        self._sink = sink
        self._duration = None if max_pin_duration is None else to_seconds(max_pin_duration, "max_pin_duration")
        self._default_pattern = ack_pattern_for(ack_pattern)
        self._own_clock = clock is None
        self._now = now
        self._loop = _current_loop()
        self._clock: Callable[[], float] = clock or (loop_clock() if self._loop is not None else time.monotonic)
        self._time = TimeBase(self._clock, now)
        # Insertion order is expiry order: every responsibility waits the same duration on a monotonic clock.
        self._active: dict[int, _Responsibility] = {}
        self._by_key: dict[str, dict[int, _Responsibility]] = {}
        self._lock = threading.Lock()
        self._entered = False
        self._closed = False
        self._tg: TaskGroup | None = None
        self._wakeup = Wakeup(lambda: self._clock())  # the timer's sleep; deadlines on the current clock
        self._timer_deadline: float | None = None
        self._subscription = sink.subscribe(self._on_signal)

    # -- lifecycle --------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        if self._closed:
            raise CoordinatorClosedError("the ResponsibilitySignalManager is closed")
        self._entered = True
        self._loop = LoopBinding()
        if self._own_clock:
            self._use_clock(loop_clock())
        self._tg = tg
        if self._duration is not None:
            tg.start_soon(self._run_timer)

    def _on_close(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and unpin every operation still waiting for its ack. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._subscription.close()

        def release_all() -> None:
            with self._lock:
                doomed = list(self._active.values())
                self._active.clear()
                self._by_key.clear()
            for record in doomed:
                call_isolated(self._pinning.unpin, record.operation_id)
            self._wake_timer()

        self._call(release_all)

    def _use_clock(self, clock: Callable[[], float]) -> None:
        """Switch to ``clock``, moving the deadlines already set onto it."""
        offset = clock() - self._clock()
        with self._lock:
            for record in self._active.values():
                record.pinned_at += offset
                if record.expires_at is not None:
                    record.expires_at += offset
        self._clock = clock
        self._time = TimeBase(clock, self._now)

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the manager's event loop when it has one (waiting for it), else here.

        Once that loop has finished there is nothing left to race with, so ``fn`` runs here.
        """
        loop = self._loop
        if loop is None or loop.on_loop_thread:
            return fn()
        try:
            return loop.call_and_wait(fn)
        except RunFinishedError:
            return fn()

    # -- responsibilities -------------------------------------------------------------------------

    def pin_until_queried(
        self,
        operation_id: int,
        ack_signal_pattern: str | None = None,
        ack_key: str | None = None,
        description: str | None = None,
    ) -> bool:
        """Pin an operation until a matching ack arrives (or ``max_pin_duration`` passes).

        Pinning an operation that already has a responsibility replaces it.

        Args:
            operation_id: The operation to keep in its window.
            ack_signal_pattern: The ack signal's glob, or the name of the announcement signal ``X``
                (then ``X.ack`` acknowledges it; see ``ack_pattern_for``). Default: the manager's.
            ack_key: The key the ack must carry; default ``str(operation_id)``.
            description: What the operation is responsible for (shown in snapshots).

        Returns:
            True when pinned; False when the operation is not in its window.

        Raises:
            ValueError: ``ack_signal_pattern`` is blank.
            RuntimeError: The manager is closed.
        """
        pattern = self._default_pattern if ack_signal_pattern is None else ack_pattern_for(ack_signal_pattern)
        key = str(operation_id) if ack_key is None else ack_key
        if not isinstance(key, str):
            raise TypeError(f"ack_key must be a string or None, got {ack_key!r}")
        if self._closed:
            raise CoordinatorClosedError("the ResponsibilitySignalManager is closed")
        return self._call(lambda: self._pin(operation_id, compile_pattern(pattern), key, description))

    def _pin(self, operation_id: int, glob: GlobPattern, key: str, description: str | None) -> bool:
        self._expire_due()
        if not self._pinning.pin(operation_id):
            return False
        now = self._clock()
        expires_at = None if self._duration is None else now + self._duration
        record = _Responsibility(operation_id, glob, key, description, now, expires_at)
        with self._lock:
            old = self._active.pop(operation_id, None)
            if old is not None:
                self._forget(old)
            self._active[operation_id] = record
            self._by_key.setdefault(key, {})[operation_id] = record
        if expires_at is not None and (self._timer_deadline is None or expires_at < self._timer_deadline):
            self._wake_timer()
        return True

    def complete_responsibility(self, operation_id: int) -> bool:
        """End a responsibility without an ack (on a retry, say) and unpin the operation.

        Returns:
            True when a responsibility was removed and its operation unpinned.
        """
        return self._call(lambda: self._complete(operation_id))

    def _complete(self, operation_id: int) -> bool:
        self._expire_due()
        with self._lock:
            record = self._active.pop(operation_id, None)
            if record is not None:
                self._forget(record)
        if record is None:
            return False
        self._wake_timer_if_next(record)
        return self._pinning.unpin(operation_id)

    def get_active_responsibilities(self) -> list[ResponsibilitySnapshot]:
        """The responsibilities still waiting for their ack, oldest first."""

        def snapshots() -> list[ResponsibilitySnapshot]:
            self._expire_due()
            to_datetime = self._time.to_datetime
            with self._lock:
                return [
                    ResponsibilitySnapshot(
                        r.operation_id,
                        r.glob.pattern,
                        r.ack_key,
                        r.description,
                        to_datetime(r.pinned_at),
                        None if r.expires_at is None else to_datetime(r.expires_at),
                    )
                    for r in self._active.values()
                ]

        return self._call(snapshots)

    @property
    def pending_count(self) -> int:
        """How many responsibilities are waiting for their ack."""

        def count() -> int:
            self._expire_due()
            return len(self._active)

        return self._call(count)

    @property
    def max_pin_duration(self) -> float | None:
        """How long a responsibility may wait, in seconds (None: for ever)."""
        return self._duration

    # -- acks and expiry --------------------------------------------------------------------------

    def _forget(self, record: _Responsibility) -> None:
        """Remove ``record`` from the key index (the caller holds the lock and removed it from ``_active``)."""
        same_key = self._by_key.get(record.ack_key)
        if same_key is not None and same_key.get(record.operation_id) is record:
            del same_key[record.operation_id]
            if not same_key:
                del self._by_key[record.ack_key]

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        if self._closed:
            return
        if self._tg is None and self._duration is not None and self._active:
            self._call(self._expire_due)  # no timer: expiry is applied as signals arrive
        key = event.key
        if key is not None and key in self._by_key:  # confirmed under the lock
            self._call(lambda: self._ack(event))

    def _ack(self, event: SignalEvent[Any]) -> None:
        with self._lock:
            candidates = self._by_key.get(event.key or "")
            if not candidates:
                return
            acked = [record for record in candidates.values() if record.glob.matches(event.signal)]
            for record in acked:
                del self._active[record.operation_id]
                self._forget(record)
        for record in acked:
            call_isolated(self._pinning.unpin, record.operation_id)
            self._wake_timer_if_next(record)
            self._sink.emit_caused(ACKED_SIGNAL, event, key=str(record.operation_id))

    def _expire_due(self) -> None:
        """Release every responsibility whose time is up."""
        if self._duration is None or not self._active:
            return
        now = self._clock()
        expired: list[_Responsibility] = []
        with self._lock:
            for record in self._active.values():
                if record.expires_at is None or record.expires_at > now:
                    break
                expired.append(record)
            for record in expired:
                del self._active[record.operation_id]
                self._forget(record)
        for record in expired:
            call_isolated(self._pinning.unpin, record.operation_id)
            self._sink.emit(EXPIRED_SIGNAL, key=str(record.operation_id))

    # -- the timer --------------------------------------------------------------------------------

    def _wake_timer(self) -> None:
        self._wakeup.wake()

    def _wake_timer_if_next(self, record: _Responsibility) -> None:
        """Reschedule the timer when it was sleeping until ``record``'s expiry (now gone)."""
        if record.expires_at is not None and record.expires_at == self._timer_deadline:
            self._wake_timer()

    async def _run_timer(self) -> None:
        while True:
            self._expire_due()
            with self._lock:
                first = next(iter(self._active.values()), None)
            deadline = None if first is None else first.expires_at
            self._timer_deadline = deadline
            await self._wakeup.wait(deadline)  # None: nothing can expire, sleep until a pin arrives

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"pending={len(self._active)}"
        return f"<ResponsibilitySignalManager {state} max_pin_duration={self._duration}>"
