"""A fixed-concurrency worker pool with stats, on ephemeral-core."""

from __future__ import annotations

from ._fixedwork import FixedWorkAtom as FixedWorkAtom

__all__ = ("FixedWorkAtom",)
