"""Numbers over time: decaying reputation scores, and statistics over the numbers recent signals carry."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

from ._bounded import BoundedMap
from ._checks import check_float, check_int
from ._clock import to_seconds
from ._events import SignalEvent
from ._sink import SignalSink
from ._typed import TypedSignalSink

__all__ = (
    "DecayingReputationWindow",
    "SignalAggregate",
    "SignalAggregationWindow",
    "signal_base_name",
    "signal_value",
)

K = TypeVar("K", bound=Hashable)

#: A signal's number for one statistic: ``selector(event) -> float | None`` (None skips the signal).
ValueSelector = Callable[[SignalEvent[Any]], "float | None"]


# ---------------------------------------------------------------------------------------- reputation


class DecayingReputationWindow(Generic[K]):
    """Scores per key that decay exponentially, halving every ``half_life``, for a bounded set of keys.

    ``update(key, delta)`` adds ``delta`` to the decayed score and returns the new score. Beyond
    ``max_keys`` keys, the least recently updated one is forgotten. Safe to use from any thread.

    Args:
        half_life: How long a score takes to halve, as seconds or a timedelta.
        max_keys: The most keys remembered.
        clock: A monotonic clock in seconds (default ``time.monotonic``; pass ``anyio.current_time``
            to follow the event loop's, possibly virtual, clock from inside the loop).
        sink: Where ``reputation.update:{key}:{score:.2f}`` and ``reputation.invalidate:{key}`` (key:
            the key as text) are emitted, if anywhere.

    Raises:
        ValueError: ``half_life`` <= 0 or ``max_keys`` < 1.
    """

    def __init__(
        self,
        half_life: float | timedelta,
        *,
        max_keys: int = 1024,
        clock: Callable[[], float] | None = None,
        sink: SignalSink | None = None,
    ) -> None:
        self._decay = math.log(2) / to_seconds(half_life, "half_life")
        self._max_keys = check_int(max_keys, "max_keys")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, got {clock!r}")
        self._clock = clock if clock is not None else time.monotonic
        self._sink = sink
        self._scores: BoundedMap[K, tuple[float, float]] = BoundedMap(self._max_keys)  # key -> (score, when)
        self._lock = threading.Lock()

    def _decayed(self, entry: tuple[float, float], now: float) -> float:
        score, when = entry
        return score * math.exp(-self._decay * max(0.0, now - when))

    def update(self, key: K, delta: float) -> float:
        """Add ``delta`` to ``key``'s decayed score; return the new score."""
        check_float(delta, "delta")
        with self._lock:
            now = self._clock()
            entry = self._scores.get(key)
            score = (0.0 if entry is None else self._decayed(entry, now)) + delta
            self._scores.put(key, (score, now))  # the least recently updated beyond max_keys are forgotten
        if self._sink is not None:
            self._sink.emit(f"reputation.update:{key}:{score:.2f}", key=str(key))
        return score

    def get_score(self, key: K) -> float:
        """``key``'s score decayed to now; 0.0 for an unknown key."""
        with self._lock:
            entry = self._scores.get(key)
            return 0.0 if entry is None else self._decayed(entry, self._clock())

    def get_scores(self) -> dict[K, float]:
        """Every remembered key's decayed score, least recently updated first."""
        with self._lock:
            now = self._clock()
            return {key: self._decayed(entry, now) for key, entry in self._scores.items()}

    def invalidate(self, key: K) -> bool:
        """Forget ``key``; False when it was not remembered."""
        with self._lock:
            found = self._scores.pop(key, None) is not None
        if found and self._sink is not None:
            self._sink.emit(f"reputation.invalidate:{key}", key=str(key))
        return found

    @property
    def max_keys(self) -> int:
        """The most keys remembered."""
        return self._max_keys

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, key: object) -> bool:
        return key in self._scores


# --------------------------------------------------------------------------------------- aggregation


def signal_value(event: SignalEvent[Any]) -> float | None:
    """The number a signal carries: a numeric payload, else the text after the last ``=`` of its name.

    ``score.ua=0.5`` carries 0.5; a signal with neither carries None.
    """
    payload = event.payload
    if isinstance(payload, (int, float)) and not isinstance(payload, bool):
        return float(payload)
    name, sep, text = event.signal.rpartition("=")
    if not sep or not name:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def signal_base_name(event: SignalEvent[Any]) -> str:
    """A signal's name without its ``=value`` part: ``score.ua=0.5`` -> ``score.ua``."""
    name, sep, _ = event.signal.rpartition("=")
    return name if sep and name else event.signal


@dataclass(frozen=True)
class SignalAggregate:
    """Numbers carried by a group of signals.

    It is also the sequence of those signals (``len(group)``, ``for event in group``), as the
    original's groups were.

    Attributes:
        count: How many signals matched (with or without a number).
        values: The numbers they carried, oldest first.
        events: The signals, oldest first.
    """

    count: int
    values: tuple[float, ...]
    events: tuple[SignalEvent[Any], ...] = ()

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[SignalEvent[Any]]:
        return iter(self.events)

    @property
    def sum(self) -> float:
        """The sum of the values (0.0 when none)."""
        return math.fsum(self.values)

    @property
    def average(self) -> float:
        """The mean of the values (0.0 when none)."""
        return self.sum / len(self.values) if self.values else 0.0

    @property
    def min(self) -> float | None:
        """The smallest value, or None when none."""
        return min(self.values, default=None)

    @property
    def max(self) -> float | None:
        """The largest value, or None when none."""
        return max(self.values, default=None)


class SignalAggregationWindow:
    """Statistics over the numbers carried by recent signals (``score.ua=0.5``, or a typed payload).

    Every query reads the sink's window at that moment, keeping the signals emitted within the last
    ``window`` (by the sink's clock; a window longer than the sink's ``max_age`` sees ``max_age``).
    Nothing is copied or kept here.

    Args:
        sink: A ``SignalSink``, or a ``TypedSignalSink`` whose payloads are numbers.
        window: How far back queries look, as seconds or a timedelta.
        value: Extracts the number from a signal (default: ``signal_value``); None skips the signal.
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any],
        window: float | timedelta = 300.0,
        *,
        value: Callable[[SignalEvent[Any]], float | None] | None = None,
    ) -> None:
        if not isinstance(sink, (SignalSink, TypedSignalSink)):
            raise TypeError(f"sink must be a SignalSink or a TypedSignalSink, got {sink!r}")
        if value is not None and not callable(value):
            raise TypeError(f"value must be callable, got {value!r}")
        self._sink = sink
        self._window = to_seconds(window, "window")
        self._value = value if value is not None else signal_value

    @property
    def window(self) -> float:
        """How far back queries look, in seconds."""
        return self._window

    def query(self, pattern: str | None = None, *, window: float | timedelta | None = None) -> list[SignalEvent[Any]]:
        """The signals matching the glob ``pattern`` (all when None) within the window, oldest first."""
        seconds = self._window if window is None else to_seconds(window, "window")
        sink = self._sink
        if isinstance(sink, SignalSink):
            return sink.sense(pattern, within=seconds)
        cutoff = sink.now() - timedelta(seconds=seconds)
        return [event for event in sink.sense(pattern) if event.timestamp >= cutoff]

    def _split(self, selector: object, pattern: object) -> tuple[ValueSelector, str | None]:
        """``(selector, pattern)`` (the original's order) or ``(pattern,)`` as (value extractor, pattern)."""
        if callable(selector):
            value = cast(ValueSelector, selector)
        elif pattern is not None:
            raise TypeError(f"selector must be callable when a pattern follows it, got {selector!r}")
        else:
            value, pattern = self._value, selector
        if pattern is not None and not isinstance(pattern, str):
            raise TypeError(f"pattern must be a glob str or None, got {pattern!r}")
        return value, pattern

    def _aggregate(self, events: Iterable[SignalEvent[Any]], value: ValueSelector) -> SignalAggregate:
        events = tuple(events)
        values = (value(event) for event in events)
        return SignalAggregate(len(events), tuple(float(v) for v in values if v is not None), events)

    def aggregate(
        self,
        selector: ValueSelector | str | None = None,
        pattern: str | None = None,
        *,
        window: float | timedelta | None = None,
    ) -> SignalAggregate:
        """Count, values, sum, average, min and max of the matching signals, at once.

        Every statistic is called as ``stat(pattern)`` (numbers from the window's ``value`` extractor)
        or, as in the original, ``stat(selector, pattern)`` with ``selector(event) -> float | None``
        choosing the number for this call; ``window=`` overrides the window.
        """
        value, pattern = self._split(selector, pattern)
        return self._aggregate(self.query(pattern, window=window), value)

    def count(self, pattern: str | None = None, *, window: float | timedelta | None = None) -> int:
        """How many signals match (with or without a number)."""
        return len(self.query(pattern, window=window))

    def sum(
        self,
        selector: ValueSelector | str | None = None,
        pattern: str | None = None,
        *,
        window: float | timedelta | None = None,
    ) -> float:
        """The sum of the matching signals' numbers (0.0 when none): ``sum(pattern)`` or ``sum(selector, pattern)``."""
        return self.aggregate(selector, pattern, window=window).sum

    def average(
        self,
        selector: ValueSelector | str | None = None,
        pattern: str | None = None,
        *,
        window: float | timedelta | None = None,
    ) -> float:
        """The mean of the matching signals' numbers (0.0 when none); called like ``sum``."""
        return self.aggregate(selector, pattern, window=window).average

    def min(
        self,
        selector: ValueSelector | str | None = None,
        pattern: str | None = None,
        *,
        window: float | timedelta | None = None,
    ) -> float | None:
        """The smallest number among the matching signals, or None when none; called like ``sum``."""
        return self.aggregate(selector, pattern, window=window).min

    def max(
        self,
        selector: ValueSelector | str | None = None,
        pattern: str | None = None,
        *,
        window: float | timedelta | None = None,
    ) -> float | None:
        """The largest number among the matching signals, or None when none; called like ``sum``."""
        return self.aggregate(selector, pattern, window=window).max

    def group_by(
        self,
        key_selector: Callable[[SignalEvent[Any]], str] | str | None = None,
        pattern: str | Callable[[SignalEvent[Any]], str] | None = None,
        *,
        key: Callable[[SignalEvent[Any]], str] | None = None,
        window: float | timedelta | None = None,
    ) -> dict[str, SignalAggregate]:
        """Aggregates per group (each also a sequence of its signals), groups in order of first appearance.

        Called as ``group_by(pattern, key=...)`` or, as in the original, ``group_by(key_selector, pattern)``.

        Args:
            key_selector: The group of a signal (the original's first argument), or the pattern.
            pattern: A glob on the signal name (all signals when None).
            key: The group of a signal (default: its name without the ``=value`` part, so
                ``score.ua=0.5`` and ``score.ua=0.6`` form the group ``score.ua``).
            window: Overrides the window for this query.
        """
        if callable(key_selector):
            if key is not None:
                raise TypeError("give the key selector once: first argument or key=, not both")
            key = key_selector
        elif callable(pattern) and key is None:  # group_by(pattern, key) positionally
            key, pattern = pattern, key_selector
        elif pattern is not None:
            raise TypeError(f"key_selector must be callable when a pattern follows it, got {key_selector!r}")
        else:
            pattern = key_selector
        if pattern is not None and not isinstance(pattern, str):
            raise TypeError(f"pattern must be a glob str or None, got {pattern!r}")
        group_of = key if key is not None else signal_base_name
        groups: dict[str, list[SignalEvent[Any]]] = {}
        for event in self.query(pattern, window=window):
            groups.setdefault(group_of(event), []).append(event)
        return {name: self._aggregate(events, self._value) for name, events in groups.items()}
