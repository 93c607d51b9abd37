"""Causal emission, written once: a signal caused by another, checked against constraints, with its chain.

``SignalSink.emit_caused``, ``EphemeralOperation.emit_caused`` and molecule steps all emit "signal B
because of signal A": B's propagation chain is A's chain (or A alone) plus B, ``SignalConstraints``
may refuse B (too deep, a cycle, after a terminal signal; ``on_blocked`` is told), and a leaf signal
carries no chain. ``caused_event`` builds the event to emit, or returns None when it is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._events import SignalConstraints, SignalEvent, SignalPropagation
from ._hooks import call_isolated

__all__ = ("cause_chain", "caused_event")


def cause_chain(cause: SignalEvent[Any] | SignalPropagation | None) -> SignalPropagation | None:
    """The causal chain a signal caused by ``cause`` extends: the event's chain, or the event alone."""
    if isinstance(cause, SignalEvent):
        return cause.propagation if cause.propagation is not None else SignalPropagation.root(cause.signal)
    return cause


def caused_event(
    signal: str,
    cause: SignalEvent[Any] | SignalPropagation | None,
    *,
    operation_id: int,
    key: str | None,
    timestamp: datetime,
    constraints: SignalConstraints | None = None,
    payload: Any = None,
) -> SignalEvent[Any] | None:
    """The event emitting ``signal`` because of ``cause``, or None when ``constraints`` refuse it.

    Without constraints the event's chain is the cause's chain plus ``signal`` (no chain without a
    cause). With them, a refused emission calls ``constraints.on_blocked(event, reason)`` (isolated:
    its exceptions are logged, not raised) with the event that was not emitted, carrying the cause's chain.

    Args:
        signal: The signal to emit.
        cause: The signal (or chain) that caused it; None for a signal that starts a chain.
        operation_id: The emitted event's operation id.
        key: The emitted event's key.
        timestamp: The emitted event's time.
        constraints: Limits on causal chains (None: unlimited).
        payload: The emitted event's payload.
    """
    chain = cause_chain(cause)
    if constraints is None:
        propagation = chain.extend(signal) if chain is not None else None
    else:
        reason = constraints.should_block(signal, chain)
        if reason is not None:
            if constraints.on_blocked is not None:
                blocked: SignalEvent[Any] = SignalEvent(signal, operation_id, key, timestamp, chain, payload)
                call_isolated(constraints.on_blocked, blocked, reason)
            return None
        propagation = constraints.propagation_for(signal, chain)
    return SignalEvent(signal, operation_id, key, timestamp, propagation, payload)
