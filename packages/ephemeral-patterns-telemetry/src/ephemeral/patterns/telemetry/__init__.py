"""Ephemeral signals to telemetry: a bounded async handler, an in-memory client and OpenTelemetry.

``async with TelemetrySignalHandler(client) as handler:`` queues every signal given to
``handler.on_signal(event)`` (wire it as a coordinator's ``on_signal``) and sends it to ``client`` off the
emitting path: an ``EphemeralSignal`` event for every signal, an exception for ``error.*`` and a metric for
``perf.*``. ``InMemoryTelemetryClient`` records them for tests; ``OpenTelemetryClient`` exports them.
"""

from __future__ import annotations

from ._client import (
    InMemoryTelemetryClient as InMemoryTelemetryClient,
    ITelemetryClient as ITelemetryClient,
    TelemetryClient as TelemetryClient,
    TelemetryEvent as TelemetryEvent,
    TelemetryEventType as TelemetryEventType,
    parse_metric as parse_metric,
)
from ._handler import TelemetrySignalHandler as TelemetrySignalHandler
from ._otel import OpenTelemetryClient as OpenTelemetryClient

__all__ = (
    "ITelemetryClient",
    "InMemoryTelemetryClient",
    "OpenTelemetryClient",
    "TelemetryClient",
    "TelemetryEvent",
    "TelemetryEventType",
    "TelemetrySignalHandler",
    "parse_metric",
)
