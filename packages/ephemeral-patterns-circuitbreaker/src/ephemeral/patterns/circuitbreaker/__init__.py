"""A stateless circuit breaker that reads failure signals from ephemeral's signal window.

``SignalBasedCircuitBreaker(failure_signal="api.failure", threshold=5, window_size=30)`` is open while
``threshold`` failures are younger than ``window_size`` in a coordinator's (or a sink's) signals;
``CircuitOpenException(message, retry_after)`` is what callers raise (or ``guard`` raises) meanwhile.
"""

from __future__ import annotations

from ._circuitbreaker import (
    CircuitOpenException as CircuitOpenException,
    SignalBasedCircuitBreaker as SignalBasedCircuitBreaker,
    SignalHistory as SignalHistory,
)

__all__ = ("CircuitOpenException", "SignalBasedCircuitBreaker", "SignalHistory")
