"""Dynamic concurrency: load signals double or halve a work coordinator's limit, within bounds.

``DynamicConcurrencyDemo(body, sink, min_concurrency=2, max_concurrency=32)`` starts at ``min_concurrency``;
each ``load.high`` emitted on ``sink`` doubles the limit (up to ``max_concurrency``) and each ``load.low``
halves it (down to ``min_concurrency``). Running work is never cancelled by a scale-down.
"""

from __future__ import annotations

from ._dynamicconcurrency import DynamicConcurrencyDemo as DynamicConcurrencyDemo

__all__ = ("DynamicConcurrencyDemo",)
