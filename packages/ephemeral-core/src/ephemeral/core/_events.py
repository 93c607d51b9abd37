"""Signal events, propagation paths, emission constraints and ``command:payload`` parsing."""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Iterable
from dataclasses import Field, FrozenInstanceError, dataclass, field
from datetime import datetime
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar

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


class SignalEvent(tuple[Any, ...], Generic[P]):
    """One emitted signal: an immutable value with dataclass-style fields.

    Attributes:
        signal: The signal name, such as ``"order.placed"`` or ``"rate-limit:500ms"``.
        operation_id: The emitting operation, or a fresh id for signals emitted on a sink directly.
        key: An optional correlation key (customer id, file id, ...).
        timestamp: When it was emitted, a timezone-aware UTC datetime.
        propagation: The causal chain when the signal was emitted because of another one.
        payload: Data carried by typed signals (``TypedSignalSink``); None otherwise.

    Events compare and hash by ``signal``, ``operation_id``, ``key``, ``timestamp`` and
    ``propagation`` (not ``payload``); assigning a field raises ``FrozenInstanceError``;
    ``dataclasses.replace`` and ``dataclasses.fields`` work on them.

    Emitting is on every hot path, so a sink stamps an event with its monotonic clock reading and
    derives the ``timestamp`` datetime only when it is read. (An event is stored as a tuple; the
    tuple layout is an implementation detail, not part of the API.)
    """

    __slots__ = ()
    __match_args__ = ("signal", "operation_id", "key", "timestamp", "propagation", "payload")
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    if TYPE_CHECKING:

        @property
        def signal(self) -> str: ...
        @property
        def operation_id(self) -> int: ...
        @property
        def key(self) -> str | None: ...
        @property
        def propagation(self) -> SignalPropagation | None: ...
        @property
        def payload(self) -> P | None: ...

    def __new__(
        cls,
        signal: str,
        operation_id: int,
        key: str | None,
        timestamp: datetime,
        propagation: SignalPropagation | None = None,
        payload: P | None = None,
    ) -> SignalEvent[P]:
        return tuple.__new__(cls, (signal, operation_id, key, timestamp, None, propagation, payload))

    @property
    def timestamp(self) -> datetime:
        """When the signal was emitted, a timezone-aware UTC datetime."""
        base = self[4]
        return self[3] if base is None else base.to_datetime(self[3])  # type: ignore[no-any-return]

    @property
    def depth(self) -> int:
        """Length of the causal chain; 0 for a signal with no recorded cause."""
        propagation = self[5]
        return propagation.depth if propagation is not None else 0

    def would_cycle(self, signal: str) -> bool:
        """Whether emitting ``signal`` as a consequence of this event would form a cycle."""
        propagation = self[5]
        return propagation is not None and signal in propagation.path

    def is_(self, signal: str) -> bool:
        """Exact name comparison."""
        return self[0] == signal  # type: ignore[no-any-return]

    def starts_with(self, prefix: str) -> bool:
        """Whether the signal name starts with ``prefix``."""
        return self[0].startswith(prefix)  # type: ignore[no-any-return]

    def without_payload(self) -> SignalEvent[Any]:
        """The same event with no payload."""
        return new_event((*self[:6], None)) if self[6] is not None else self

    def _compared(self) -> tuple[Any, ...]:
        return (self[0], self[1], self[2], self.timestamp, self[5])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == other._compared()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self._compared())

    def __lt__(self, other: object) -> bool:
        return NotImplemented

    __le__ = __gt__ = __ge__ = __lt__

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return (
            f"SignalEvent(signal={self[0]!r}, operation_id={self[1]!r}, key={self[2]!r}, "
            f"timestamp={self.timestamp!r}, propagation={self[5]!r}, payload={self[6]!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (SignalEvent, (self[0], self[1], self[2], self.timestamp, self[5], self[6]))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self[0], self[1], self[2], self.timestamp, self[5], self[6])


#: Builds an event from its stored form, without going through ``__new__``: a 7-tuple (signal, operation
#: id, key, timestamp or clock reading, the reading's ``TimeBase`` or None, propagation, payload). Sinks
#: build every event this way, stamped with a monotonic reading; ``timestamp`` derives the datetime
#: only when it is read.
new_event: Callable[[tuple[Any, ...]], SignalEvent[Any]] = partial(tuple.__new__, SignalEvent)


def _install_fields() -> None:
    for index, name in ((0, "signal"), (1, "operation_id"), (2, "key"), (5, "propagation"), (6, "payload")):
        setattr(SignalEvent, name, _tuple_field(index, f"The {name.replace('_', ' ')} of the event."))

    @dataclass(frozen=True)
    class _Fields:  # the dataclass view of SignalEvent: replace(), fields(), asdict() work on events
        signal: str
        operation_id: int
        key: str | None
        timestamp: datetime
        propagation: SignalPropagation | None = None
        payload: Any = field(default=None, compare=False)

    SignalEvent.__dataclass_fields__ = _Fields.__dataclass_fields__
    type.__setattr__(SignalEvent, "__dataclass_params__", _Fields.__dataclass_params__)  # type: ignore[attr-defined]


def _tuple_field(index: int, doc: str) -> Any:
    getter = getattr(collections, "_tuplegetter", None)  # the fast descriptor namedtuple fields use
    return getter(index, doc) if getter is not None else property(itemgetter(index), doc=doc)


_install_fields()


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
