"""Per-key sequential processing with optional fair scheduling, on ephemeral-core."""

from __future__ import annotations

from ._keyedsequential import KeyedSequentialAtom as KeyedSequentialAtom

__all__ = ("KeyedSequentialAtom",)
