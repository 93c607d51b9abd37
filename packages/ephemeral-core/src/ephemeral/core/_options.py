"""Options shared by every coordinator."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from ._checks import check_int
from ._clock import to_seconds
from ._events import SignalConstraints, SignalEvent, SignalRetractedEvent
from ._matcher import PatternSet
from ._sink import SignalSink

__all__ = ("DEFAULT_DRAIN_SIGNALS", "EphemeralOptions")

DEFAULT_DRAIN_SIGNALS = frozenset({"coordinator.drain.all", "coordinator.drain.id", "coordinator.drain.pattern"})


def _callable_or_none(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class EphemeralOptions:
    """How a coordinator runs work and what it remembers. Every field is checked at construction.

    Concurrency:
        max_concurrency: The most bodies running at once (default: the number of CPUs).
        max_concurrency_per_key: The most bodies of one key at once (keyed coordinators).
        enable_dynamic_concurrency: Allow ``set_max_concurrency`` at run time.

    Memory:
        max_tracked_operations: The operation window: how many operations stay visible, and how many
            accepted items may wait before ``enqueue`` waits and ``try_enqueue`` refuses.
        max_operation_lifetime: How long a finished operation stays visible (None: until pushed out).
        enable_operation_echo: Keep a short echo of each operation's signals after it leaves the window.
        emit_lifecycle_signals: Each operation emits ``atom.start`` before its body runs and ``atom.stop``
            when it finished, as the original does (off by default: no allocation per item).
        operation_echo_retention: How long an echo lasts.
        operation_echo_capacity: How many echoes are kept.

    Fair scheduling (keyed coordinators):
        enable_fair_scheduling: Interleave keys so that a hot key cannot starve the others.
        fair_scheduling_threshold: Pending items of one key beyond which ``try_enqueue`` refuses.

    Signals:
        signals: A shared ``SignalSink``; without one each coordinator has a private sink.
        on_signal: Called synchronously with every signal an operation emits.
        on_signal_async: Awaited for every signal an operation emits, off the emitting path.
        on_signal_retracted: Called when an operation retracts a signal.
        on_signal_retracted_async: Awaited when an operation retracts a signal.
        max_concurrent_signal_handlers: The most async handlers running at once.
        max_queued_signals: The most signals waiting for async handlers; beyond it the oldest is dropped.
        signal_constraints: Limits on causal chains of operation signals.
        cancel_on_signals: While a matching signal is live, items reaching the front are skipped.
        defer_on_signals: While a matching signal is live, items wait at the front.
        resume_on_signals: A live matching signal newer than the newest live defer signal overrides
            ``defer_on_signals``. When None, a defer pattern ``X.in-progress`` is resumed by ``X.done``.
        defer_check_interval: How often a deferral looks again.
        max_defer_attempts: How many looks a deferral lasts before work goes ahead anyway.
        drain_on_signals: Signals that make the coordinator stop taking work and drain.
        coordinator_id: A name for drain requests and ``SignalSink.sense_by_coordinator``.
        emits: Documentation: the signals the coordinator's bodies emit.
        listens: Documentation: the signals the coordinator reacts to.
    """

    max_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_concurrency_per_key: int = 1
    enable_dynamic_concurrency: bool = False
    max_tracked_operations: int = 200
    max_operation_lifetime: float | timedelta | None = 300.0
    enable_operation_echo: bool = True
    emit_lifecycle_signals: bool = False
    operation_echo_retention: float | timedelta = 60.0
    operation_echo_capacity: int = 256
    enable_fair_scheduling: bool = False
    fair_scheduling_threshold: int = 10
    signals: SignalSink | None = None
    on_signal: Callable[[SignalEvent[Any]], object] | None = None
    on_signal_async: Callable[[SignalEvent[Any]], Awaitable[object]] | None = None
    on_signal_retracted: Callable[[SignalRetractedEvent], object] | None = None
    on_signal_retracted_async: Callable[[SignalRetractedEvent], Awaitable[object]] | None = None
    max_concurrent_signal_handlers: int = 4
    max_queued_signals: int = 1000
    signal_constraints: SignalConstraints | None = None
    cancel_on_signals: Iterable[str] | str | None = None
    defer_on_signals: Iterable[str] | str | None = None
    resume_on_signals: Iterable[str] | str | None = None
    defer_check_interval: float | timedelta = 0.1
    max_defer_attempts: int = 50
    drain_on_signals: Iterable[str] | str | None = DEFAULT_DRAIN_SIGNALS
    coordinator_id: str | None = None
    emits: Iterable[str] | None = None
    listens: Iterable[str] | None = None

    def __post_init__(self) -> None:
        check_int(self.max_concurrency, "max_concurrency")
        check_int(self.max_concurrency_per_key, "max_concurrency_per_key")
        check_int(self.max_tracked_operations, "max_tracked_operations")
        check_int(self.operation_echo_capacity, "operation_echo_capacity")
        check_int(self.fair_scheduling_threshold, "fair_scheduling_threshold")
        check_int(self.max_concurrent_signal_handlers, "max_concurrent_signal_handlers")
        check_int(self.max_queued_signals, "max_queued_signals")
        check_int(self.max_defer_attempts, "max_defer_attempts", 0)
        for name in (
            "enable_dynamic_concurrency",
            "enable_operation_echo",
            "enable_fair_scheduling",
            "emit_lifecycle_signals",
        ):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.max_operation_lifetime is not None:
            to_seconds(self.max_operation_lifetime, "max_operation_lifetime")
        to_seconds(self.operation_echo_retention, "operation_echo_retention")
        to_seconds(self.defer_check_interval, "defer_check_interval")
        if self.signals is not None and not isinstance(self.signals, SignalSink):
            raise TypeError(f"signals must be a SignalSink or None, got {self.signals!r}")
        if self.signal_constraints is not None and not isinstance(self.signal_constraints, SignalConstraints):
            raise TypeError(f"signal_constraints must be SignalConstraints or None, got {self.signal_constraints!r}")
        for name in ("on_signal", "on_signal_async", "on_signal_retracted", "on_signal_retracted_async"):
            _callable_or_none(name, getattr(self, name))
        for name in (
            "cancel_on_signals",
            "defer_on_signals",
            "resume_on_signals",
            "drain_on_signals",
            "emits",
            "listens",
        ):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                object.__setattr__(self, name, PatternSet(value).patterns)
            except TypeError as error:
                raise TypeError(f"{name}: {error}") from None
        if self.coordinator_id is not None and (not isinstance(self.coordinator_id, str) or not self.coordinator_id):
            raise ValueError(f"coordinator_id must be a non-empty string or None, got {self.coordinator_id!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of every option."""
        return tuple(f.name for f in fields(cls))
