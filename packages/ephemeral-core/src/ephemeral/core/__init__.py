"""Bounded, observable, self-cleaning async execution with signal-based coordination."""

from __future__ import annotations

__version__ = "0.1.0"
