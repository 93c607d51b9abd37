"""Controlled fan-out: a global concurrency limit and a per-key limit, without head-of-line blocking.

``ControlledFanOut(key_selector=..., body=..., max_global_concurrency=100, per_key_concurrency=5)`` runs at
most 100 bodies at once and at most 5 of one key; a key at its limit never holds up the others, and with
``per_key_concurrency=1`` each key's items run one at a time in enqueue order.
"""

from __future__ import annotations

from ._controlledfanout import ControlledFanOut as ControlledFanOut

__all__ = ("ControlledFanOut",)
