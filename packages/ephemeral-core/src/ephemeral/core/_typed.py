"""A signal sink whose signals carry a typed payload."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

from ._clock import utc_now
from ._events import SignalEvent, SignalPropagation
from ._hooks import Subscription
from ._sink import SignalFilter, SignalSink

__all__ = ("SignalKey", "TypedSignalSink")

P = TypeVar("P")
_MISSING: Any = object()


class SignalKey(str, Generic[P]):
    """A signal name bound to the type of its payload: ``SignalKey[float]("bot.score")``.

    It is a ``str`` (the name itself), so it goes wherever a signal name does: ``sink.emit(key)``,
    ``sink.sense(key)``, ``sink.detect(key)``, ``str(key)``. On a ``TypedSignalSink[P]`` it emits and
    senses typed signals: ``typed.emit(SCORE, 0.95)``, ``typed.sense(SCORE)`` (exactly that name).

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: ``name`` is empty or holds glob characters (a key names one signal).
    """

    __slots__ = ()

    def __new__(cls, name: str) -> SignalKey[P]:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not name or any(char in name for char in "*?[]"):
            raise ValueError(f"name must be a non-empty signal name without glob characters (*?[]), got {name!r}")
        return super().__new__(cls, name)

    @property
    def name(self) -> str:
        """The signal name, as a plain str."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"SignalKey({str.__repr__(self)})"


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

    @overload
    def emit(self, signal: SignalEvent[P]) -> SignalEvent[P]: ...

    @overload
    def emit(
        self,
        signal: str | SignalKey[P],
        payload: P,
        key: str | None = None,
        *,
        propagation: SignalPropagation | None = None,
        operation_id: int | None = None,
    ) -> SignalEvent[P]: ...

    def emit(
        self,
        signal: str | SignalKey[P] | SignalEvent[P],
        payload: P = _MISSING,
        key: str | None = None,
        *,
        propagation: SignalPropagation | None = None,
        operation_id: int | None = None,
    ) -> SignalEvent[P]:
        """Emit ``signal`` with ``payload`` (or a ready event, as is); return the stored event.

        Args:
            signal: A signal name, a ``SignalKey[P]``, or a ready ``SignalEvent`` (then no other argument
                may be given).
            payload: The payload, required with a name or key.
            key: An optional correlation key.
            propagation: The causal chain, when the signal is caused by another one.
            operation_id: The emitting operation; a fresh id when None.
        """
        if isinstance(signal, SignalEvent):
            if payload is not _MISSING or key is not None or propagation is not None or operation_id is not None:
                raise TypeError("emit(event) takes the ready event alone: its payload, key and ids are its own")
            self.emit_event(signal)
            return signal
        if not isinstance(signal, str):
            raise TypeError(f"signal must be a str, a SignalKey or a SignalEvent, got {signal!r}")
        if payload is _MISSING:
            raise TypeError("emit(signal, payload) needs a payload")
        window = self._window
        event: SignalEvent[P] = window.make_event(
            str.__str__(signal), key, operation_id=operation_id, propagation=propagation, payload=payload
        )
        if operation_id is None:
            window._emit_built(event)
        else:
            window.emit(event)
        self.untyped.emit(event.without_payload())
        return event

    def emit_event(self, event: SignalEvent[P]) -> None:
        """Store a ready event, tell typed subscribers, and forward it without payload."""
        if not isinstance(event, SignalEvent):
            raise TypeError(f"event must be a SignalEvent, got {event!r}")
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
