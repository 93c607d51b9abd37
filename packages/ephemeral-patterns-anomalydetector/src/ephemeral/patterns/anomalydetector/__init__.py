"""Moving-window anomaly detection: too many signals matching a glob in the recent signal window.

``SignalAnomalyDetector(sink, pattern="error.*", threshold=5, window=10)`` reads the sink's window
each time it is asked (``is_anomalous()``, ``get_match_count()``): it keeps no state and runs no timer.
"""

from __future__ import annotations

from ._anomalydetector import SignalAnomalyDetector as SignalAnomalyDetector

__all__ = ("SignalAnomalyDetector",)
