"""Hierarchical signal names: ``sink.coordinator.atom.name``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._events import SignalEvent, SignalRetractedEvent
from ._hooks import call_isolated
from ._matcher import compile_pattern
from ._sink import SignalSink

__all__ = ("ScopedSignalEmitter", "ScopedSignalKey", "SignalContext")

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class SignalContext:
    """Where a signal comes from: a sink, a coordinator within it, an atom within that."""

    sink: str
    coordinator: str = WILDCARD
    atom: str = WILDCARD

    WILDCARD = WILDCARD

    @classmethod
    def for_sink(cls, sink: str) -> SignalContext:
        """A context covering a whole sink."""
        return cls(sink)

    @classmethod
    def for_coordinator(cls, sink: str, coordinator: str) -> SignalContext:
        """A context covering one coordinator."""
        return cls(sink, coordinator)

    def key(self, name: str) -> ScopedSignalKey:
        """The scoped key of ``name`` in this context."""
        return ScopedSignalKey(self.sink, self.coordinator, self.atom, name)

    def __str__(self) -> str:
        return f"{self.sink}.{self.coordinator}.{self.atom}"


@dataclass(frozen=True, slots=True)
class ScopedSignalKey:
    """A fully qualified signal name, ``sink.coordinator.atom.name``; the name may contain dots."""

    sink: str
    coordinator: str
    atom: str
    name: str

    @classmethod
    def for_atom(cls, sink: str, coordinator: str, atom: str, name: str) -> ScopedSignalKey:
        """A key emitted by one atom."""
        return cls(sink, coordinator, atom, name)

    @classmethod
    def for_coordinator(cls, sink: str, coordinator: str, name: str) -> ScopedSignalKey:
        """A key emitted on behalf of a whole coordinator."""
        return cls(sink, coordinator, WILDCARD, name)

    @classmethod
    def for_sink(cls, sink: str, name: str) -> ScopedSignalKey:
        """A key emitted on behalf of a whole sink."""
        return cls(sink, WILDCARD, WILDCARD, name)

    @classmethod
    def try_parse(cls, value: str) -> ScopedSignalKey | None:
        """Split ``value`` at its first three dots; None when it has fewer than three."""
        parts = value.split(".", 3)
        if len(parts) < 4:
            return None
        return cls(*parts)

    def matches(self, pattern: str) -> bool:
        """Whether the full name matches the glob ``pattern``."""
        return compile_pattern(pattern).matches(str(self))

    def __str__(self) -> str:
        return f"{self.sink}.{self.coordinator}.{self.atom}.{self.name}"


class ScopedSignalEmitter:
    """Emits signals named in a ``SignalContext`` onto a sink, on behalf of one operation.

    Args:
        context: Where the signals come from.
        operation_id: The operation the signals belong to.
        sink: Where the signals go; a private sink when None.
        on_signal: Called with each emitted event; exceptions are logged and swallowed.
        on_signal_retracted: Called with each retraction; exceptions are logged and swallowed.
    """

    def __init__(
        self,
        context: SignalContext,
        operation_id: int,
        sink: SignalSink | None = None,
        on_signal: Callable[[SignalEvent[Any]], object] | None = None,
        on_signal_retracted: Callable[[SignalRetractedEvent], object] | None = None,
    ) -> None:
        self.context = context
        self.operation_id = operation_id
        self.sink = sink if sink is not None else SignalSink()
        self._on_signal = on_signal
        self._on_signal_retracted = on_signal_retracted

    @property
    def key(self) -> str:
        """The coordinator part of the context, used as the signals' key."""
        return self.context.coordinator

    def _emit(self, name: str) -> SignalEvent[Any]:
        event: SignalEvent[Any] = SignalEvent(name, self.operation_id, self.key, self.sink.now())
        self.sink.emit(event)
        call_isolated(self._on_signal, event)
        return event

    def emit(self, name: str) -> SignalEvent[Any]:
        """Emit ``sink.coordinator.atom.name``."""
        return self._emit(str(self.context.key(name)))

    def emit_coordinator_signal(self, name: str) -> SignalEvent[Any]:
        """Emit ``sink.coordinator.*.name``."""
        return self._emit(str(ScopedSignalKey.for_coordinator(self.context.sink, self.context.coordinator, name)))

    def emit_sink_signal(self, name: str) -> SignalEvent[Any]:
        """Emit ``sink.*.*.name``."""
        return self._emit(str(ScopedSignalKey.for_sink(self.context.sink, name)))

    def _mine(self, event: SignalEvent[Any]) -> bool:
        return event.operation_id == self.operation_id

    def has_signal(self, name: str) -> bool:
        """Whether this emitter's ``sink.coordinator.atom.name`` is live on the sink."""
        full = str(self.context.key(name))
        return any(self._mine(e) for e in self.sink.sense(lambda e: e.signal == full))

    def retract(self, name: str) -> bool:
        """Withdraw this emitter's ``sink.coordinator.atom.name``; True when something was removed."""
        full = str(self.context.key(name))
        # Only this operation's signals: another emitter in the same context keeps its own.
        removed = self.sink._retract_operation(full, self.operation_id)
        if removed:
            call_isolated(
                self._on_signal_retracted, SignalRetractedEvent(full, self.operation_id, self.key, self.sink.now())
            )
        return removed > 0
