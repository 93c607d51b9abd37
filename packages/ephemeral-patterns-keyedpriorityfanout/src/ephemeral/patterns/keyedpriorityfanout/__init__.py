"""Keyed priority fan-out: per-key order with a priority lane that jumps its own key's queue.

``KeyedPriorityFanOut(key_selector=..., body=..., max_concurrency=32, per_key_concurrency=1,
max_priority_depth=100)``: ``enqueue(item)`` queues in the normal lane, ``await enqueue_priority(item)``
in the priority lane (False once ``max_priority_depth`` priority items wait); the next item of a key is its
oldest priority item, else its oldest normal one. ``pending_counts`` is ``PendingCounts(priority, normal)``.
"""

from __future__ import annotations

from ._keyedpriorityfanout import KeyedPriorityFanOut as KeyedPriorityFanOut, PendingCounts as PendingCounts

__all__ = ("KeyedPriorityFanOut", "PendingCounts")
