"""A signal sink whose signals carry a typed payload."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from ._clock import utc_now
from ._events import SignalEvent, SignalPropagation
from ._hooks import Subscription
from ._sink import SignalFilter, SignalSink, next_id

__all__ = ("TypedSignalSink",)

P = TypeVar("P")


class TypedSignalSink(Generic[P]):
    """Signals with a payload of type ``P``, kept in their own bounded window.

    Each typed signal is also forwarded, without its payload, to the untyped sink (``untyped``), so
    pattern watchers, coordinators and jobs on that sink react to it as to any other signal.

    Args:
        inner: The untyped sink to forward to; a new one is made when None.
        max_capacity: The most typed signals kept.
        max_age: How long a typed signal stays visible.
        clock: A monotonic clock in seconds (as for ``SignalSink``).
        now: The wall-clock source for timestamps.
    """

    def __init__(
        self,
        inner: SignalSink | None = None,
        max_capacity: int = 512,
        max_age: float | timedelta = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if inner is not None and not isinstance(inner, SignalSink):
            raise TypeError(f"inner must be a SignalSink, got {inner!r}")
        self.untyped = inner if inner is not None else SignalSink(clock=clock, now=now)
        self._window = SignalSink(max_capacity, max_age, clock=clock, now=now)

    def emit(
        self,
        signal: str,
        payload: P,
        key: str | None = None,
        *,
        propagation: SignalPropagation | None = None,
        operation_id: int | None = None,
    ) -> SignalEvent[P]:
        """Emit ``signal`` with ``payload``; return the stored event."""
        event: SignalEvent[P] = SignalEvent(
            signal, next_id() if operation_id is None else operation_id, key, self._window.now(), propagation, payload
        )
        self.emit_event(event)
        return event

    def emit_event(self, event: SignalEvent[P]) -> None:
        """Store a ready event, tell typed subscribers, and forward it without payload."""
        self._window.emit(event)
        self.untyped.emit(event.without_payload())

    def sense(self, selector: SignalFilter = None) -> list[SignalEvent[P]]:
        """The live typed signals, oldest first, optionally only those matching ``selector``."""
        return self._window.sense(selector)

    def subscribe(self, handler: Callable[[SignalEvent[P]], object]) -> Subscription:
        """Call ``handler(event)`` for every typed signal from now on (payload included)."""
        return self._window.subscribe(handler)

    def detect(self, selector: SignalFilter) -> bool:
        """Whether any live typed signal matches ``selector``."""
        return self._window.detect(selector)

    def now(self) -> datetime:
        """The current time by this sink's clock."""
        return self._window.now()

    def __len__(self) -> int:
        return len(self._window)
