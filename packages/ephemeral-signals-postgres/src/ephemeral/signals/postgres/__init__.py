"""One signal window across processes and machines, through PostgreSQL.

``PostgresSignalBridge(sink, conninfo)`` writes the signals emitted on ``sink`` to a table, announces
them with NOTIFY, and adds the signals every other process wrote to ``sink`` (with their original
timestamps), so circuit breakers, defer rules and detectors on every process read the fleet's window.
"""

from __future__ import annotations

from ._bridge import BridgeStats as BridgeStats, PostgresSignalBridge as PostgresSignalBridge

__all__ = ("BridgeStats", "PostgresSignalBridge")
