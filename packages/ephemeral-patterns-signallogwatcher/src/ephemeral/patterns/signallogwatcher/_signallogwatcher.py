"""A watcher that subscribes to a sink and calls back, in order, on every signal matching a glob."""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from anyio.abc import TaskGroup

from ephemeral.core import PatternSet, SignalEvent, SignalSink, Subscription
from ephemeral.core.lowlevel import (
    AsyncSignalQueue,
    LoopBinding,
    PatternIndex,
    TaskGroupOwner,
    caused_event,
    check_callable,
    check_int,
    next_id,
    to_seconds,
)

__all__ = ("SignalLogWatcher",)

_log = logging.getLogger("ephemeral.patterns.signallogwatcher")
_ERROR = "watcher.error"

#: What ``on_match`` may be: a plain function or a coroutine function, given the matching event.
OnMatch = Callable[[SignalEvent[Any]], "Awaitable[object] | object"]


class _Hub:
    """One subscription per sink for all its watchers: a lookup in a pattern index finds those to tell.

    With many watchers on one sink, an emit costs one subscriber call and one index lookup (which only
    tries the patterns that can match), not one pattern match per watcher.
    """

    __slots__ = ("__weakref__", "index", "subscription")

    def __init__(self, sink: SignalSink) -> None:
        self.index: PatternIndex[SignalLogWatcher] = PatternIndex()
        self.subscription = sink.subscribe(self.on_signal)

    def on_signal(self, event: SignalEvent[Any]) -> None:
        for watcher in self.index.match(event.signal):
            watcher._on_signal(event)


_hubs: weakref.WeakKeyDictionary[SignalSink, _Hub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def _watch(sink: SignalSink, pattern: str, watcher: SignalLogWatcher) -> Subscription:
    """Tell ``watcher`` about every signal on ``sink`` matching ``pattern`` until the handle is closed."""
    with _hubs_lock:
        hub = _hubs.get(sink)
        if hub is None:
            hub = _hubs[sink] = _Hub(sink)
        handle = hub.index.add(pattern, watcher)

    def unwatch() -> None:
        with _hubs_lock:
            hub.index.remove(handle)
            if not hub.index and _hubs.get(sink) is hub:
                hub.subscription.close()
                del _hubs[sink]

    return Subscription(unwatch)


class SignalLogWatcher(TaskGroupOwner):
    """Runs ``on_match(event)`` once for every signal matching ``pattern`` emitted on the sink, in order.

    It subscribes to the sink when its ``async with`` block starts: every matching signal emitted from
    then on (on the sink directly, from any thread, or by the operations of a coordinator sharing the
    sink) is queued and handed to ``on_match`` by one background task, one at a time, in the order the
    signals were emitted. ``on_match`` may be a plain function or a coroutine function. Nothing polls:
    the callback runs as soon as the loop gets to it after the emit.

    When ``on_match`` raises, the watcher emits ``watcher.error:{ExceptionType}`` on the sink (key: the
    pattern, caused by the matching signal), logs the exception and carries on with the next signal.
    The watcher never hands its own ``watcher.error`` signals to ``on_match``, so a broad pattern cannot
    make it loop; an ``on_match`` that raises on a ``watcher.error`` signal (another watcher's) is logged
    and counted but not signalled again, so two failing watchers cannot feed each other.

    Leaving the block unsubscribes and then finishes the signals already queued; leaving it with an
    exception (or a cancellation) drops them instead, counted in ``dropped_count``. At most
    ``max_pending`` signals wait at once: beyond that the oldest waiting one is dropped and counted, so
    a slow callback cannot make memory grow without bound.

    Args:
        sink: The sink to watch.
        on_match: Called with each matching ``SignalEvent``; sync or async.
        pattern: A glob on signal names (``"error.*"``; comma-separated alternatives allowed).
        poll_interval: Accepted so code written for polling watchers runs unchanged, and validated
            (seconds or a timedelta, > 0), but unused: the watcher subscribes instead of polling.
        max_pending: The most matching signals waiting for ``on_match`` at once.

    Raises:
        TypeError: ``sink`` is not a ``SignalSink``, ``on_match`` is not callable, or an argument has
            the wrong type.
        ValueError: ``pattern`` is blank, ``poll_interval`` is not positive or ``max_pending`` < 1.
    """

    def __init__(
        self,
        sink: SignalSink,
        on_match: OnMatch,
        pattern: str = "error.*",
        poll_interval: float | timedelta = timedelta(milliseconds=200),
        *,
        max_pending: int = 10_000,
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        check_callable(on_match, "on_match")
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str, got {pattern!r}")
        if not PatternSet(pattern):  # compiles each alternative: unsupported glob syntax raises ValueError
            raise ValueError(f"pattern must not be blank, got {pattern!r}")
        self._poll_interval = to_seconds(poll_interval, "poll_interval")
        self._max_pending = check_int(max_pending, "max_pending")
        self._sink = sink
        self._on_match = on_match
        self._pattern = pattern
        # One handler at a time keeps the order; a full queue drops its oldest signal and counts it.
        self._queue = AsyncSignalQueue(self._call, None, 1, self._max_pending)
        self._own_ids: set[int] = set()
        self._closing = False
        self._loop: LoopBinding | None = None
        self._subscription: Subscription | None = None
        self.match_count = 0
        """Matching signals received."""
        self.handled_count = 0
        """Calls of ``on_match`` that returned."""
        self.error_count = 0
        """Calls of ``on_match`` that raised."""

    @property
    def pattern(self) -> str:
        """The glob matching signals satisfy."""
        return self._pattern

    @property
    def poll_interval(self) -> timedelta:
        """The interval given at construction; unused (the watcher subscribes)."""
        return timedelta(seconds=self._poll_interval)

    @property
    def pending_count(self) -> int:
        """Matching signals waiting for ``on_match``."""
        return self._queue.queued_count

    @property
    def dropped_count(self) -> int:
        """Matching signals never handed to ``on_match`` (overflow, or an exception leaving the block)."""
        return self._queue.dropped_count

    # -- lifecycle (TaskGroupOwner) -----------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._loop = LoopBinding()
        self._queue.start(tg, self._loop)
        self._subscription = _watch(self._sink, self._pattern, self)

    async def _on_clean_exit(self) -> None:
        self._stop_listening()
        await self._queue.wait_idle()  # finish what is queued

    def _on_close(self) -> None:
        self._stop_listening()
        self._queue.close()  # what is still queued (left by an exception) is dropped and counted

    def _stop_listening(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self._closing = True

    # -- receiving (any thread) -------------------------------------------------------------------

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        loop = self._loop
        if loop is None:
            return
        if loop.on_loop_thread:
            self._accept(event)
        else:
            loop.call(lambda: self._accept(event))

    def _accept(self, event: SignalEvent[Any]) -> None:
        if event.operation_id in self._own_ids:
            self._own_ids.discard(event.operation_id)
            return
        if self._closing:
            return
        self.match_count += 1
        self._queue.offer(event)

    # -- delivering (the queue's task) ------------------------------------------------------------

    async def _call(self, event: SignalEvent[Any]) -> None:
        try:
            result = self._on_match(event)
            if inspect.isawaitable(result):
                await result
        except Exception as error:
            self.error_count += 1
            _log.exception("on_match failed for %s", event.signal)
            if not event.signal.startswith(_ERROR):  # two failing watchers must not feed each other forever
                self._report(event, error)
        else:
            self.handled_count += 1

    def _report(self, cause: SignalEvent[Any], error: Exception) -> None:
        """Emit ``watcher.error:{ExceptionType}`` caused by ``cause``, never handed back to this watcher."""
        event = caused_event(
            f"watcher.error:{type(error).__name__}",
            cause,
            operation_id=next_id(),
            key=self._pattern,
            timestamp=self._sink.now(),
        )
        assert event is not None  # no constraints: never refused
        self._own_ids.add(event.operation_id)
        try:
            self._sink.emit(event)
        finally:
            self._own_ids.discard(event.operation_id)

    def __repr__(self) -> str:
        return f"SignalLogWatcher(pattern={self._pattern!r}, match_count={self.match_count})"
