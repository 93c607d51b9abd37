"""The shared shape of atoms that wrap a coordinator: lifecycle, stats, snapshot, drain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from ._coordinator import CoordinatorBase
from ._counters import CoordinatorMetrics
from ._lifecycle import TaskGroupOwner
from ._operation import EphemeralOperationSnapshot
from ._sink import SignalSink

__all__ = ("AtomBase", "AtomStats")

C = TypeVar("C", bound=CoordinatorBase[Any, Any])


class AtomStats(NamedTuple):
    """An atom's counters: ``pending, active, completed, failed = atom.stats()``."""

    pending: int
    active: int
    completed: int
    failed: int


class AtomBase(TaskGroupOwner, Generic[C]):
    """An atom built on one coordinator: ``async with`` runs it, and leaving the block drains it.

    Subclasses build the coordinator and add their own intake; this base gives every such atom the
    same lifecycle and the same views, so an atom is only what makes it different. The atom's own
    background tasks (``_on_enter``) run inside the coordinator's block: they end before it drains.
    """

    def __init__(self, coordinator: C) -> None:
        if not isinstance(coordinator, CoordinatorBase):
            raise TypeError(f"coordinator must be a coordinator, got {coordinator!r}")
        self.coordinator = coordinator
        coordinator._shown_as = self  # its errors name the atom the user called

    def _not_entered(self, noun: str = "atom", alias: str = "atom") -> RuntimeError:
        return super()._not_entered(noun, alias)

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        async with self.coordinator:
            yield

    def _on_error_exit(self) -> None:
        self.coordinator.cancel()  # at once: nothing may start while the atom's own tasks wind down

    @property
    def signals(self) -> SignalSink:
        """The sink the atom's coordinator emits to."""
        return self.coordinator.signals

    def stats(self) -> AtomStats:
        """``(pending, active, completed, failed)`` right now."""
        c = self.coordinator
        return AtomStats(c.pending_count, c.active_count, c.total_completed, c.total_failed)

    def snapshot(self) -> list[EphemeralOperationSnapshot[Any]]:
        """The operations in the window, oldest first."""
        return self.coordinator.get_snapshot()

    def cleanup(
        self, age: float | timedelta | None = None, count: int | None = None, pattern: str | None = None
    ) -> int:
        """Drop the atom's own signals (those its operations hold in the window); return how many were dropped.

        Args:
            age: Drop signals older than this (seconds or a timedelta).
            count: Keep only the newest ``count`` signals of each operation.
            pattern: Drop signals whose name matches this glob.
        """
        return self.coordinator.cleanup_signals(age=age, count=count, pattern=pattern)

    @property
    def pending_count(self) -> int:
        """Accepted items not started yet."""
        return self.coordinator.pending_count

    @property
    def active_count(self) -> int:
        """Bodies running now."""
        return self.coordinator.active_count

    def get_metrics(self) -> CoordinatorMetrics:
        """Every counter at once: ``total_enqueued``, ``total_completed``, ``total_failed``, ``total_cancelled``, ..."""
        return self.coordinator.get_metrics()

    def cancel(self) -> None:
        """Refuse new items, cancel waiting ones and interrupt running bodies (counted as cancelled)."""
        self.coordinator.cancel()

    def complete(self) -> None:
        """Stop accepting items; accepted ones still run. Idempotent."""
        self.coordinator.complete()

    async def drain(self) -> None:
        """Stop accepting items and wait until every accepted one has finished."""
        await self.coordinator.drain()
