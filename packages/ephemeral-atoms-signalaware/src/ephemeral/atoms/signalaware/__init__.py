"""Refuse or defer work on ambient signals, on ephemeral-core."""

from __future__ import annotations

from ._signalaware import SignalAwareAtom as SignalAwareAtom

__all__ = ("SignalAwareAtom",)
