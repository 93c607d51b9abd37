"""A telemetry client exporting signals to OpenTelemetry: span events, exception events, histograms."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

from opentelemetry import metrics, trace
from opentelemetry.metrics import Histogram, MeterProvider
from opentelemetry.trace import Span, TracerProvider

__all__ = ("OpenTelemetryClient",)

#: The instrumentation scope the tracer and meter are named after.
SCOPE = "ephemeral.patterns.telemetry"
#: The span started for a signal emitted where no span is recording.
SIGNAL_SPAN = "ephemeral.signal"


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")


def _instrument_name(metric: str) -> str:
    """``metric`` as an OpenTelemetry instrument name: a letter, then letters, digits and ``_.-/`` (255 at most)."""
    name = _NOT_IN_NAME.sub("_", metric)
    if not name[:1].isalpha() or not name[:1].isascii():
        name = "m_" + name
    return name[:255]


def _attributes(properties: Mapping[str, str]) -> dict[str, str]:
    """Signal properties as OpenTelemetry attributes, namespaced ``ephemeral.signal.*``."""
    return {f"ephemeral.signal.{name}": value for name, value in properties.items()}


class OpenTelemetryClient:
    """Exports what ``TelemetrySignalHandler`` sends to the OpenTelemetry API.

    - Every signal becomes a span event named after the signal, with the attributes
      ``ephemeral.signal.signal``, ``.operation_id``, ``.key`` and ``.depth``, on the span that was current
      when the signal was handed to the handler (the emitting operation's span); when no span was
      recording there, on a span of its own named ``ephemeral.signal``.
    - ``error.*`` signals also become an ``exception`` span event following the OpenTelemetry semantic
      conventions for exceptions: ``exception.type`` is the signal's name, ``exception.message`` says
      which signal and key. The span's status is left alone (the signal reports, it does not fail the
      span).
    - ``perf.*`` signals also record their value in a histogram named after the metric
      (``perf.db.query:12.5ms`` records 12.5 in ``perf.db.query``, unit ``ms``), one histogram per
      name, with no attributes, so operation ids and keys never multiply the metric's series. Characters
      an instrument name may not hold (anything but letters, digits and ``_.-/``) become ``_``
      (``perf.label:fast`` counts in ``perf.label_fast``), and names are cut at 255 characters.

    Args:
        tracer_provider: Where spans go; None uses the global one (``opentelemetry.trace``).
        meter_provider: Where metrics go; None uses the global one (``opentelemetry.metrics``).
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
    ) -> None:
        if tracer_provider is not None and not hasattr(tracer_provider, "get_tracer"):
            raise TypeError(f"tracer_provider must be an OpenTelemetry TracerProvider, got {tracer_provider!r}")
        if meter_provider is not None and not hasattr(meter_provider, "get_meter"):
            raise TypeError(f"meter_provider must be an OpenTelemetry MeterProvider, got {meter_provider!r}")
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        self._meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE)
        self._histograms: dict[str, Histogram] = {}
        self._lock = threading.Lock()

    def _on_span(self, name: str, attributes: dict[str, str]) -> None:
        span: Span = trace.get_current_span()
        if span.is_recording():
            span.add_event(name, attributes)
            return
        with self._tracer.start_as_current_span(SIGNAL_SPAN, attributes=attributes) as own:
            own.add_event(name, attributes)

    async def track_event(self, name: str, properties: Mapping[str, str]) -> None:
        """Add the signal as a span event (named after the signal; ``name`` is ``EphemeralSignal``)."""
        self._on_span(properties.get("signal", name), _attributes(properties))

    async def track_exception(self, name: str, properties: Mapping[str, str]) -> None:
        """Add an ``exception`` span event for an ``error.*`` signal."""
        key = properties.get("key", "none")
        attributes = {
            "exception.type": name,
            "exception.message": f"signal {name}" + (f" (key {key})" if key != "none" else ""),
            **_attributes(properties),
        }
        self._on_span("exception", attributes)

    async def track_metric(self, name: str, value: float, properties: Mapping[str, str]) -> None:
        """Record ``value`` in the histogram named ``name`` (created on first use, unit from the signal)."""
        histogram = self._histograms.get(name)
        if histogram is None:
            with self._lock:
                histogram = self._histograms.get(name)
                if histogram is None:
                    unit = properties.get("unit", "")
                    histogram = self._meter.create_histogram(
                        _instrument_name(name), unit=unit, description=f"ephemeral signal {name}"
                    )
                    self._histograms[name] = histogram
        histogram.record(value)
