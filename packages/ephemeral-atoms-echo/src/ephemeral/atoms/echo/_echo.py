"""Operation echoes: the typed signals an operation emitted, captured and persisted once it is finalised."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast

from ephemeral.core import (
    EphemeralOperationSnapshot,
    GlobPattern,
    SignalEvent,
    Subscription,
    TypedSignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import (
    BoundedMap,
    EventHook,
    PersistAtom,
    call_isolated,
    check_int,
    compile_pattern,
    is_async_callable,
    loop_clock,
    to_seconds,
)

__all__ = (
    "OperationEchoAtom",
    "OperationEchoCapture",
    "OperationEchoEntry",
    "OperationEchoMaker",
    "OperationEchoMakerOptions",
    "OperationFinalizer",
    "enable_operation_echoing",
)

P = TypeVar("P")
_AtomSelf = TypeVar("_AtomSelf", bound="OperationEchoAtom[Any]")
_MakerSelf = TypeVar("_MakerSelf", bound="OperationEchoMaker[Any]")

_log = logging.getLogger("ephemeral.atoms.echo")


def _check_coordinator(name: str, value: object) -> EventHook[Any]:
    hook = getattr(value, "operation_finalized", None)
    if not isinstance(hook, EventHook) or not callable(getattr(value, "get_operation", None)):
        raise TypeError(f"{name} must be a coordinator (operation_finalized, get_operation), got {value!r}")
    return hook


# ------------------------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class OperationEchoCapture(Generic[P]):
    """One captured typed signal.

    Attributes:
        signal: The signal name.
        payload: Its typed payload.
        timestamp: When it was emitted (a timezone-aware UTC datetime).
        key: Its key, if any.
    """

    signal: str
    payload: P
    timestamp: datetime
    key: str | None = None


@dataclass(frozen=True, slots=True)
class OperationEchoEntry(Generic[P]):
    """The echo of one finalised operation: the typed signals it was seen to emit, oldest first.

    Attributes:
        operation_id: The operation.
        key: The operation's key; for an operation without one, the key of its first capture that has one.
        was_pinned: Whether the operation was pinned when it was finalised.
        captures: The captured typed signals with their payloads, oldest first.
        finalized_at: When the operation was finalised (a timezone-aware UTC datetime).
    """

    operation_id: int
    key: str | None
    was_pinned: bool
    captures: tuple[OperationEchoCapture[P], ...]
    finalized_at: datetime

    @property
    def signals(self) -> tuple[str, ...]:
        """The captured signal names, oldest first."""
        return tuple(capture.signal for capture in self.captures)

    def has_signal(self, signal: str) -> bool:
        """Whether a capture is named ``signal`` (exact name)."""
        return any(capture.signal == signal for capture in self.captures)


@dataclass(frozen=True, kw_only=True)
class OperationEchoMakerOptions(Generic[P]):
    """What an ``OperationEchoMaker`` captures and how much it keeps. Every field is checked at construction.

    Attributes:
        activation_signal_pattern: A glob; when set (not blank), nothing is captured for an operation
            until it emits a typed signal matching it. Blank or None: every operation is captured.
        capture_signal_pattern: A glob the captured signals match; blank or None: any typed signal.
        capture_predicate: ``predicate(event) -> bool``, a further test a signal must pass to be
            captured (one that raises is logged and counts as False).
        capture_activation_signal: Whether the activating signal itself is captured (if it also
            matches the capture pattern and predicate).
        max_tracked_operations: The most operations tracked at once; beyond it the one updated least
            recently is dropped without an echo (counted in ``dropped_count``).
        max_captures_per_operation: The most captures kept per operation; beyond it the oldest go.
        max_capture_age: When set, an operation with no new capture for this long is dropped without an
            echo (seconds or a timedelta). None (the default): only ``max_tracked_operations`` bounds
            the tracked set. Set it above the coordinator's ``max_operation_lifetime`` plus the longest
            body, or operations finalised by age lose their echo.

    Raises:
        TypeError: A field has the wrong type (the message names it).
        ValueError: A field is out of range (the message names it).
    """

    activation_signal_pattern: str | None = None
    capture_signal_pattern: str | None = None
    capture_predicate: Callable[[SignalEvent[P]], bool] | None = None
    capture_activation_signal: bool = True
    max_tracked_operations: int = 256
    max_captures_per_operation: int = 64
    max_capture_age: float | timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("activation_signal_pattern", "capture_signal_pattern"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a glob string or None, got {value!r}")
        if self.capture_predicate is not None and not callable(self.capture_predicate):
            raise TypeError(f"capture_predicate must be callable or None, got {self.capture_predicate!r}")
        if not isinstance(self.capture_activation_signal, bool):
            raise TypeError(f"capture_activation_signal must be a bool, got {self.capture_activation_signal!r}")
        check_int(self.max_tracked_operations, "max_tracked_operations")
        check_int(self.max_captures_per_operation, "max_captures_per_operation")
        if self.max_capture_age is not None:
            to_seconds(self.max_capture_age, "max_capture_age")


# ------------------------------------------------------------------------------------------------ the atom


class OperationEchoAtom(PersistAtom[OperationEchoEntry[P]]):
    """Persists ``OperationEchoEntry`` records through ``persist``, one at a time by default, off the caller's path.

    A thin atom over an ``EphemeralWorkCoordinator`` whose body is ``persist``: an echo whose
    ``persist`` raises is recorded as a failed operation (``get_failed()``, ``total_failed``) and the
    next echoes are persisted as usual. ``try_enqueue`` serves sync callers such as an
    ``OperationEchoMaker``: when the coordinator has no room the echo waits, in order, in a bounded
    backlog (``max_backlog``) that one task feeds into it; only beyond that is an echo refused and
    counted in ``dropped_count``. Leaving ``async with`` (or ``drain()``) stops intake and waits until
    every accepted echo has been handled; an exception in the block cancels instead.

    Args:
        persist: ``async def persist(echo)``.
        options: Coordinator options, used as given; the default is ``max_concurrency=1``,
            ``max_tracked_operations=64``, ``max_operation_lifetime=30`` seconds.
        max_backlog: How many echoes ``try_enqueue`` may hold while the coordinator is full.

    Raises:
        TypeError: ``persist`` is not callable, or ``options`` is not ``EphemeralOptions``.
        ValueError: ``max_backlog`` is not an int >= 0.
    """

    item_name = "echo"

    def __call__(self, echo: OperationEchoEntry[P]) -> bool:
        """``try_enqueue``: the atom itself can be any maker's ``on_echo``."""
        return self.try_enqueue(echo)


# ------------------------------------------------------------------------------------------------ the maker


class OperationFinalizer(Protocol):
    """What an ``OperationEchoMaker`` watches: any coordinator (or a test double) with these two members."""

    @property
    def operation_finalized(self) -> EventHook[EphemeralOperationSnapshot[Any]]:
        """Fired with the snapshot of each operation leaving the window."""
        ...

    def get_operation(self, operation_id: int) -> EphemeralOperationSnapshot[Any] | None:
        """The snapshot of an operation in the window, or None."""
        ...


class _Tracked(Generic[P]):
    """The captures of one tracked operation and when it was last updated."""

    __slots__ = ("captures", "updated")

    def __init__(self, max_captures: int, now: float) -> None:
        self.captures: deque[OperationEchoCapture[P]] = deque(maxlen=max_captures)
        self.updated = now


def _glob(pattern: str | None) -> GlobPattern | None:
    return None if pattern is None or not pattern.strip() else compile_pattern(pattern.strip())


class OperationEchoMaker(Generic[P]):
    """Captures chosen typed signals per operation and, when the operation is finalised, hands on one echo of them.

    It subscribes to ``typed_sink`` and to ``finalizer.operation_finalized`` (any coordinator). A typed
    signal emitted inside the body of one of the finalizer's operations belongs to that operation,
    whatever id the sink gave the event; any other belongs to ``event.operation_id`` (pass
    ``operation_id=`` to ``TypedSignalSink.emit`` to name it). Once an operation has emitted a signal
    matching ``activation_signal_pattern`` (at once when there is none), its signals matching
    ``capture_signal_pattern`` and ``capture_predicate`` are captured with their payloads. When the
    coordinator finalises the operation (its leaving the window: trimmed by size or age, evicted, or
    the coordinator closing), an ``OperationEchoEntry`` of its captures goes to ``on_echo`` and then to
    ``echo_created``'s handlers; an operation with no capture leaves no echo. Handlers that raise are
    logged and isolated.

    Memory is bounded by the options: only activated (or capturing) operations are tracked, at most
    ``max_tracked_operations`` of them with at most ``max_captures_per_operation`` captures each;
    beyond that the operation updated least recently is dropped (``dropped_count``). Typed signals may
    be emitted from any thread.

    Use it as a context manager (or call ``close()``) to unsubscribe; ``enable_operation_echoing`` makes
    one that hands each echo to an ``OperationEchoAtom``.

    Args:
        typed_sink: The ``TypedSignalSink`` the operations' typed signals are emitted on.
        finalizer: The coordinator whose ``operation_finalized`` ends each operation.
        on_echo: A sync callable given each echo (for async work, an ``OperationEchoAtom``).
        options: What to capture and how much to keep.
        clock: A monotonic clock in seconds for ``max_capture_age``; by default the clock of the
            running loop (virtual time in tests), or ``time.monotonic`` outside one.

    Raises:
        TypeError: An argument has the wrong type (the message names it).
    """

    def __init__(
        self,
        typed_sink: TypedSignalSink[P],
        finalizer: OperationFinalizer,
        on_echo: Callable[[OperationEchoEntry[P]], object] | None = None,
        options: OperationEchoMakerOptions[P] | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(typed_sink, TypedSignalSink):
            raise TypeError(f"typed_sink must be a TypedSignalSink, got {typed_sink!r}")
        hook = _check_coordinator("finalizer", finalizer)
        if on_echo is not None and (not callable(on_echo) or is_async_callable(on_echo)):
            raise TypeError(
                f"on_echo must be a sync callable or None (use an OperationEchoAtom for async), got {on_echo!r}"
            )
        if options is None:
            options = OperationEchoMakerOptions()
        elif not isinstance(options, OperationEchoMakerOptions):
            raise TypeError(f"options must be OperationEchoMakerOptions or None, got {options!r}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable or None, got {clock!r}")
        self.options = options
        self.typed_sink = typed_sink
        self.finalizer = finalizer
        self.echo_created: EventHook[OperationEchoEntry[P]] = EventHook("echo_created")
        self._on_echo = on_echo
        self._activation = _glob(options.activation_signal_pattern)
        self._capture = _glob(options.capture_signal_pattern)
        self._predicate = options.capture_predicate
        self._capture_activation = options.capture_activation_signal
        self._max_tracked = options.max_tracked_operations
        self._max_captures = options.max_captures_per_operation
        age = options.max_capture_age
        self._max_age = None if age is None else to_seconds(age, "max_capture_age")
        self._clock = clock if clock is not None else loop_clock()
        # Least recently updated first; each operation dropped (for room or age) is counted.
        self._tracked: BoundedMap[int, _Tracked[P]] = BoundedMap(self._max_tracked, on_evict=self._dropped)
        self._lock = threading.Lock()
        self._closed = False
        self.echo_count = 0
        self.dropped_count = 0
        self.predicate_errors = 0
        self._subscriptions: tuple[Subscription, ...] = (
            typed_sink.subscribe(self._on_signal),
            hook.connect(self._on_finalized),
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe and forget every tracked operation; no echo is made afterwards. Idempotent."""
        with self._lock:
            self._closed = True
            self._tracked.clear()
        for subscription in self._subscriptions:
            subscription.close()

    def __enter__(self: _MakerSelf) -> _MakerSelf:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._closed

    # -- capturing --------------------------------------------------------------------------------

    def _operation_of(self, event: SignalEvent[P]) -> int:
        try:
            running = current_operation().id
        except RuntimeError:
            return event.operation_id
        return running if self.finalizer.get_operation(running) is not None else event.operation_id

    def _on_signal(self, event: SignalEvent[P]) -> None:
        if self._closed:
            return
        operation_id = self._operation_of(event)
        signal = event.signal
        activation = self._activation
        activates = activation is not None and activation.matches(signal)
        if activation is not None and not activates and operation_id not in self._tracked:
            return  # not activated: nothing is kept (checked again under the lock)
        capture = (self._capture_activation or not activates) and (
            self._capture is None or self._capture.matches(signal)
        )
        if capture and self._predicate is not None:
            try:
                capture = bool(self._predicate(event))
            except Exception:
                self.predicate_errors += 1
                _log.exception("capture_predicate %r failed on %s", self._predicate, signal)
                capture = False
        if not capture and not activates:
            return
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            self._expire(now)
            tracked = self._tracked.get(operation_id)
            if tracked is None:
                if activation is not None and not activates:
                    return  # dropped meanwhile
                tracked = _Tracked(self._max_captures, now)
                self._tracked.put(operation_id, tracked)  # drops the least recently updated beyond the bound
            else:
                self._tracked.touch(operation_id)
                tracked.updated = now
            if capture:
                tracked.captures.append(
                    OperationEchoCapture(signal, cast(P, event.payload), event.timestamp, event.key)
                )

    def _dropped(self, operation_id: int, tracked: _Tracked[P]) -> None:
        self.dropped_count += 1

    def _expire(self, now: float) -> None:
        """Drop operations not updated for ``max_capture_age`` (called under the lock)."""
        max_age = self._max_age
        if max_age is not None:
            self._tracked.drop_while(lambda tracked: tracked.updated + max_age <= now)

    def _on_finalized(self, snapshot: EphemeralOperationSnapshot[Any]) -> None:
        with self._lock:
            if self._closed:
                return
            self._expire(self._clock())
            tracked = self._tracked.pop(snapshot.operation_id, None)
        if tracked is None or not tracked.captures:
            return
        captures = tuple(tracked.captures)
        key = snapshot.key
        if key is None:
            key = next((capture.key for capture in captures if capture.key is not None), None)
        echo = OperationEchoEntry(snapshot.operation_id, key, snapshot.is_pinned, captures, self.typed_sink.now())
        self.echo_count += 1
        call_isolated(self._on_echo, echo)
        self.echo_created.fire(echo)

    # -- observing --------------------------------------------------------------------------------

    @property
    def tracked_count(self) -> int:
        """Operations being tracked now (activated, or holding captures)."""
        return len(self._tracked)

    def get_captures(self, operation_id: int) -> tuple[OperationEchoCapture[P], ...] | None:
        """What has been captured so far for a tracked operation, oldest first; None when it is not tracked."""
        with self._lock:
            tracked = self._tracked.get(operation_id)
            return None if tracked is None else tuple(tracked.captures)


def enable_operation_echoing(
    coordinator: OperationFinalizer,
    typed_sink: TypedSignalSink[P],
    echo_atom: OperationEchoAtom[P] | Callable[[OperationEchoEntry[P]], object],
    options: OperationEchoMakerOptions[P] | None = None,
) -> OperationEchoMaker[P]:
    """Echo the operations of ``coordinator`` into ``echo_atom``; use the returned maker as a context manager.

    Each echo goes to ``echo_atom.try_enqueue`` (an ``OperationEchoAtom``, entered before the
    coordinator finalises anything and left after it), or to ``echo_atom(echo)`` for a sync callable.
    The maker must be open when operations are finalised: to echo the operations still in the window
    when the coordinator closes, open the maker around the coordinator's ``async with`` block.

    Raises:
        TypeError: An argument has the wrong type (the message names it).
    """
    _check_coordinator("coordinator", coordinator)
    if isinstance(echo_atom, OperationEchoAtom):
        on_echo: Callable[[OperationEchoEntry[P]], object] = echo_atom.try_enqueue
    elif callable(echo_atom) and not is_async_callable(echo_atom):
        on_echo = echo_atom
    else:
        raise TypeError(f"echo_atom must be an OperationEchoAtom or a sync callable taking an echo, got {echo_atom!r}")
    return OperationEchoMaker(typed_sink, coordinator, on_echo, options)
