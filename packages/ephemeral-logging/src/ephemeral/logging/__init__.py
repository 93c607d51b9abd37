"""Bridges between logging and ephemeral's signals, both ways, for stdlib ``logging`` and structlog.

``SignalLoggerProvider(sink)`` is a ``logging.Handler``: each record becomes a
``log.{level}.{category}.{event}`` signal with a ``SignalLogPayload``, so jobs, watchers and
coordinators react to errors as to any other signal. ``SignalToLoggerAdapter(sink, logger)`` logs
signals back into stdlib logging. ``SignalProcessor`` and ``SignalToStructlogAdapter`` do the same
for structlog.
"""

from __future__ import annotations

from ._bridge import (
    LogMessage as LogMessage,
    SignalLoggerProvider as SignalLoggerProvider,
    SignalProcessor as SignalProcessor,
    SignalToLoggerAdapter as SignalToLoggerAdapter,
    SignalToStructlogAdapter as SignalToStructlogAdapter,
)
from ._names import (
    TRACE as TRACE,
    EventId as EventId,
    SignalLogContext as SignalLogContext,
    SignalLogPayload as SignalLogPayload,
    default_signal_name as default_signal_name,
    level_for_signal as level_for_signal,
    level_name as level_name,
    slug as slug,
)

__all__ = (
    "TRACE",
    "EventId",
    "LogMessage",
    "SignalLogContext",
    "SignalLogPayload",
    "SignalLoggerProvider",
    "SignalProcessor",
    "SignalToLoggerAdapter",
    "SignalToStructlogAdapter",
    "default_signal_name",
    "level_for_signal",
    "level_name",
    "slug",
)
