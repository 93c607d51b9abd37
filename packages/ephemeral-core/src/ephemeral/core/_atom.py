"""The shared shape of atoms that wrap a coordinator: lifecycle, stats, snapshot, drain."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Generic, NamedTuple, TypeVar

from ._coordinator import CoordinatorBase
from ._operation import EphemeralOperationSnapshot
from ._sink import SignalSink

__all__ = ("AtomBase", "AtomStats")

C = TypeVar("C", bound=CoordinatorBase[Any, Any])
_Self = TypeVar("_Self", bound="AtomBase[Any]")


class AtomStats(NamedTuple):
    """An atom's counters: ``pending, active, completed, failed = atom.stats()``."""

    pending: int
    active: int
    completed: int
    failed: int


class AtomBase(Generic[C]):
    """An atom built on one coordinator: ``async with`` runs it, and leaving the block drains it.

    Subclasses build the coordinator and add their own intake; this base gives every such atom the
    same lifecycle and the same views, so an atom is only what makes it different.
    """

    def __init__(self, coordinator: C) -> None:
        if not isinstance(coordinator, CoordinatorBase):
            raise TypeError(f"coordinator must be a coordinator, got {coordinator!r}")
        self.coordinator = coordinator

    async def __aenter__(self: _Self) -> _Self:
        await self.coordinator.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self.coordinator.__aexit__(exc_type, exc, tb)

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

    def complete(self) -> None:
        """Stop accepting items; accepted ones still run. Idempotent."""
        self.coordinator.complete()

    async def drain(self) -> None:
        """Stop accepting items and wait until every accepted one has finished."""
        await self.coordinator.drain()
