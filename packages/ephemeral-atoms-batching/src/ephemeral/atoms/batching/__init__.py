"""Batching: items grouped into ordered batches, flushed when full or once the first has waited long enough."""

from __future__ import annotations

from ._batching import BatchingAtom as BatchingAtom, BatchingStats as BatchingStats

__version__ = "0.1.0"

__all__ = ("BatchingAtom", "BatchingStats")
