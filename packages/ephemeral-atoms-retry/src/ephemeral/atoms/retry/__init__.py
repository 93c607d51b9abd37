"""Retry: a body retried with exponential backoff, jitter and server retry hints, on a work coordinator."""

from __future__ import annotations

from ._retry import ATTEMPT_STATE as ATTEMPT_STATE, RetryAtom as RetryAtom

__version__ = "0.1.0"

__all__ = ("ATTEMPT_STATE", "RetryAtom")
