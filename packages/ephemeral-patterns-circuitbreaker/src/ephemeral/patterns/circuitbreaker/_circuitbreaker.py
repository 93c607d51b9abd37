"""A stateless circuit breaker: open while enough failure signals are in the recent signal window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ephemeral.core import SignalEvent, SignalFilter, SignalSink
from ephemeral.core.lowlevel import AtomBase, check_int, compile_pattern, to_seconds

__all__ = ("CircuitOpenException", "SignalBasedCircuitBreaker", "SignalHistory")


@runtime_checkable
class SignalHistory(Protocol):
    """What the breaker reads from a coordinator: its signals and its clock (every coordinator has both)."""

    def get_signals(self, selector: SignalFilter = None) -> list[SignalEvent[Any]]:
        """The signals held by the operations in the window."""

    def now(self) -> datetime:
        """The current time by the coordinator's clock, as a UTC datetime."""


#: Where the breaker looks: a coordinator (its operations' signals), an atom (its coordinator's), or a sink
#: (its own signals and those of every coordinator sharing it).
_Source = SignalHistory | AtomBase[Any] | SignalSink


class CircuitOpenException(Exception):
    """Raised when a call is refused because the circuit is open.

    Args:
        message: What happened.
        retry_after: How long until the circuit closes, when known (seconds or a timedelta).

    Attributes:
        retry_after: That duration as a timedelta, or None.
    """

    def __init__(self, message: str = "the circuit is open", retry_after: timedelta | float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after is None or isinstance(retry_after, timedelta):
            self.retry_after = retry_after
        else:
            self.retry_after = timedelta(seconds=to_seconds(retry_after, "retry_after", allow_zero=True))


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not value.strip():
        raise ValueError(f"{name} must not be blank, got {value!r}")
    return value


def _on_name(matches: Callable[[str], bool]) -> Callable[[SignalEvent[Any]], bool]:
    """A predicate on events testing their names."""
    return lambda event: matches(event.signal)


class SignalBasedCircuitBreaker:
    """A circuit breaker that keeps no state: it counts failure signals in the recent signal window.

    The circuit is open while at least ``threshold`` signals named ``failure_signal`` are younger than
    ``window_size`` (a failure emitted at ``t`` counts until just before ``t + window_size``, by the
    clock of what is read). Nothing is recorded between calls, so one breaker serves any number of
    coordinators, is safe from any task or thread, and closes by itself as failures age out: the first
    call after that goes through, and the circuit opens again as soon as ``threshold`` failures are
    back in the window.

    Each method takes where to look:

    - a coordinator (or an atom wrapping one): the signals its operations emitted
      (``current_operation().emit("api.failure")`` in the body), by the coordinator's clock. Only
      operations still in its window count, so keep ``max_tracked_operations`` and
      ``max_operation_lifetime`` large enough to cover ``window_size``.
    - a ``SignalSink``: the signals emitted on it and those of every coordinator sharing it
      (``sense(within=window_size)``), by the sink's clock; never more than the sink's ``max_age``.

    Args:
        failure_signal: The exact signal name that counts as a failure.
        threshold: How many failures in the window open the circuit.
        window_size: How far back failures count, as seconds or a timedelta.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``failure_signal`` is blank, ``threshold`` is below 1 or ``window_size`` is not positive.

    Example:
        >>> breaker = SignalBasedCircuitBreaker(failure_signal="api.failure", threshold=5, window_size=30)
        >>> if breaker.is_open(coordinator):
        ...     raise CircuitOpenException("Too many failures", breaker.get_time_until_close(coordinator))
    """

    __slots__ = ("_failure_signal", "_threshold", "_window", "_window_seconds")

    def __init__(
        self,
        failure_signal: str = "failure",
        threshold: int = 5,
        window_size: float | timedelta = timedelta(seconds=30),
    ) -> None:
        self._failure_signal = _text("failure_signal", failure_signal)
        self._threshold = check_int(threshold, "threshold")
        self._window_seconds = to_seconds(window_size, "window_size")
        self._window = timedelta(seconds=self._window_seconds)

    @property
    def failure_signal(self) -> str:
        """The signal name that counts as a failure."""
        return self._failure_signal

    @property
    def threshold(self) -> int:
        """How many failures in the window open the circuit."""
        return self._threshold

    @property
    def window_size(self) -> timedelta:
        """How far back failures count."""
        return self._window

    # -- reading the window -------------------------------------------------------------------------

    def _failures(self, source: _Source, pattern: str | None) -> tuple[list[datetime], datetime]:
        """The timestamps of the failures in the window, oldest first, and the current time."""
        if pattern is None:
            name = self._failure_signal
            # An exact name, even if it holds wildcard characters; a glob without them compares exactly.
            glob = None if "*" in name or "?" in name else compile_pattern(name)
            matches: Callable[[str], bool] = glob.matches if glob is not None else name.__eq__
        else:
            glob = compile_pattern(_text("pattern", pattern))
            matches = glob.matches
        if isinstance(source, SignalSink):
            now = source.now()
            events = source.sense(glob if glob is not None else _on_name(matches), within=self._window_seconds)
        else:
            if isinstance(source, AtomBase):
                source = source.coordinator
            if not isinstance(source, SignalHistory):
                raise TypeError(f"coordinator must be a coordinator, an atom or a SignalSink, got {source!r}")
            now = source.now()
            events = source.get_signals(_on_name(matches))
        since = now - self._window
        return sorted(event.timestamp for event in events if event.timestamp > since), now

    def get_failure_count(self, coordinator: _Source, pattern: str | None = None) -> int:
        """How many failures are in the window (signals named ``failure_signal``, or matching the glob ``pattern``)."""
        return len(self._failures(coordinator, pattern)[0])

    def is_open(self, coordinator: _Source) -> bool:
        """Whether at least ``threshold`` ``failure_signal`` signals are in the window."""
        return self.get_failure_count(coordinator) >= self._threshold

    def is_open_matching(self, coordinator: _Source, pattern: str) -> bool:
        """Whether at least ``threshold`` signals matching the glob ``pattern`` (``"error.*"``) are in the window."""
        return self.get_failure_count(coordinator, _text("pattern", pattern)) >= self._threshold

    def get_time_until_close(self, coordinator: _Source, pattern: str | None = None) -> timedelta:
        """How long until the circuit closes if no further failure arrives; zero when it is closed.

        That is when the failure that keeps the count at ``threshold`` leaves the window: the
        ``threshold``-th newest one, ``window_size`` after it was emitted.
        """
        return self._until_close(*self._failures(coordinator, pattern))

    def _until_close(self, failures: list[datetime], now: datetime) -> timedelta:
        if len(failures) < self._threshold:
            return timedelta(0)
        return max(failures[len(failures) - self._threshold] + self._window - now, timedelta(0))

    def guard(self, coordinator: _Source, pattern: str | None = None) -> None:
        """Raise ``CircuitOpenException`` (with ``retry_after``) when the circuit is open; return otherwise.

        Raises:
            CircuitOpenException: ``threshold`` or more failures are in the window.
        """
        failures, now = self._failures(coordinator, pattern)
        if len(failures) < self._threshold:
            return
        retry_after = self._until_close(failures, now)
        what = self._failure_signal if pattern is None else pattern
        raise CircuitOpenException(
            f"circuit open: {len(failures)} {what!r} failures in the last {self._window_seconds:g}s "
            f"(threshold {self._threshold}); retry after {retry_after.total_seconds():g}s",
            retry_after,
        )

    def __repr__(self) -> str:
        return (
            f"SignalBasedCircuitBreaker(failure_signal={self._failure_signal!r}, threshold={self._threshold}, "
            f"window_size={self._window_seconds:g})"
        )
