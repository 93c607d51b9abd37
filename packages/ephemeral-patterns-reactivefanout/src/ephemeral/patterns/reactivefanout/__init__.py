"""Reactive fan-out: a two-stage pipeline whose first stage throttles while the second backs up.

``ReactiveFanOutPipeline(stage2_work=..., pre_stage_work=..., backpressure_threshold=32, relief_threshold=8)``:
stage 1 runs ``pre_stage_work`` and hands each item to stage 2; while stage 2 has ``backpressure_threshold``
or more items waiting, stage 1 drops to ``stage1_min_concurrency`` (emitting ``stage2.backpressure``) and
returns to ``stage1_max_concurrency`` once fewer than ``relief_threshold`` wait. Memory stays bounded.
"""

from __future__ import annotations

from ._reactivefanout import (
    ReactiveFanOutMetrics as ReactiveFanOutMetrics,
    ReactiveFanOutPipeline as ReactiveFanOutPipeline,
)

__all__ = ("ReactiveFanOutMetrics", "ReactiveFanOutPipeline")
