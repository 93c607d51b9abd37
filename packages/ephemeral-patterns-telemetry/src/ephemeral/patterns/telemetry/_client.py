"""The telemetry client interface, the records it receives, and an in-memory client for tests."""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Mapping
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from ephemeral.core.lowlevel import check_int

__all__ = (
    "ITelemetryClient",
    "InMemoryTelemetryClient",
    "TelemetryClient",
    "TelemetryEvent",
    "TelemetryEventType",
    "parse_metric",
)

#: The kinds of record a client receives.
TelemetryEventType = Literal["event", "exception", "metric"]

_METRIC = re.compile(r"(?P<name>[^:]+):(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?P<unit>[A-Za-z%/_]*)")


def parse_metric(signal: str) -> tuple[str, float, str]:
    """Split a ``perf.*`` signal into its metric name, value and unit.

    ``"perf.db.query:12.5ms"`` gives ``("perf.db.query", 12.5, "ms")``; ``"perf.cache.size:42"`` gives
    ``("perf.cache.size", 42.0, "")``; a signal without a numeric ``:value`` counts once:
    ``"perf.retry"`` gives ``("perf.retry", 1.0, "")``. A value that is not a finite number (``1e400``)
    is no value.
    """
    found = _METRIC.fullmatch(signal)
    if found is None or not math.isfinite(value := float(found["value"])):
        return signal, 1.0, ""
    return found["name"], value, found["unit"]


@runtime_checkable
class TelemetryClient(Protocol):
    """Where ``TelemetrySignalHandler`` sends signals: implement these three for any telemetry backend.

    ``properties`` always holds ``signal`` (the signal's name), ``operation_id``, ``key`` (``"none"``
    when absent) and ``depth`` (the length of its causal chain, 0 for a root signal).
    """

    async def track_event(self, name: str, properties: Mapping[str, str]) -> None:
        """Record that something happened (every signal, as ``EphemeralSignal``)."""

    async def track_exception(self, name: str, properties: Mapping[str, str]) -> None:
        """Record a failure (``error.*`` signals, named by the signal)."""

    async def track_metric(self, name: str, value: float, properties: Mapping[str, str]) -> None:
        """Record a measurement (``perf.*`` signals; see ``parse_metric``)."""


#: The original's name for the client interface.
ITelemetryClient = TelemetryClient


class TelemetryEvent(NamedTuple):
    """One record kept by ``InMemoryTelemetryClient``.

    Attributes:
        name: ``EphemeralSignal`` for events, the signal for exceptions, the metric's name for metrics.
        type: ``"event"``, ``"exception"`` or ``"metric"``.
        properties: The signal's properties; metrics add ``value`` (and ``unit`` when the signal has one).
    """

    name: str
    type: TelemetryEventType
    properties: Mapping[str, str]


class InMemoryTelemetryClient:
    """Keeps the most recent ``max_events`` records in memory, for tests and for looking at what is sent.

    Args:
        max_events: How many records are kept (the oldest go first).
    """

    def __init__(self, max_events: int = 10_000) -> None:
        self._events: deque[TelemetryEvent] = deque(maxlen=check_int(max_events, "max_events"))
        self._lock = threading.Lock()

    def _add(self, event: TelemetryEvent) -> None:
        with self._lock:
            self._events.append(event)

    async def track_event(self, name: str, properties: Mapping[str, str]) -> None:
        """Record an event."""
        self._add(TelemetryEvent(name, "event", dict(properties)))

    async def track_exception(self, name: str, properties: Mapping[str, str]) -> None:
        """Record an exception."""
        self._add(TelemetryEvent(name, "exception", dict(properties)))

    async def track_metric(self, name: str, value: float, properties: Mapping[str, str]) -> None:
        """Record a metric; its value is kept as text in ``properties["value"]``."""
        self._add(TelemetryEvent(name, "metric", {**properties, "value": f"{value:g}"}))

    def get_events(self) -> list[TelemetryEvent]:
        """Every record kept, oldest first."""
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._events.clear()

    def __len__(self) -> int:
        return len(self._events)
