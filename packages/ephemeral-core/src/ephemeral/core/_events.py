"""Signal events, propagation paths, emission constraints and ``command:payload`` parsing."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

__all__ = (
    "BlockReason",
    "SignalCommandMatch",
    "SignalConstraints",
    "SignalEvent",
    "SignalPropagation",
    "SignalRetractedEvent",
)

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class SignalPropagation:
    """The chain of signals that caused an emission, root first."""

    path: tuple[str, ...]

    @classmethod
    def root(cls, signal: str) -> SignalPropagation:
        """Start a chain at ``signal``."""
        return cls((signal,))

    def extend(self, signal: str) -> SignalPropagation:
        """Return a new chain with ``signal`` appended."""
        return SignalPropagation((*self.path, signal))

    @property
    def depth(self) -> int:
        """Number of signals in the chain."""
        return len(self.path)

    def contains(self, signal: str) -> bool:
        """Whether ``signal`` already appears in the chain."""
        return signal in self.path

    def __str__(self) -> str:
        return " -> ".join(self.path)


@dataclass(frozen=True, slots=True, init=False)
class SignalEvent(Generic[P]):
    """One emitted signal.

    Attributes:
        signal: The signal name, such as ``"order.placed"`` or ``"rate-limit:500ms"``.
        operation_id: The emitting operation, or a fresh id for signals emitted on a sink directly.
        key: An optional correlation key (customer id, file id, ...).
        timestamp: When it was emitted, a timezone-aware UTC datetime.
        propagation: The causal chain when the signal was emitted because of another one.
        payload: Data carried by typed signals (``TypedSignalSink``); None otherwise.
    """

    signal: str
    operation_id: int
    key: str | None
    timestamp: datetime
    propagation: SignalPropagation | None = None
    payload: P | None = field(default=None, compare=False)

    def __init__(
        self,
        signal: str,
        operation_id: int,
        key: str | None,
        timestamp: datetime,
        propagation: SignalPropagation | None = None,
        payload: P | None = None,
    ) -> None:
        _init_event(self, signal, operation_id, key, timestamp, propagation, payload)

    @property
    def depth(self) -> int:
        """Length of the causal chain; 0 for a signal with no recorded cause."""
        return self.propagation.depth if self.propagation is not None else 0

    def would_cycle(self, signal: str) -> bool:
        """Whether emitting ``signal`` as a consequence of this event would form a cycle."""
        return self.propagation is not None and signal in self.propagation.path

    def is_(self, signal: str) -> bool:
        """Exact name comparison."""
        return self.signal == signal

    def starts_with(self, prefix: str) -> bool:
        """Whether the signal name starts with ``prefix``."""
        return self.signal.startswith(prefix)

    def without_payload(self) -> SignalEvent[Any]:
        """The same event with no payload."""
        return replace(self, payload=None) if self.payload is not None else self


# Every signal that has a subscriber builds an event, so construction is on the hot path of ``emit``:
# setting the slots through their descriptors is twice as fast as the generated frozen initialiser.
_set_signal, _set_id, _set_key, _set_timestamp, _set_propagation, _set_payload = (
    getattr(SignalEvent, name).__set__ for name in SignalEvent.__slots__
)


def _init_event(
    event: SignalEvent[Any],
    signal: str,
    operation_id: int,
    key: str | None,
    timestamp: datetime,
    propagation: SignalPropagation | None,
    payload: Any,
) -> None:
    _set_signal(event, signal)
    _set_id(event, operation_id)
    _set_key(event, key)
    _set_timestamp(event, timestamp)
    _set_propagation(event, propagation)
    _set_payload(event, payload)


@dataclass(frozen=True, slots=True)
class SignalRetractedEvent:
    """A signal that was withdrawn."""

    signal: str
    operation_id: int
    key: str | None
    timestamp: datetime
    was_pattern_match: bool = False
    pattern: str | None = None

    def is_(self, signal: str) -> bool:
        """Exact name comparison."""
        return self.signal == signal


class BlockReason(enum.Enum):
    """Why ``SignalConstraints`` refused an emission."""

    MAX_DEPTH_EXCEEDED = "max_depth_exceeded"
    CYCLE_DETECTED = "cycle_detected"
    TERMINAL_SIGNAL_REACHED = "terminal_signal_reached"


@dataclass(frozen=True, kw_only=True)
class SignalConstraints:
    """Limits on signal chains: depth, cycles, terminal and leaf signals.

    Attributes:
        max_depth: The longest allowed chain; an emission whose cause already has this depth is blocked.
        block_cycles: Block a signal that already appears in its own causal chain.
        terminal_signals: Signals that may not cause further signals.
        leaf_signals: Signals emitted without a propagation path (they start no chain).
        on_blocked: Called with the refused event and the reason; exceptions are swallowed.
    """

    DEFAULT: ClassVar[SignalConstraints]
    STRICT: ClassVar[SignalConstraints]
    NONE: ClassVar[SignalConstraints]

    max_depth: int = 10
    block_cycles: bool = True
    terminal_signals: frozenset[str] = frozenset()
    leaf_signals: frozenset[str] = frozenset()
    on_blocked: Callable[[SignalEvent[Any], BlockReason], object] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_depth, bool) or not isinstance(self.max_depth, int):
            raise TypeError(f"max_depth must be an int, got {self.max_depth!r}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be >= 1, got {self.max_depth}")
        object.__setattr__(self, "terminal_signals", frozenset(self.terminal_signals))
        object.__setattr__(self, "leaf_signals", frozenset(self.leaf_signals))

    def should_block(self, signal: str, cause: SignalPropagation | None) -> BlockReason | None:
        """Return why emitting ``signal`` caused by ``cause`` is refused, or None when allowed."""
        if cause is None:
            return None
        if cause.depth >= self.max_depth:
            return BlockReason.MAX_DEPTH_EXCEEDED
        if self.block_cycles and signal in cause.path:
            return BlockReason.CYCLE_DETECTED
        if cause.path and cause.path[-1] in self.terminal_signals:
            return BlockReason.TERMINAL_SIGNAL_REACHED
        return None

    def propagation_for(self, signal: str, cause: SignalPropagation | None) -> SignalPropagation | None:
        """The propagation an allowed emission carries."""
        if signal in self.leaf_signals:
            return None
        return cause.extend(signal) if cause is not None else SignalPropagation.root(signal)


SignalConstraints.DEFAULT = SignalConstraints()
SignalConstraints.STRICT = SignalConstraints(max_depth=5)
SignalConstraints.NONE = SignalConstraints(max_depth=2**31 - 1, block_cycles=False)


class SignalCommandMatch(NamedTuple):
    """A ``command:payload`` signal split into its parts (``"rate-limit:500ms"``)."""

    command: str
    payload: str

    @staticmethod
    def try_parse(signal: str | None, command: str | None) -> SignalCommandMatch | None:
        """Find ``command`` followed by ``:`` in ``signal`` and return it with the rest as payload.

        The first occurrence wins; the command may be preceded by anything
        (``"prefix.window.size.set:200"`` matches ``"window.size.set"``). Returns None when either
        argument is empty or the command is not followed by a colon.
        """
        if not signal or not command:
            return None
        marker = command + ":"
        index = signal.find(marker)
        if index < 0:
            return None
        return SignalCommandMatch(command, signal[index + len(marker) :])

    @staticmethod
    def find(signals: Iterable[str], command: str) -> SignalCommandMatch | None:
        """The first of ``signals`` that carries ``command``, parsed."""
        for signal in signals:
            match = SignalCommandMatch.try_parse(signal, command)
            if match is not None:
                return match
        return None
