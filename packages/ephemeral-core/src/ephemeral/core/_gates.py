"""The gates a worker passes before it takes an item: cancel signals, deferral, and the hold.

``Gates.check`` returns a ``Verdict``: go ahead and take an item, look again at once (an item was
skipped, or a hold ended), or park (another worker is holding). The gates see the queue only through
the work-queue protocol, so lanes bring their own rules (``WorkQueue.gate``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from ._clock import to_seconds
from ._matcher import PatternSet, compile_pattern

if TYPE_CHECKING:
    from ._events import SignalEvent
    from ._queues import Entry, WorkQueue
    from ._sink import SignalSink

__all__ = ("DEFERRAL_EXPIRED", "Deferral", "Gates", "Verdict", "drain_requested")

#: Emitted (key: the defer signal still live) when a deferral's hold runs out and work goes ahead anyway.
DEFERRAL_EXPIRED = "deferral.expired"


class Verdict(enum.Enum):
    """What a worker does after the gates."""

    #: Take the next item (the queue decides which may start).
    PROCEED = "proceed"
    #: Look at the gates again at once: an item was skipped, or a hold ended.
    RETRY = "retry"
    #: Park: another worker is holding the work back.
    PARK = "park"


IN_PROGRESS, DONE = ".in-progress", ".done"


def implied_resume_patterns(defer_on: Iterable[str]) -> list[str]:
    """The resume signals a defer pattern names by itself: ``X.in-progress`` is ended by ``X.done``.

    Used when no ``resume_on_signals`` is given, so the original's manual form (defer on
    ``update.in-progress``, then ``update.done`` resumes the readers) works as written.
    """
    return [pattern[: -len(IN_PROGRESS)] + DONE for pattern in defer_on if pattern.endswith(IN_PROGRESS)]


class Deferral:
    """Holds work back while a defer signal is live, for at most ``attempts x interval`` per episode.

    An episode starts when a defer signal is first seen and ends when none is live, even if no worker
    looked at that moment: when every live defer signal is newer than the previous look, the episode
    it saw ended meanwhile and a new one starts. Once its budget is spent, work flows until the
    episode ends: a lingering signal delays work once, not once per item. Resume signals follow
    "latest wins": a live resume signal newer than the newest live defer signal ends the episode; an
    older one (left from a previous update) does not. Without resume patterns, a defer pattern
    ``X.in-progress`` is resumed by ``X.done`` (see ``implied_resume_patterns``). When an episode's hold runs out,
    ``deferral.expired`` is emitted on the sink (key: the oldest live defer signal), once per episode.
    """

    __slots__ = ("budget", "defer_on", "expired", "interval", "looked", "resume_on", "since")

    def __init__(self, defer_on: PatternSet, resume_on: PatternSet, interval: float, attempts: int) -> None:
        self.defer_on = defer_on
        self.resume_on = resume_on
        self.interval = interval
        self.budget = interval * attempts
        self.since: float | None = None
        #: Whether the current episode's hold ran out (and ``deferral.expired`` was emitted).
        self.expired = False
        #: When (by the sink's clock) the current episode was last looked at.
        self.looked: datetime | None = None

    @classmethod
    def of(
        cls,
        defer_on: Iterable[str] | str | None,
        resume_on: Iterable[str] | str | None,
        interval: float | timedelta,
        attempts: int,
    ) -> Deferral | None:
        """A deferral for these settings, or None when they defer nothing."""
        patterns = PatternSet(defer_on)
        if not patterns or attempts <= 0:
            return None
        if resume_on is None:
            resume_on = implied_resume_patterns(patterns.patterns)
        return cls(patterns, PatternSet(resume_on), to_seconds(interval, "defer_check_interval"), attempts)

    def active(self, sink: SignalSink, now: float) -> bool:
        """Whether work is held back now."""
        if not sink.detect(self.defer_on):
            self.since = None
            return False
        live: list[SignalEvent[Any]] | None = None
        if self.resume_on and sink.detect(self.resume_on):
            resume = sink.sense(self.resume_on)
            live = sink.sense(self.defer_on)
            if not live or (resume and max(map(_order, resume)) > max(map(_order, live))):
                self.since = None  # latest wins: a resume signal newer than every live defer signal
                return False
        looked, self.looked = self.looked, sink.now()
        if self.since is not None and looked is not None:
            if live is None:
                live = sink.sense(self.defer_on)
            if all(event.timestamp > looked for event in live):
                self.since = None  # every defer signal seen at the last look went meanwhile
        if self.since is None:
            self.since = now
            self.expired = False
        if now - self.since < self.budget:
            return True
        if not self.expired:
            self.expired = True
            if live is None:
                live = sink.sense(self.defer_on)
            if live:
                sink.emit(DEFERRAL_EXPIRED, key=min(live, key=_order).signal)
        return False


def _order(event: SignalEvent[Any]) -> tuple[datetime, int]:
    """When a signal was emitted (its id breaks ties at the same instant)."""
    return (event.timestamp, event.operation_id)


class Gates:
    """Cancel signals skip the item at the front; a deferral holds work back (one worker waits, the rest park).

    Args:
        cancel_on: While a matching signal is live, the item that would start next is skipped.
        deferral: While it is active, no item starts (for at most its budget per episode).
        queue: The queue the workers take from (its own rules, ``gate``, are checked last).
        skip: Called with each item skipped, and whether it was taken (True) or removed by the queue's rules.
        wake: Called when a hold ends, to wake the parked workers.
    """

    __slots__ = ("active", "cancel_on", "deferral", "holding", "queue", "skip", "wake")

    def __init__(
        self,
        cancel_on: PatternSet,
        deferral: Deferral | None,
        queue: WorkQueue,
        skip: Callable[[Entry, bool], None],
        wake: Callable[[], None],
    ) -> None:
        self.cancel_on = cancel_on
        self.deferral = deferral
        self.queue = queue
        self.skip = skip
        self.wake = wake
        self.holding = False
        #: Whether there is anything to check (otherwise workers skip the gates entirely).
        self.active = bool(cancel_on) or deferral is not None or queue.gated

    async def check(self, sink: SignalSink, now: Callable[[], float]) -> Verdict:
        """The verdict for a worker about to take an item."""
        queue = self.queue
        if not len(queue):
            return Verdict.PROCEED
        if self.cancel_on and sink.detect(self.cancel_on):
            entry = queue.take()
            if entry is None:
                return Verdict.PROCEED  # nothing may start now (a busy key, a full lane): park until one may
            self.skip(entry, True)
            return Verdict.RETRY
        if self.deferral is not None and self.deferral.active(sink, now()):
            return await self.hold(self.deferral.interval)
        if queue.gated:
            skipped, hold = queue.gate(sink, now())
            for entry in skipped:
                self.skip(entry, False)
            if hold is not None:
                return await self.hold(hold)
        return Verdict.PROCEED

    async def hold(self, interval: float) -> Verdict:
        """Work is deferred: one worker waits ``interval`` and looks again, the others park."""
        if self.holding:
            return Verdict.PARK
        self.holding = True
        try:
            await anyio.sleep(interval)
        finally:
            self.holding = False
        self.wake()
        return Verdict.RETRY


def drain_requested(event: SignalEvent[Any], drain_on: PatternSet, name: str | None) -> bool:
    """Whether ``event`` asks the coordinator named ``name`` to drain (``drain_on_signals``).

    ``coordinator.drain.id`` reaches only the coordinator whose ``coordinator_id`` is its key, and
    ``coordinator.drain.pattern`` only those whose ``coordinator_id`` matches its key as a glob.
    """
    if not drain_on.matches(event.signal):
        return False
    if event.signal == "coordinator.drain.id":
        return name is not None and event.key == name
    if event.signal == "coordinator.drain.pattern":
        return name is not None and event.key is not None and compile_pattern(event.key).matches(name)
    return True
