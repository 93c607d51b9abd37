"""OperationEchoAtom: persists echoes in order off the caller's path, isolates failures, bounds its backlog, drains."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral.atoms.echo import OperationEchoAtom, OperationEchoCapture, OperationEchoEntry
from ephemeral.core import AtomStats, CoordinatorClosedError, EphemeralOptions
from ephemeral.core.testing import ConcurrencyProbe

WHEN = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def entry(operation_id: int) -> OperationEchoEntry[str]:
    return OperationEchoEntry(
        operation_id, f"k{operation_id}", False, (OperationEchoCapture("echo.state", "done", WHEN),), WHEN
    )


class Repository:
    """An async store of echoes that takes 10 ms a write, can fail some ids and can be held by a gate."""

    def __init__(self, fail: frozenset[int] = frozenset()) -> None:
        self.saved: list[int] = []
        self.fail = fail
        self.gate: anyio.Event | None = None
        self.probe = ConcurrencyProbe()

    async def append(self, echo: OperationEchoEntry[str]) -> None:
        with self.probe:
            if self.gate is not None:
                await self.gate.wait()
            await anyio.sleep(0.01)
            if echo.operation_id in self.fail:
                raise OSError(f"disk full for {echo.operation_id}")
            self.saved.append(echo.operation_id)


async def test_persists_in_order_one_at_a_time() -> None:
    """By default echoes are persisted sequentially, in the order they were accepted."""
    repository = Repository()
    async with OperationEchoAtom(repository.append) as atom:
        for operation_id in range(10):
            await atom.enqueue(entry(operation_id))
    assert repository.saved == list(range(10))
    assert repository.probe.peak == 1
    assert (atom.total_enqueued, atom.total_completed, atom.total_failed) == (10, 10, 0)


async def test_failures_are_isolated_and_counted() -> None:
    """A persist that raises fails that echo only: it is counted and visible, and the next ones are persisted."""
    repository = Repository(fail=frozenset({2, 5}))
    async with OperationEchoAtom(repository.append) as atom:
        for operation_id in range(8):
            assert atom.try_enqueue(entry(operation_id))
    assert repository.saved == [0, 1, 3, 4, 6, 7]
    assert atom.total_failed == 2
    assert atom.stats() == AtomStats(pending=0, active=0, completed=6, failed=2)
    failed = atom.get_failed()
    assert sorted(str(snapshot.error) for snapshot in failed) == ["disk full for 2", "disk full for 5"]


async def test_leaving_the_block_drains_every_accepted_echo() -> None:
    """Echoes accepted while the repository was held are all persisted before the block is left."""
    repository = Repository()
    repository.gate = anyio.Event()
    async with OperationEchoAtom(repository.append) as atom:
        for operation_id in range(5):
            atom.try_enqueue(entry(operation_id))
        await anyio.sleep(1)
        assert repository.saved == [] and atom.pending_count == 4 and atom.active_count == 1
        repository.gate.set()
    assert repository.saved == list(range(5))


async def test_a_full_coordinator_sends_echoes_to_the_backlog_in_order() -> None:
    """try_enqueue never waits: beyond the coordinator's room echoes wait in the backlog, in order."""
    repository = Repository()
    repository.gate = anyio.Event()
    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=2)
    async with OperationEchoAtom(repository.append, options, max_backlog=100) as atom:
        for operation_id in range(20):
            assert atom.try_enqueue(entry(operation_id))
        assert atom.backlog_count > 0
        assert atom.pending_count + atom.active_count == 20
        repository.gate.set()
    assert repository.saved == list(range(20))
    assert atom.dropped_count == 0


async def test_the_backlog_is_bounded() -> None:
    """With the coordinator and the backlog full, try_enqueue refuses and counts the echo as dropped."""
    repository = Repository()
    repository.gate = anyio.Event()
    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=1)
    async with OperationEchoAtom(repository.append, options, max_backlog=3) as atom:
        accepted = [atom.try_enqueue(entry(operation_id)) for operation_id in range(10)]
        await anyio.lowlevel.checkpoint()
        assert accepted.count(False) == atom.dropped_count > 0
        repository.gate.set()
    assert len(repository.saved) == accepted.count(True)


async def test_intake_stops_after_complete() -> None:
    """After complete() enqueue raises and try_enqueue refuses; what was accepted is still persisted."""
    repository = Repository()
    async with OperationEchoAtom(repository.append) as atom:
        atom.try_enqueue(entry(1))
        atom.complete()
        atom.complete()
        with pytest.raises(CoordinatorClosedError):
            await atom.enqueue(entry(2))
        assert atom.try_enqueue(entry(3)) is False
        await atom.drain()
    assert repository.saved == [1] and atom.dropped_count == 1


async def test_try_enqueue_after_the_block_is_refused() -> None:
    """Echoes offered once the atom is closed are counted as dropped."""
    repository = Repository()
    async with OperationEchoAtom(repository.append) as atom:
        pass
    assert atom.try_enqueue(entry(1)) is False and atom.dropped_count == 1


async def test_try_enqueue_before_entering_raises() -> None:
    """Offering an echo to an atom not yet entered is a usage error."""
    atom: OperationEchoAtom[str] = OperationEchoAtom(Repository().append)
    with pytest.raises(RuntimeError, match="enter"):
        atom.try_enqueue(entry(1))


async def test_an_exception_in_the_block_cancels_and_propagates() -> None:
    """An error in the block cancels pending echoes (counted) and reaches the caller unwrapped."""
    repository = Repository()
    repository.gate = anyio.Event()
    with pytest.raises(KeyError):
        async with OperationEchoAtom(repository.append) as atom:
            for operation_id in range(3):
                atom.try_enqueue(entry(operation_id))
            await anyio.sleep(0.1)
            raise KeyError("boom")
    assert repository.saved == []
    assert atom.coordinator.total_cancelled == 3


async def test_a_cancelled_block_closes_cleanly() -> None:
    """When a cancel scope around the block fires, the atom closes: pending echoes are cancelled, nothing leaks."""
    repository = Repository()
    repository.gate = anyio.Event()
    with anyio.move_on_after(5) as scope:
        async with OperationEchoAtom(repository.append) as atom:
            for operation_id in range(3):
                atom.try_enqueue(entry(operation_id))
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert repository.saved == [] and atom.coordinator.total_cancelled == 3
    assert atom.try_enqueue(entry(9)) is False


async def test_the_atom_is_a_sync_callable() -> None:
    """Calling the atom is try_enqueue, so it can be any maker's on_echo."""
    repository = Repository()
    async with OperationEchoAtom(repository.append) as atom:
        assert atom(entry(4)) is True
    assert repository.saved == [4]


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("persist", None, TypeError),
        ("options", {"max_concurrency": 2}, TypeError),
        ("max_backlog", -1, ValueError),
        ("max_backlog", 1.5, TypeError),
    ],
)
def test_bad_arguments_raise_naming_the_argument(argument: str, value: Any, error: type[Exception]) -> None:
    """A bad argument raises at construction, naming it."""
    kwargs: dict[str, Any] = {"persist": Repository().append, argument: value}
    with pytest.raises(error, match=argument):
        OperationEchoAtom(**kwargs)
