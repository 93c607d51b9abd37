"""The signal sink: a bounded, time-limited window of signals, with subscribers and a shared view."""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from ._causal import caused_event
from ._clock import TimeBase, to_seconds, utc_now
from ._events import SignalEvent, SignalRetractedEvent
from ._hooks import EventHook, Subscription
from ._matcher import GlobPattern, PatternSet, compile_pattern

__all__ = ("SignalFilter", "SignalSink", "SignalSource", "next_id")

# Ids start at the microseconds since the epoch when the process started, so ids stay unique across
# restarts of a process (signals reloaded from storage keep theirs) while a process makes fewer than
# a million a second on average.
_ids = itertools.count(time.time_ns() // 1000)

#: A glob (``"error.*"``), a pattern set, or a predicate over events.
SignalFilter = str | PatternSet | GlobPattern | Callable[[SignalEvent[Any]], bool] | None

#: One stored signal: (name, operation id, key, clock reading, event if already built).
_Entry = tuple[str, int, "str | None", float, "SignalEvent[Any] | None"]


def next_id() -> int:
    """A new unique id for an operation, a coordinator or a sink-emitted signal.

    Ids increase within a process and do not repeat across its restarts (they start from the clock).
    """
    return next(_ids)


def _as_predicate(selector: SignalFilter) -> Callable[[SignalEvent[Any]], bool] | None:
    if selector is None:
        return None
    if isinstance(selector, str):
        glob = compile_pattern(selector)
        return lambda event: glob.matches(event.signal)
    if isinstance(selector, (PatternSet, GlobPattern)):
        matcher = selector
        return lambda event: matcher.matches(event.signal)
    return selector


def _name_matcher(selector: SignalFilter) -> Callable[[str], bool] | None:
    """A matcher on names alone, when the selector allows it (cheaper than building events)."""
    if isinstance(selector, str):
        return compile_pattern(selector).matches
    if isinstance(selector, (PatternSet, GlobPattern)):
        return selector.matches
    return None


class SignalSource(Protocol):
    """Something whose signals a sink's queries include (every coordinator sharing the sink)."""

    @property
    def coordinator_id(self) -> str | None:
        """The user-given name of the coordinator, if any."""

    def iter_signal_events(self) -> Iterable[SignalEvent[Any]]:
        """The signals the source currently holds."""


class SignalSink:
    """A shared signal window: every coordinator, atom and pattern given this sink sees its signals.

    The window holds the signals emitted on the sink itself, at most ``max_capacity`` of them and none
    older than ``max_age`` (enforced when read). Queries (``sense``, ``detect``, ``count``) also see the
    signals of the operations of every coordinator sharing the sink, so each signal appears once.

    ``emit`` is synchronous, cheap and safe to call from any thread. Subscribers are called
    synchronously, in order, on the emitting thread; one that raises is logged and skipped.

    Args:
        max_capacity: The most signals the sink keeps (oldest go first).
        max_age: How long a signal stays visible, as seconds or a timedelta.
        clock: A monotonic clock in seconds. Pass ``anyio.current_time`` to follow the event loop's
            (possibly virtual) clock when the sink is only used from inside the loop.
        now: The wall-clock source for timestamps.
    """

    def __init__(
        self,
        max_capacity: int = 1000,
        max_age: float | timedelta = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if isinstance(max_capacity, bool) or not isinstance(max_capacity, int) or max_capacity < 1:
            raise ValueError(f"max_capacity must be an int >= 1, got {max_capacity!r}")
        self._max_age = to_seconds(max_age, "max_age")
        if not callable(clock):
            raise TypeError(f"clock must be callable, got {clock!r}")
        if not callable(now):
            raise TypeError(f"now must be callable, got {now!r}")
        self._window: deque[_Entry] = deque(maxlen=max_capacity)
        self._clock = clock
        self._time = TimeBase(clock, now)
        self._subscribers = EventHook[SignalEvent[Any]]("signal subscriber")
        self._retract_subscribers = EventHook[SignalRetractedEvent]("retraction subscriber")
        self._sources: list[weakref.ref[SignalSource]] = []
        self._lock = threading.Lock()

    # -- emitting -----------------------------------------------------------------------------

    def emit(self, signal: str | SignalEvent[Any], key: str | None = None) -> None:
        """Record a signal and tell the subscribers.

        Args:
            signal: A signal name, or a ready ``SignalEvent`` (then ``key`` is ignored).
            key: An optional correlation key.
        """
        entry: _Entry
        if signal.__class__ is str:
            entry = (signal, next(_ids), key, self._clock(), None)
        elif isinstance(signal, SignalEvent):
            entry = (signal.signal, signal.operation_id, signal.key, self._clock(), signal)
        elif isinstance(signal, str):  # a str subclass, such as a str-valued Enum member: store the plain name
            entry = (str.__str__(signal), next(_ids), key, self._clock(), None)
        else:
            raise TypeError(f"signal must be a str or a SignalEvent, got {signal!r}")
        self._window.append(entry)
        if self._subscribers.handlers:
            self._subscribers.fire(self._event(entry))

    def emit_caused(self, signal: str, cause: SignalEvent[Any] | None, key: str | None = None) -> SignalEvent[Any]:
        """Emit ``signal`` as a consequence of ``cause``, recording the causal chain."""
        event = caused_event(signal, cause, operation_id=next(_ids), key=key, timestamp=self.now())
        assert event is not None  # only constraints refuse
        self.emit(event)
        return event

    def restore(self, event: SignalEvent[Any]) -> bool:
        """Record a signal that happened earlier (reloaded from storage, replayed).

        It ages from its own ``timestamp``, not from now; subscribers are told as for ``emit``.

        Returns:
            False, recording nothing, when the signal is already older than ``max_age``.
        """
        if not isinstance(event, SignalEvent):
            raise TypeError(f"event must be a SignalEvent, got {event!r}")
        reading = self._time.to_reading(event.timestamp)
        if reading < self._clock() - self._max_age:
            return False
        self._window.append((event.signal, event.operation_id, event.key, reading, event))
        if self._subscribers.handlers:
            self._subscribers.fire(event)
        return True

    def publish(self, event: SignalEvent[Any]) -> None:
        """Tell the subscribers about a signal stored elsewhere (an operation's); the window is untouched."""
        if self._subscribers.handlers:
            self._subscribers.fire(event)

    def subscribe(self, handler: Callable[[SignalEvent[Any]], object]) -> Subscription:
        """Call ``handler(event)`` for every signal emitted on or through this sink from now on."""
        return self._subscribers.connect(handler)

    def subscribe_retracted(self, handler: Callable[[SignalRetractedEvent], object]) -> Subscription:
        """Call ``handler(event)`` whenever a signal is retracted from this sink."""
        return self._retract_subscribers.connect(handler)

    @property
    def subscriber_errors(self) -> int:
        """How many times a subscriber raised (each was logged and skipped)."""
        return self._subscribers.errors + self._retract_subscribers.errors

    # -- retracting ---------------------------------------------------------------------------

    def retract(self, signal: str, key: str | None = None) -> int:
        """Remove every stored signal named ``signal`` (with ``key``, when given); return how many."""
        return self._retract(lambda e: e[0] == signal and (key is None or e[2] == key), None)

    def retract_matching(self, pattern: str) -> int:
        """Remove every stored signal whose name matches the glob ``pattern``; return how many."""
        glob = compile_pattern(pattern)
        return self._retract(lambda e: glob.matches(e[0]), pattern)

    def clear(self) -> int:
        """Remove every stored signal, without notifying retraction subscribers; return how many were live."""
        with self._lock:
            cutoff = self._clock() - self._max_age
            removed = sum(1 for entry in tuple(self._window) if entry[3] >= cutoff)
            self._window.clear()
        return removed

    def _retract(self, predicate: Callable[[_Entry], bool], pattern: str | None) -> int:
        with self._lock:
            cutoff = self._clock() - self._max_age
            doomed = [entry for entry in tuple(self._window) if predicate(entry)]
            for entry in doomed:
                try:
                    self._window.remove(entry)
                except ValueError:  # pushed out by a concurrent emit meanwhile
                    pass
        # Expired signals are removed too, but they were already invisible: they are not reported.
        doomed = [entry for entry in doomed if entry[3] >= cutoff]
        if doomed and self._retract_subscribers.handlers:
            stamp = self.now()
            for name, op_id, key, _, _ in doomed:
                self._retract_subscribers.fire(
                    SignalRetractedEvent(name, op_id, key, stamp, pattern is not None, pattern)
                )
        return len(doomed)

    # -- the shared view ----------------------------------------------------------------------

    def register_source(self, source: SignalSource) -> None:
        """Include ``source``'s signals in this sink's queries (coordinators call this)."""
        with self._lock:
            self._sources = [ref for ref in self._sources if ref() is not None and ref() is not source]
            self._sources.append(weakref.ref(source))

    def unregister_source(self, source: SignalSource) -> None:
        """Stop including ``source``'s signals."""
        with self._lock:
            self._sources = [ref for ref in self._sources if ref() is not None and ref() is not source]

    def _live_sources(self) -> list[SignalSource]:
        return [source for source in (ref() for ref in self._sources) if source is not None]

    @property
    def coordinator_count(self) -> int:
        """How many coordinators share this sink."""
        return len(self._live_sources())

    def get_coordinator_ids(self) -> list[str]:
        """The ``coordinator_id`` of every named coordinator sharing this sink."""
        return [s.coordinator_id for s in self._live_sources() if s.coordinator_id is not None]

    def _live_entries(self, within: float | None = None) -> list[_Entry]:
        now = self._clock()
        cutoff = now - (self._max_age if within is None else min(within, self._max_age))
        return [entry for entry in tuple(self._window) if entry[3] >= cutoff]

    def _event(self, entry: _Entry) -> SignalEvent[Any]:
        if entry[4] is not None:
            return entry[4]
        return SignalEvent(entry[0], entry[1], entry[2], self._time.to_datetime(entry[3]))

    def _iter(self, selector: SignalFilter, within: float | None) -> Iterator[SignalEvent[Any]]:
        names = _name_matcher(selector)
        predicate = None if names is not None else _as_predicate(selector)
        for entry in self._live_entries(within):
            if names is not None:
                if names(entry[0]):
                    yield self._event(entry)
                continue
            event = self._event(entry)
            if predicate is None or predicate(event):
                yield event
        sources = self._live_sources() if self._sources else ()
        if not sources:
            return
        since = None if within is None else self.now() - timedelta(seconds=within)
        for source in sources:
            for event in source.iter_signal_events():
                if since is not None and event.timestamp < since:
                    continue
                if (names is not None and names(event.signal)) or (
                    names is None and (predicate is None or predicate(event))
                ):
                    yield event

    def sense(
        self, selector: SignalFilter = None, *, within: float | timedelta | None = None
    ) -> list[SignalEvent[Any]]:
        """The live signals, optionally only those matching ``selector`` and newer than ``within``.

        Args:
            selector: A glob on the signal name, a ``PatternSet``, or a predicate on the event.
            within: Only signals emitted at most this long ago.

        Returns:
            The sink's own signals, oldest first, then those of the coordinators sharing it.
        """
        return list(self._iter(selector, None if within is None else to_seconds(within, "within")))

    def detect(self, selector: SignalFilter) -> bool:
        """Whether any live signal matches ``selector``."""
        return next(iter(self._iter(selector, None)), None) is not None

    def count(self, selector: SignalFilter = None, *, within: float | timedelta | None = None) -> int:
        """How many live signals match ``selector`` (all of them when None)."""
        return sum(1 for _ in self._iter(selector, None if within is None else to_seconds(within, "within")))

    def get_op_signals(self, operation_id: int, selector: SignalFilter = None) -> list[SignalEvent[Any]]:
        """The live signals of one operation."""
        return [e for e in self._iter(selector, None) if e.operation_id == operation_id]

    def sense_by_coordinator(self, coordinator_id: str) -> list[SignalEvent[Any]]:
        """The signals held by the coordinators whose ``coordinator_id`` matches the glob."""
        glob = compile_pattern(coordinator_id)
        return [
            event
            for source in self._live_sources()
            if source.coordinator_id is not None and glob.matches(source.coordinator_id)
            for event in source.iter_signal_events()
        ]

    def __len__(self) -> int:
        """How many signals the sink itself holds (not counting its coordinators')."""
        return len(self._live_entries())

    # -- configuration and time ---------------------------------------------------------------

    @property
    def max_capacity(self) -> int:
        """The most signals the sink keeps."""
        return self._window.maxlen or 0

    @property
    def max_age(self) -> float:
        """How long a signal stays visible, in seconds."""
        return self._max_age

    def now(self) -> datetime:
        """The current time by this sink's clock, as a UTC datetime."""
        return self._time.now()

    # -- drain requests -----------------------------------------------------------------------

    def request_drain_all(self) -> None:
        """Ask every coordinator on this sink to stop taking work and finish what it has."""
        self.emit("coordinator.drain.all")

    def request_drain(self, coordinator_id: str) -> None:
        """Ask the coordinator whose ``coordinator_id`` equals ``coordinator_id`` to drain."""
        if not coordinator_id:
            raise ValueError("coordinator_id must be a non-empty string")
        self.emit("coordinator.drain.id", key=coordinator_id)

    def request_drain_pattern(self, pattern: str) -> None:
        """Ask the coordinators whose ``coordinator_id`` matches the glob ``pattern`` to drain."""
        self.emit("coordinator.drain.pattern", key=compile_pattern(pattern).pattern)
