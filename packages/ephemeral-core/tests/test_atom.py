"""AtomBase: the lifecycle and views shared by atoms built on a coordinator."""

from __future__ import annotations

import anyio
import pytest

from ephemeral.core import AtomStats, CoordinatorClosedError, EphemeralOptions, EphemeralWorkCoordinator
from ephemeral.core.lowlevel import AtomBase


class Doubler(AtomBase[EphemeralWorkCoordinator[int]]):
    """A minimal atom: records twice each item."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        super().__init__(EphemeralWorkCoordinator(self._run, EphemeralOptions(max_concurrency=2)))

    async def _run(self, item: int) -> None:
        await anyio.sleep(1)
        if item < 0:
            raise ValueError(item)
        self.seen.append(item * 2)

    async def enqueue(self, item: int) -> None:
        await self.coordinator.enqueue(item)


async def test_atom_lifecycle_stats_and_snapshot() -> None:
    """An atom runs in `async with`, reports (pending, active, completed, failed) and drains on exit."""
    async with Doubler() as atom:
        for item in (1, 2, -3, 4):
            await atom.enqueue(item)
        await anyio.sleep(0.5)
        pending, active, completed, failed = atom.stats()
        assert (pending, active, completed, failed) == (2, 2, 0, 0)
        await atom.drain()
        assert atom.stats() == AtomStats(0, 0, 3, 1)
        assert len(atom.snapshot()) == 4
        assert atom.signals is atom.coordinator.signals
    assert sorted(atom.seen) == [2, 4, 8]


def test_atom_needs_a_coordinator() -> None:
    """AtomBase rejects anything but a coordinator."""
    with pytest.raises(TypeError, match="coordinator"):
        AtomBase(object())  # type: ignore[type-var]


async def test_errors_name_the_atom_the_user_called() -> None:
    """Used before entering or after closing, an atom's errors name the atom, not its inner coordinator."""
    atom = Doubler()
    with pytest.raises(RuntimeError, match=r"enter the atom first: `async with Doubler\(\.\.\.\) as atom:`"):
        await atom.enqueue(1)
    async with atom:
        await atom.enqueue(1)
    with pytest.raises(CoordinatorClosedError, match=r"^Doubler has been completed; no new items are accepted$"):
        await atom.enqueue(2)


async def test_atom_forwards_counts_metrics_and_cancel_to_its_coordinator() -> None:
    """pending_count, active_count, get_metrics() and cancel() are the coordinator's, on every atom."""
    async with Doubler() as atom:
        for item in (1, 2, 3):
            await atom.enqueue(item)
        await anyio.sleep(0.5)
        assert (atom.pending_count, atom.active_count) == (1, 2)
        assert atom.get_metrics() == atom.coordinator.get_metrics()
        assert atom.get_metrics().total_enqueued == 3
        atom.cancel()
    metrics = atom.get_metrics()
    assert (metrics.total_completed, metrics.total_cancelled) == (0, 3)
    assert atom.seen == []
