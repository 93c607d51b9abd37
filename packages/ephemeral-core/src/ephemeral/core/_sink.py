"""The signal sink: a bounded, time-limited window of signals, with subscribers and a shared view."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from ._checks import check_int
from ._clock import TimeBase, to_seconds, utc_now
from ._events import SignalEvent, SignalPropagation, SignalRetractedEvent
from ._hooks import EventHook, Subscription
from ._matcher import GlobPattern, PatternSet, compile_pattern, literal_prefix
from ._window_index import WindowIndex, as_event, operation_id as operation_of

__all__ = ("SignalFilter", "SignalSink", "SignalSource", "SignalTap", "as_predicate", "next_id")

_log = logging.getLogger("ephemeral.core")

# Ids start at the microseconds since the epoch when the process started, so ids stay unique across
# restarts of a process (signals reloaded from storage keep theirs) while a process makes fewer than
# a million a second on average.
_ids = itertools.count(time.time_ns() // 1000)
_tuple_new = tuple.__new__

#: A glob (``"error.*"``), a pattern set, or a predicate over events.
SignalFilter = str | PatternSet | GlobPattern | Callable[[SignalEvent[Any]], bool] | None

#: One stored signal; slots 0-3 are always (name, sequence, key, reading of this sink's clock). Forms:
#: - ``(name, id, key, reading, None)``, stored by ``emit(name)`` when nobody subscribes: the event is
#:   built from it only if a query returns it;
#: - a ``SignalEvent`` ``(name, id, key, reading, time base, propagation, payload)``, built by
#:   ``emit(name)`` for the subscribers (or by ``make_event``);
#: - ``(name, sequence, key, reading, event)`` for a ready event (its own id, timestamp and payload),
#:   emitted or restored.
#: The sequence numbers (the ids of the sink's own events) grow in window order, which lets the index
#: tell which of its items have left the window.
_Entry = tuple[Any, ...]


def next_id() -> int:
    """A new unique id for an operation, a coordinator or a sink-emitted signal.

    Ids increase within a process and do not repeat across its restarts (they start from the clock).
    """
    return next(_ids)


def as_predicate(selector: SignalFilter) -> Callable[[SignalEvent[Any]], bool] | None:
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


def _bucket_of(selector: SignalFilter) -> tuple[str, bool, Callable[[str], bool] | None] | None:
    """Where the window index keeps the signals a glob can match: (key, exact name?, matcher or None).

    A literal name is its own bucket; a glob whose text before the first wildcard holds a dot uses
    the bucket of that dotted prefix (``error.db.*`` -> ``"error.db."``) and still checks each name,
    unless the glob is exactly the prefix followed by ``*``. Other selectors have no bucket.
    """
    if isinstance(selector, GlobPattern):
        pattern = selector.pattern
    elif isinstance(selector, str):
        pattern = compile_pattern(selector).pattern
    else:
        return None
    prefix = literal_prefix(pattern)
    if prefix == pattern:
        return pattern, True, None
    dot = prefix.rfind(".")
    if dot < 0:
        return None
    key = prefix[: dot + 1]
    return key, False, None if pattern == key + "*" else compile_pattern(pattern).matches


_Handler = Callable[[SignalEvent[Any]], object]


def _handler_failed(subscribers: EventHook[SignalEvent[Any]], handler: _Handler) -> None:
    subscribers.errors += 1
    _log.exception("%s: handler %r failed", subscribers.label, handler)


class SignalTap:
    """The signals emitted on a sink since the tap was opened, waiting to be taken (``SignalSink.open_tap``).

    Every signal emitted on the sink (``emit`` in every form, ``emit_caused``, typed emits), on any
    thread, is kept here until ``take``; signals the sink received from elsewhere (``restore``) are not.
    The emitting thread only appends the sink's own window entry to a bounded deque: no event is built
    and no code of the consumer runs, so a tap costs ``emit`` far less than a subscriber. At most
    ``max_pending`` wait: beyond it the oldest are lost and counted in ``dropped``.
    """

    __slots__ = ("_detach", "_dropped", "_entries", "_lock", "_reads", "_taken", "_ticks", "_timebase")

    def __init__(self, max_pending: int, timebase: TimeBase, detach: Callable[[SignalTap], None]) -> None:
        self._entries: deque[_Entry] = deque(maxlen=max_pending)
        self._ticks = itertools.count()  # advanced once per entry stored (after it) and once per read
        self._reads = 0
        self._taken = 0
        self._dropped = 0
        self._timebase = timebase
        self._detach: Callable[[SignalTap], None] | None = detach
        self._lock = threading.Lock()

    def _store_functions(self) -> tuple[Callable[[_Entry], None], itertools.count[int]]:
        """What the sink's store calls: the deque's ``append``, and the counter to advance after it."""
        return self._entries.append, self._ticks

    def take(self) -> list[SignalEvent[Any]]:
        """The signals waiting, oldest first, as events; they no longer wait. Thread-safe."""
        with self._lock:
            entries = self._entries
            popleft = entries.popleft
            taken = [popleft() for _ in range(len(entries))]
            self._taken += len(taken)
        timebase = self._timebase
        return [as_event(entry, timebase) for entry in taken]

    @property
    def dropped(self) -> int:
        """How many signals were lost because ``max_pending`` were waiting.

        Exact once the emits running on other threads have returned (an entry is counted just after
        it is stored, so one being stored right now may be missing from the count, never extra).
        """
        with self._lock:
            stored = next(self._ticks) - self._reads
            self._reads += 1
            # Never more than the truth (an entry is counted after it is stored), so the largest seen holds.
            self._dropped = max(self._dropped, stored - self._taken - len(self._entries))
            return self._dropped

    @property
    def max_pending(self) -> int:
        """The most signals that wait."""
        maxlen = self._entries.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._detach is None

    def close(self) -> None:
        """Stop collecting; the signals already waiting can still be taken. Closing again does nothing."""
        detach, self._detach = self._detach, None
        if detach is not None:
            detach(self)

    def __len__(self) -> int:
        """How many signals wait."""
        return len(self._entries)

    def __repr__(self) -> str:
        state = "closed" if self._detach is None else "open"
        return f"<SignalTap {state} waiting={len(self._entries)} max_pending={self.max_pending}>"


def _hot_path(
    window: deque[_Entry], clock: Callable[[], float], timebase: TimeBase, subscribers: EventHook[SignalEvent[Any]]
) -> tuple[
    Callable[[str | SignalEvent[Any], str | None], None],
    Callable[[SignalEvent[Any]], None],
    Callable[[_Entry], None],
    Callable[[deque[_Entry] | None, tuple[SignalTap, ...] | None], None],
    Callable[[tuple[_Handler, ...]], None],
]:
    """A sink's ``emit``, ``fire`` and ``store``, closures over local cells, and the setters of those cells.

    The hot path of the whole library: kept flat on purpose (no helper calls, no attribute reads),
    see benchmarks/README.md ("Profiles"). The closures hold no reference to the sink (no cycle).
    Subscribers run inline under the "firing" flag; an emit while it is set (a subscriber emitting,
    or another thread while they run) goes through ``EventHook.fire``, which bounds nesting per
    thread. With exactly one subscriber, ``emit`` calls it itself (no loop, no extra call).
    Anything but a plain str goes through ``emit_other``, off the hot path.

    ``append`` stores a locally emitted entry: the window's own ``append`` while no tap is open (so the
    taps cost nothing to anyone else), else a small function storing it in the window and every tap.
    ``store`` is the same for callers outside (``_emit_built``); restored entries bypass both.
    """
    append: Callable[[_Entry], None] = window.append
    window_append = window.append
    taps: tuple[SignalTap, ...] = ()
    handlers: tuple[_Handler, ...] = ()
    firing = False

    def deliver_all(event: SignalEvent[Any]) -> None:
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                _handler_failed(subscribers, handler)

    # The one subscriber itself when there is exactly one (no loop: saves a tuple iterator), else deliver_all.
    deliver: _Handler = deliver_all

    def emit(signal: str | SignalEvent[Any], key: str | None = None) -> None:
        nonlocal firing
        if signal.__class__ is not str:
            emit_other(signal, key)
            return
        if not handlers:
            append((signal, next(_ids), key, clock(), None))  # one statement: see SignalSink._remove
            return
        event: SignalEvent[Any] = _tuple_new(SignalEvent, (signal, next(_ids), key, clock(), timebase, None, None))
        append(event)
        if firing:  # a nested emit (a subscriber emitting) or another thread's while subscribers run
            subscribers.fire(event)
            return
        firing = True
        try:
            deliver(event)
        except Exception:  # only the one subscriber's: deliver_all isolates each of several
            _handler_failed(subscribers, deliver)
        finally:
            firing = False

    def emit_other(signal: object, key: str | None) -> None:
        if isinstance(signal, SignalEvent):  # a ready event: its entry carries it, with a fresh sequence number
            append((signal[0], next(_ids), signal[2], clock(), signal))
            if handlers:
                fire(signal)
        elif isinstance(signal, str):  # a str subclass, such as a str-valued Enum member: store the plain name
            event = _tuple_new(SignalEvent, (str.__str__(signal), next(_ids), key, clock(), timebase, None, None))
            append(event)
            fire(event)
        else:
            raise TypeError(f"signal must be a str or a SignalEvent, got {signal!r}")

    def fire(event: SignalEvent[Any]) -> None:
        nonlocal firing
        if not handlers:
            return
        if firing:
            subscribers.fire(event)
            return
        firing = True
        try:
            deliver(event)
        except Exception:
            _handler_failed(subscribers, deliver)
        finally:
            firing = False

    def store(entry: _Entry) -> None:
        append(entry)

    def set_storage(fresh: deque[_Entry] | None, fresh_taps: tuple[SignalTap, ...] | None) -> None:
        """Replace the window and/or the taps (the caller holds the sink's lock); rebuild ``append``."""
        nonlocal append, window_append, taps
        if fresh is not None:
            window_append = fresh.append
        if fresh_taps is not None:
            taps = fresh_taps
        into_window = window_append
        if not taps:
            append = into_window
        elif len(taps) == 1:
            into_tap, ticks = taps[0]._store_functions()

            def append_one(entry: _Entry) -> None:
                into_window(entry)
                into_tap(entry)
                next(ticks)  # the builtin: cheaper than a bound ``__next__``

            append = append_one
        else:
            stores = tuple(tap._store_functions() for tap in taps)

            def append_all(entry: _Entry) -> None:
                into_window(entry)
                for into_tap, ticks in stores:
                    into_tap(entry)
                    next(ticks)

            append = append_all

    def set_handlers(fresh: tuple[_Handler, ...]) -> None:
        nonlocal handlers, deliver
        deliver = deliver_all  # first, so that no emit calls a former single subscriber after this
        handlers = fresh
        if len(fresh) == 1:
            deliver = fresh[0]

    return emit, fire, store, set_storage, set_handlers


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
    synchronously, in order, on the emitting thread; one that raises is logged and skipped. Events are
    stamped with the sink's monotonic clock; their ``timestamp`` datetime is derived when read.

    Queries on a literal name or on a glob with a literal dotted prefix (``error.*``, ``a.b.*``) use
    an index by name and prefix, so their cost follows the matches rather than the window; ``detect``
    stops at the first match. The index is brought up to date by the queries themselves, so ``emit``
    pays nothing for it.

    ``open_tap(max_pending)`` collects the signals emitted here (not those restored from elsewhere) in a
    bounded ``SignalTap`` that a consumer empties with ``take()``: the cheap alternative to a subscriber
    for carrying signals away (an open tap adds one small function call to ``emit``; none costs nothing).

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
        self._index = WindowIndex(self._time)
        self._taps: tuple[SignalTap, ...] = ()
        emit, self._fire, self._store, self._set_storage, self._set_handlers = _hot_path(
            self._window, clock, self._time, self._subscribers
        )
        self._emit = emit
        if type(self).emit is SignalSink.emit:  # not overridden: ``sink.emit`` is the closure itself
            emit.__doc__ = SignalSink.emit.__doc__
            self.__dict__["emit"] = emit

    # -- emitting -----------------------------------------------------------------------------

    def emit(self, signal: str | SignalEvent[Any], key: str | None = None) -> None:
        """Record a signal and tell the subscribers.

        Args:
            signal: A signal name, or a ready ``SignalEvent`` (then ``key`` is ignored), such as one
                from ``make_event``.
            key: An optional correlation key.
        """
        # Unless a subclass overrides this method, ``sink.emit`` is an attribute of the instance holding
        # the closure built by _hot_path, so this body only runs as ``SignalSink.emit(sink, ...)``.
        self._emit(signal, key)

    def _store_event(self, event: SignalEvent[Any], reading: float) -> None:
        """Store a ready event with ``reading`` (it ages from then) and tell the subscribers."""
        self._window.append((event[0], next(_ids), event[2], reading, event))
        self._fire(event)

    def _emit_built(self, event: SignalEvent[Any]) -> None:
        """Store an event from ``make_event`` with a fresh id (it is its own entry) and tell the subscribers."""
        self._store(event)
        self._fire(event)

    def make_event(
        self,
        signal: str,
        key: str | None = None,
        *,
        operation_id: int | None = None,
        propagation: SignalPropagation | None = None,
        payload: Any = None,
    ) -> SignalEvent[Any]:
        """A new event stamped now by this sink's clock; not emitted: pass it to ``emit`` (or keep it).

        The cheap way to emit an event with an operation id, a propagation path or a payload:
        ``sink.emit(sink.make_event(name, key, operation_id=op_id))`` stores the sink's monotonic clock
        reading and derives the ``timestamp`` datetime only when it is read, where
        ``SignalEvent(name, op_id, key, sink.now())`` builds the datetime at once (about twice the cost).

        Args:
            signal: The signal name.
            key: An optional correlation key.
            operation_id: The emitting operation; a fresh id (``next_id()``) when None.
            propagation: The causal chain, when the signal is caused by another one.
            payload: Data carried by the event.
        """
        return _tuple_new(
            SignalEvent,
            (
                signal,
                next(_ids) if operation_id is None else operation_id,
                key,
                self._clock(),
                self._time,
                propagation,
                payload,
            ),
        )

    def emit_caused(self, signal: str, cause: SignalEvent[Any] | None, key: str | None = None) -> SignalEvent[Any]:
        """Emit ``signal`` as a consequence of ``cause``, recording the causal chain."""
        propagation = (
            cause.propagation.extend(signal)
            if cause is not None and cause.propagation is not None
            else SignalPropagation((cause.signal, signal))
            if cause is not None
            else None
        )
        event = self.make_event(signal, key, propagation=propagation)
        self._emit_built(event)
        return event

    def restore(self, event: SignalEvent[Any]) -> bool:
        """Record a signal that happened earlier (reloaded from storage, replayed).

        It ages from its own ``timestamp``, not from now; subscribers are told as for ``emit``, taps
        (``open_tap``) are not: they collect the signals emitted here only.

        Returns:
            False, recording nothing, when the signal is already older than ``max_age``.
        """
        if not isinstance(event, SignalEvent):
            raise TypeError(f"event must be a SignalEvent, got {event!r}")
        reading = self._time.to_reading(event.timestamp)
        if reading < self._clock() - self._max_age:
            return False
        self._store_event(event, reading)
        return True

    def publish(self, event: SignalEvent[Any]) -> None:
        """Tell the subscribers about a signal stored elsewhere (an operation's); the window is untouched."""
        self._fire(event)

    def open_tap(self, max_pending: int) -> SignalTap:
        """Collect every signal emitted on this sink from now on, to be taken later (``tap.take()``).

        A tap is the cheap way to carry a sink's signals elsewhere (a bridge, a log): the emitting thread
        only appends the stored entry to the tap's bounded deque, where a subscriber makes every ``emit``
        build an event and call Python code. Signals recorded with ``restore`` (received from elsewhere)
        do not reach taps. At most ``max_pending`` wait (the oldest are lost beyond it, counted in
        ``tap.dropped``); ``tap.close()`` stops collecting.
        """
        check_int(max_pending, "max_pending", minimum=1)
        tap = SignalTap(max_pending, self._time, self._close_tap)
        with self._lock:
            self._taps = (*self._taps, tap)
            self._set_storage(None, self._taps)
        return tap

    def _close_tap(self, tap: SignalTap) -> None:
        with self._lock:
            self._taps = tuple(t for t in self._taps if t is not tap)
            self._set_storage(None, self._taps)

    def subscribe(self, handler: Callable[[SignalEvent[Any]], object]) -> Subscription:
        """Call ``handler(event)`` for every signal emitted on or through this sink from now on."""
        connected = self._subscribers.connect(handler)
        self._set_handlers(self._subscribers.handlers)

        def remove() -> None:
            connected.close()
            self._set_handlers(self._subscribers.handlers)

        return Subscription(remove)

    def subscribe_retracted(self, handler: Callable[[SignalRetractedEvent], object]) -> Subscription:
        """Call ``handler(event)`` whenever a signal is retracted from this sink."""
        return self._retract_subscribers.connect(handler)

    @property
    def subscriber_errors(self) -> int:
        """How many times a subscriber raised (each was logged and skipped)."""
        return self._subscribers.errors + self._retract_subscribers.errors

    # -- retracting and clearing ----------------------------------------------------------------

    def retract(self, signal: str, key: str | None = None) -> int:
        """Remove every stored signal named ``signal`` (with ``key``, when given); return how many."""
        return self._retract(lambda e: e[0] == signal and (key is None or e[2] == key), None)

    def retract_matching(self, pattern: str) -> int:
        """Remove every stored signal whose name matches the glob ``pattern``; return how many."""
        glob = compile_pattern(pattern)
        return self._retract(lambda e: glob.matches(e[0]), pattern)

    def _retract(self, predicate: Callable[[_Entry], bool], pattern: str | None) -> int:
        doomed = self._remove(predicate)
        if doomed and self._retract_subscribers.handlers:
            stamp = self.now()
            for entry in doomed:
                self._retract_subscribers.fire(
                    SignalRetractedEvent(entry[0], operation_of(entry), entry[2], stamp, pattern is not None, pattern)
                )
        return len(doomed)

    def retract_exact(self, signal: str, key: str | None, operation_id: int) -> int:
        """Remove the stored signals named ``signal`` of operation ``operation_id`` whose key is ``key``.

        Unlike ``retract``, a None ``key`` means the signals without a key, not every key: this removes
        what one reported retraction (a ``SignalRetractedEvent``, with its name, key and operation id)
        removed, so another copy of the window (another process's) can apply exactly that. Retraction
        subscribers are told, as for ``retract``; returns how many were removed.
        """
        if not isinstance(signal, str):
            raise TypeError(f"signal must be a str, got {signal!r}")
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a str or None, got {key!r}")
        check_int(operation_id, "operation_id", minimum=-(2**63))
        return self._retract(lambda e: e[0] == signal and e[2] == key and operation_of(e) == operation_id, None)

    def _retract_operation(self, signal: str, operation_id: int) -> int:
        """Remove ``signal`` as emitted by ``operation_id`` (silently); return how many."""
        return len(self._remove(lambda e: e[0] == signal and operation_of(e) == operation_id))

    def clear(self) -> int:
        """Remove every stored signal; return how many were live (expired leftovers are not counted).

        When that is more than 0, subscribers receive ``sink.cleared`` with the count as key. It is
        published, not stored, so the window is empty afterwards. Retraction subscribers are not told.
        """
        removed = len(self._remove(None))
        if removed:
            self.publish(self.make_event("sink.cleared", str(removed)))
        return removed

    def clear_matching(self, predicate: Callable[[SignalEvent[Any]], bool]) -> int:
        """Remove the stored signals for which ``predicate(event)`` is true; return how many were live.

        Silent: no signal is emitted and retraction subscribers are not told.
        """
        if not callable(predicate):
            raise TypeError(f"predicate must be callable, got {predicate!r}")
        return len(self._remove(lambda e: bool(predicate(as_event(e, self._time)))))

    def clear_pattern(self, pattern: str) -> int:
        """Remove the stored signals whose name matches the glob ``pattern``; return how many were live.

        When that is more than 0, subscribers receive ``sink.cleared.pattern`` with key
        ``"<pattern>:<count>"`` (published, not stored). Retraction subscribers are not told.
        """
        glob = compile_pattern(pattern)
        removed = len(self._remove(lambda e: glob.matches(e[0])))
        if removed:
            self.publish(self.make_event("sink.cleared.pattern", f"{pattern}:{removed}"))
        return removed

    def clear_key(self, key: str) -> int:
        """Remove the stored signals with correlation key ``key``; return how many were live (silent)."""
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {key!r}")
        if not key:
            raise ValueError("key must be a non-empty string")
        return len(self._remove(lambda e: e[2] == key))

    def clear_operation(self, operation_id: int) -> int:
        """Remove the stored signals of operation ``operation_id``; return how many were live (silent)."""
        check_int(operation_id, "operation_id", minimum=-(2**63))
        return len(self._remove(lambda e: operation_of(e) == operation_id))

    def clear_older_than(self, age: float | timedelta) -> int:
        """Remove the stored signals emitted more than ``age`` ago; return how many were live (silent)."""
        limit = self._clock() - to_seconds(age, "age", allow_zero=True)
        return len(self._remove(lambda e: e[3] < limit))

    def clear_oldest(self, count: int) -> int:
        """Remove the ``count`` oldest live signals; return how many were removed (silent; 0 when count <= 0)."""
        check_int(count, "count", minimum=-(2**63))
        if count <= 0:
            return 0
        cutoff = self._clock() - self._max_age
        oldest = {id(e) for e in itertools.islice((e for e in tuple(self._window) if e[3] >= cutoff), count)}
        return len(self._remove(lambda e: id(e) in oldest))

    def _remove(self, predicate: Callable[[_Entry], bool] | None) -> list[_Entry]:
        """Remove the entries ``predicate`` selects (all when None); return those that were live.

        The window is rebuilt and swapped in, rather than edited in place, so a removal costs one pass
        whatever it removes. ``emit`` appends without a lock, so entries appended to the old window
        while this runs are carried over to the new one.
        """
        with self._lock:
            old = self._window
            snapshot = tuple(old)
            if predicate is None:
                doomed, kept = list(snapshot), list[_Entry]()
            else:
                doomed, kept = [], []
                for entry in snapshot:
                    (doomed if predicate(entry) else kept).append(entry)
            if not doomed:
                return []
            fresh: deque[_Entry] = deque(kept, maxlen=old.maxlen)
            self._window = fresh
            self._set_storage(fresh, None)
            last = snapshot[-1] if snapshot else None
            late = []
            for entry in reversed(tuple(old)):  # appended meanwhile: newer than the snapshot's last
                if entry is last:
                    break
                late.append(entry)
            fresh.extend(reversed(late))
            self._index.invalidate()
            cutoff = self._clock() - self._max_age
        # Expired signals are removed too, but they were already invisible: they are not reported.
        return [entry for entry in doomed if entry[3] >= cutoff]

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
        cutoff = self._cutoff(within)
        return [entry for entry in tuple(self._window) if entry[3] >= cutoff]

    def _cutoff(self, within: float | None) -> float:
        return self._clock() - (self._max_age if within is None else min(within, self._max_age))

    def _own(self, selector: SignalFilter, within: float | None) -> Iterable[SignalEvent[Any]]:
        """The sink's own live signals matching ``selector``, oldest first."""
        cutoff = self._cutoff(within)
        bucket = _bucket_of(selector)
        if bucket is not None:
            key, exact, match = bucket
            items = self._index.items(self._window, key, exact)
            if match is None:
                return [item if item.__class__ is SignalEvent else item[4] for item in items if item[3] >= cutoff]
            return [
                item if item.__class__ is SignalEvent else item[4]
                for item in items
                if item[3] >= cutoff and match(item[0])
            ]
        names = _name_matcher(selector)
        if names is not None:
            return [
                as_event(entry, self._time) for entry in tuple(self._window) if entry[3] >= cutoff and names(entry[0])
            ]
        predicate = as_predicate(selector)
        events = [as_event(entry, self._time) for entry in tuple(self._window) if entry[3] >= cutoff]
        return events if predicate is None else [event for event in events if predicate(event)]

    def _from_sources(self, selector: SignalFilter, within: float | None) -> Iterator[SignalEvent[Any]]:
        """The live signals of the coordinators sharing the sink that match ``selector``."""
        sources = self._live_sources() if self._sources else ()
        if not sources:
            return
        names = _name_matcher(selector)
        predicate = None if names is not None else as_predicate(selector)
        since = None if within is None else self.now() - timedelta(seconds=within)
        for source in sources:
            for event in source.iter_signal_events():
                if since is not None and event.timestamp < since:
                    continue
                if (names is not None and names(event.signal)) or (
                    names is None and (predicate is None or predicate(event))
                ):
                    yield event

    def _iter(self, selector: SignalFilter, within: float | None) -> Iterator[SignalEvent[Any]]:
        yield from self._own(selector, within)
        yield from self._from_sources(selector, within)

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
        seconds = None if within is None else to_seconds(within, "within")
        found = self._own(selector, seconds)
        events = found if found.__class__ is list else list(found)
        if self._sources:
            events.extend(self._from_sources(selector, seconds))
        return events

    def detect(self, selector: SignalFilter) -> bool:
        """Whether any live signal matches ``selector``.

        Stops at the first match, newest first; a literal name or a glob with a literal dotted prefix
        looks only at the signals under that name or prefix.
        """
        cutoff = self._cutoff(None)
        bucket = _bucket_of(selector)
        if bucket is not None:
            key, exact, match = bucket
            if match is None:
                found = self._index.any_newest_first(self._window, key, exact, lambda item: item[3] >= cutoff)
            else:
                found = self._index.any_newest_first(
                    self._window, key, exact, lambda item: item[3] >= cutoff and match(item[0])
                )
        else:
            names = _name_matcher(selector)
            if names is not None or selector is None:
                found = self._any_entry(lambda e: e[3] >= cutoff and (names is None or names(e[0])))
            else:
                predicate = as_predicate(selector)
                found = any(
                    e[3] >= cutoff and (predicate is None or predicate(as_event(e, self._time)))
                    for e in reversed(tuple(self._window))
                )
        return found or next(self._from_sources(selector, None), None) is not None

    def _any_entry(self, accept: Callable[[_Entry], bool]) -> bool:
        """Whether ``accept`` holds for a window entry, newest first, without copying the window."""
        window = self._window
        try:
            return any(accept(entry) for entry in reversed(window))
        except RuntimeError:  # an emit from another thread changed the window meanwhile: use a copy
            return any(accept(entry) for entry in reversed(tuple(window)))

    def count(self, selector: SignalFilter = None, *, within: float | timedelta | None = None) -> int:
        """How many live signals match ``selector`` (all of them when None)."""
        seconds = None if within is None else to_seconds(within, "within")
        own = self._own(selector, seconds)
        return len(own) + sum(1 for _ in self._from_sources(selector, seconds))  # type: ignore[arg-type]

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
