"""Orchestration helpers over the signal sink: quorums of signals, contributor tracking, progress."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

import anyio

from ._checks import check_int
from ._clock import to_seconds
from ._events import SignalEvent
from ._loop import LoopBinding
from ._matcher import PatternSet
from ._sink import SignalSink

__all__ = ("ContributorResult", "ContributorTracker", "ProgressSignals", "QuorumResult", "SignalConsensus")

R = TypeVar("R")

#: What makes two matching signals count once towards a quorum (see ``SignalConsensus.wait_for_quorum``).
DistinctBy = Literal["event", "key", "signal"]


def _patterns(name: str, patterns: Iterable[str] | str | None, *, required: bool) -> PatternSet:
    try:
        result = PatternSet(patterns)
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    if required and not result:
        raise ValueError(f"{name} must hold at least one glob pattern, got {patterns!r}")
    return result


def _timeout(value: float | timedelta | None) -> float | None:
    return None if value is None else to_seconds(value, "timeout", allow_zero=True)


# -------------------------------------------------------------------------------------------- quorum


@dataclass(frozen=True)
class QuorumResult:
    """How a wait for a quorum of signals ended.

    Attributes:
        reached: At least ``required`` distinct matching signals were seen.
        timed_out: The timeout passed first.
        count: How many distinct matching signals were seen.
        signals: The signals counted, one per distinct unit, in the order seen.
        cancel_signal: The cancel signal that ended the wait, if one did.
    """

    reached: bool
    timed_out: bool
    count: int
    signals: tuple[SignalEvent[Any], ...]
    cancel_signal: SignalEvent[Any] | None = None


class _Tally:
    """Counts distinct matching signals on the loop until the quorum is reached or a cancel signal is seen."""

    def __init__(self, matches: PatternSet, cancels: PatternSet, required: int, distinct_by: DistinctBy) -> None:
        self.matches = matches
        self.cancels = cancels
        self.required = required
        self.distinct_by = distinct_by
        self.seen: dict[Hashable, SignalEvent[Any]] = {}  # at most ``required`` entries
        self.cancel_signal: SignalEvent[Any] | None = None
        self.finished = anyio.Event()

    def _identity(self, event: SignalEvent[Any]) -> Hashable | None:
        if self.distinct_by == "key":
            return event.key  # None: a signal without a key names no voter
        if self.distinct_by == "signal":
            return event.signal
        return event  # value equality: the same emission seen in the window and live counts once

    def add(self, event: SignalEvent[Any]) -> None:
        if self.finished.is_set():
            return
        if self.cancels.matches(event.signal):
            self.cancel_signal = event
            self.finished.set()
            return
        if not self.matches.matches(event.signal):
            return
        identity = self._identity(event)
        if identity is None or identity in self.seen:
            return
        self.seen[identity] = event
        if len(self.seen) >= self.required:
            self.finished.set()

    def result(self) -> QuorumResult:
        reached = self.cancel_signal is None and len(self.seen) >= self.required
        timed_out = not self.finished.is_set()
        return QuorumResult(reached, timed_out, len(self.seen), tuple(self.seen.values()), self.cancel_signal)


class SignalConsensus:
    """Waiting for several independent signals to agree: ``await SignalConsensus.wait_for_quorum(...)``."""

    @staticmethod
    async def wait_for_quorum(
        sink: SignalSink,
        pattern: Iterable[str] | str,
        required: int,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 (the seed's WaitForQuorum takes one)
        *,
        cancel_on: Iterable[str] | str | None = None,
        distinct_by: DistinctBy = "event",
        include_live: bool = True,
    ) -> QuorumResult:
        """Wait until ``required`` distinct signals matching ``pattern`` have been seen on ``sink``.

        Signals already live in the sink's window count (unless ``include_live`` is False), as do those
        emitted while waiting, on any thread. Each emission counts once even when it is both in the
        window and delivered live. ``distinct_by`` chooses what counts as one vote: ``"event"`` (each
        emission), ``"key"`` (each distinct key; signals without a key do not count) or ``"signal"``
        (each distinct name, so ``vote.a`` emitted twice counts once).

        Args:
            sink: The sink to watch.
            pattern: A glob, comma-separated globs, or several of them.
            required: How many distinct matching signals make the quorum (>= 1).
            timeout: The longest wait, as seconds or a timedelta; None waits for ever.
            cancel_on: Globs whose first match ends the wait unsuccessfully (checked before ``pattern``).
            distinct_by: What counts once: ``"event"``, ``"key"`` or ``"signal"``.
            include_live: Whether signals already in the window count.

        Returns:
            The outcome: reached, timed out, or cancelled (``cancel_signal`` set).

        Raises:
            ValueError: ``required`` < 1, an empty ``pattern``, an unknown ``distinct_by`` or a negative ``timeout``.
        """
        required = check_int(required, "required")
        seconds = _timeout(timeout)
        if distinct_by not in ("event", "key", "signal"):
            raise ValueError(f"distinct_by must be 'event', 'key' or 'signal', got {distinct_by!r}")
        tally = _Tally(
            _patterns("pattern", pattern, required=True),
            _patterns("cancel_on", cancel_on, required=False),
            required,
            distinct_by,
        )
        loop = LoopBinding()

        def on_signal(event: SignalEvent[Any]) -> None:
            loop.call(lambda: tally.add(event))

        with sink.subscribe(on_signal):
            if include_live:
                live = sink.sense(lambda e: tally.matches.matches(e.signal) or tally.cancels.matches(e.signal))
                for event in sorted(live, key=lambda e: not tally.cancels.matches(e.signal)):  # cancels first
                    tally.add(event)
            with anyio.move_on_after(seconds):
                await tally.finished.wait()
        return tally.result()


# -------------------------------------------------------------------------------------- contributors


@dataclass(frozen=True)
class ContributorResult(Generic[R]):
    """Where a ``ContributorTracker`` stood when a wait ended.

    Attributes:
        reached: The wait's goal was met: the quorum (``wait_for_quorum``), or every expected
            contributor completed (``wait_all``). False with ``timed_out`` False means it can no
            longer be met: too many contributors failed.
        timed_out: The timeout passed first.
        completed_count: Contributors that completed.
        failed_count: Contributors that failed.
        pending: Expected contributors that have not reported (0 when the expected set is open).
        results: The result of each completed contributor, in completion order.
        errors: The error (or None) of each failed contributor, in failure order.
    """

    reached: bool
    timed_out: bool
    completed_count: int
    failed_count: int
    pending: int
    results: Mapping[str, R] = field(default_factory=dict)
    errors: Mapping[str, BaseException | None] = field(default_factory=dict)

    @property
    def pending_count(self) -> int:
        """``pending`` under the original's name: expected contributors that have not reported."""
        return self.pending


class ContributorTracker(Generic[R]):
    """Tracks named contributors to one answer (detectors, voters, replicas) and waits for enough of them.

    Each contributor reports once, with ``complete(name, result)`` or ``fail(name, error)``, from any
    thread; a second report of the same name is ignored. Waits (``wait_for_quorum``, ``wait_all``)
    may be repeated, by several tasks at once, and each sees the current state, not a stale one.

    Args:
        expected: The contributors' names; or how many contributors there are (any names accepted, up
            to that many); or None for an open set (then ``wait_all`` is unavailable).
        quorum: The default ``required`` of ``wait_for_quorum`` (default: every expected contributor).
        sink: Where ``contributor.completed:{name}`` and ``contributor.failed:{name}`` (key: the name)
            are emitted, if anywhere.

    Raises:
        ValueError: A blank or duplicate name, ``expected`` < 1, or a ``quorum`` < 1 or above ``expected``.
    """

    def __init__(
        self,
        expected: Iterable[str] | int | None = None,
        quorum: int | None = None,
        *,
        sink: SignalSink | None = None,
    ) -> None:
        self._names: tuple[str, ...] | None = None
        self._expected: int | None = None
        if isinstance(expected, (int, bool)):
            self._expected = check_int(expected, "expected")
        elif expected is not None:
            if isinstance(expected, str):
                raise TypeError("expected must be a collection of names or a count, not a single str")
            names = tuple(expected)
            for name in names:
                if not isinstance(name, str) or not name.strip():
                    raise ValueError(f"expected names must be non-empty strings, got {name!r}")
            if len(set(names)) != len(names):
                raise ValueError(f"expected names must be distinct, got {list(names)!r}")
            if not names:
                raise ValueError("expected must name at least one contributor")
            self._names = names
            self._expected = len(names)
        if quorum is not None:
            quorum = check_int(quorum, "quorum")
            if self._expected is not None and quorum > self._expected:
                raise ValueError(f"quorum must be <= the {self._expected} expected contributors, got {quorum}")
        self.quorum = quorum
        self._sink = sink
        self._lock = threading.Lock()
        self._results: dict[str, R] = {}
        self._errors: dict[str, BaseException | None] = {}
        self._waiters: list[tuple[anyio.Event, LoopBinding]] = []

    # -- reporting ------------------------------------------------------------------------------

    def _accept(self, name: str) -> bool:
        """Whether ``name`` may report now (called under the lock); raises for names outside the set."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if name in self._results or name in self._errors:
            return False
        if self._names is not None and name not in self._names:
            raise ValueError(f"name {name!r} is not an expected contributor (expected: {list(self._names)!r})")
        if self._names is None and self._expected is not None and not self.pending:
            raise ValueError(f"name {name!r} would exceed the {self._expected} expected contributors")
        return True

    def complete(self, name: str, result: R) -> bool:
        """Record that ``name`` contributed ``result``; False when it had already reported.

        Raises:
            ValueError: ``name`` is not an expected contributor.
        """
        with self._lock:
            if not self._accept(name):
                return False
            self._results[name] = result
            waiters, self._waiters = self._waiters, []
        self._changed(waiters, f"contributor.completed:{name}", name)
        return True

    def fail(self, name: str, error: BaseException | None = None) -> bool:
        """Record that ``name`` failed (it never counts towards a quorum); False when it had already reported.

        Raises:
            ValueError: ``name`` is not an expected contributor.
        """
        with self._lock:
            if not self._accept(name):
                return False
            self._errors[name] = error
            waiters, self._waiters = self._waiters, []
        self._changed(waiters, f"contributor.failed:{name}", name)
        return True

    def _changed(self, waiters: list[tuple[anyio.Event, LoopBinding]], signal: str, name: str) -> None:
        if self._sink is not None:
            self._sink.emit(signal, key=name)
        for event, loop in waiters:
            loop.call(event.set)

    # -- state ----------------------------------------------------------------------------------

    @property
    def expected_count(self) -> int | None:
        """How many contributors are expected; None for an open set."""
        return self._expected

    @property
    def completed_count(self) -> int:
        """Contributors that completed."""
        return len(self._results)

    @property
    def failed_count(self) -> int:
        """Contributors that failed."""
        return len(self._errors)

    @property
    def pending(self) -> int:
        """Expected contributors that have not reported yet (0 for an open set)."""
        if self._expected is None:
            return 0
        return self._expected - len(self._results) - len(self._errors)

    @property
    def pending_names(self) -> tuple[str, ...]:
        """The expected names that have not reported yet (empty unless names were given)."""
        with self._lock:
            return tuple(n for n in self._names or () if n not in self._results and n not in self._errors)

    @property
    def quorum_reached(self) -> bool:
        """Whether the default quorum (``quorum``, else every expected contributor) has completed."""
        required = self.quorum if self.quorum is not None else self._expected
        return required is not None and len(self._results) >= required

    def try_get_result(self, name: str) -> tuple[bool, R | None]:
        """``(True, result)`` when ``name`` completed, else ``(False, None)``."""
        with self._lock:
            if name in self._results:
                return True, self._results[name]
            return False, None

    def get_completed_results(self) -> dict[str, R]:
        """The result of each completed contributor, in completion order."""
        with self._lock:
            return dict(self._results)

    def get_errors(self) -> dict[str, BaseException | None]:
        """The error (or None) of each failed contributor, in failure order."""
        with self._lock:
            return dict(self._errors)

    def _snapshot(self, reached: bool, timed_out: bool) -> ContributorResult[R]:
        with self._lock:
            return ContributorResult(
                reached, timed_out, len(self._results), len(self._errors), self.pending, dict(self._results),
                dict(self._errors),
            )  # fmt: skip

    # -- waiting --------------------------------------------------------------------------------

    async def _wait(self, settled: Callable[[], bool], seconds: float | None) -> bool:
        """Wait until ``settled()`` holds; return whether the timeout passed first."""
        loop = LoopBinding()
        with anyio.move_on_after(seconds):
            while True:
                with self._lock:
                    if settled():
                        return False
                    waiter = (anyio.Event(), loop)
                    self._waiters.append(waiter)
                try:
                    await waiter[0].wait()
                finally:
                    with self._lock:
                        if waiter in self._waiters:  # timed out: nothing fired it
                            self._waiters.remove(waiter)
        return True

    async def wait_for_quorum(
        self,
        required: int | None = None,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 (the seed's WaitForQuorum takes one)
    ) -> ContributorResult[R]:
        """Wait until ``required`` contributors completed, the quorum became unreachable, or ``timeout``.

        Returns at once when the quorum is already met. May be called again after a timeout.

        Raises:
            ValueError: ``required`` < 1 or above ``expected_count``; or no ``required``, ``quorum`` or
                ``expected`` to take it from.
        """
        if required is None:
            required = self.quorum if self.quorum is not None else self._expected
            if required is None:
                raise ValueError("required must be given when the tracker has neither quorum nor expected")
        required = check_int(required, "required")
        if self._expected is not None and required > self._expected:
            raise ValueError(f"required must be <= the {self._expected} expected contributors, got {required}")
        seconds = _timeout(timeout)
        expected = self._expected

        def settled() -> bool:
            done = len(self._results)
            return done >= required or (expected is not None and expected - len(self._errors) < required)

        timed_out = await self._wait(settled, seconds)
        return self._snapshot(len(self._results) >= required, timed_out)

    async def wait_all(
        self,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 (mirrors wait_for_quorum)
    ) -> ContributorResult[R]:
        """Wait until every expected contributor reported (completed or failed), or ``timeout``.

        ``reached`` is True when every one of them completed.

        Raises:
            ValueError: The tracker has an open set of contributors (``expected`` was None).
        """
        expected = self._expected
        if expected is None:
            raise ValueError("wait_all needs expected contributors (names or a count); this tracker has none")
        seconds = _timeout(timeout)
        timed_out = await self._wait(lambda: len(self._results) + len(self._errors) >= expected, seconds)
        return self._snapshot(len(self._results) >= expected, timed_out)


# ------------------------------------------------------------------------------------------ progress


class ProgressSignals:
    """Progress reporting as signals: ``progress:{name}:{current}/{total}`` (key: ``name``)."""

    @staticmethod
    def emit(sink: SignalSink, name: str, current: int, total: int, step: int = 1) -> bool:
        """Emit a progress signal when ``current`` is a multiple of ``step`` or has reached ``total``.

        The decision depends on ``current`` alone, so nothing is remembered between calls: for
        ``current`` 1..5 of 5 with ``step=2``, signals are emitted at 2, 4 and 5.

        Returns:
            Whether a signal was emitted.

        Raises:
            ValueError: A blank ``name``, a negative ``current`` or ``total``, or ``step`` < 1.
        """
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        check_int(current, "current", minimum=0)
        check_int(total, "total", minimum=0)
        check_int(step, "step")
        if current >= total or (current > 0 and current % step == 0):
            sink.emit(f"progress:{name}:{current}/{total}", key=name)
            return True
        return False
