"""LastWordsNote and LastWordsNoteAtom: small notes about finished operations, persisted in the background."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralOperationSnapshot,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    LastWordsNote,
    LastWordsNoteAtom,
    SignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import utc_now
from ephemeral.core.testing import ConcurrencyProbe

WHEN = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def note(operation_id: int, signal: str | None = None) -> LastWordsNote:
    return LastWordsNote(operation_id, f"k{operation_id}", signal, WHEN)


class Repository:
    """An async store of notes that can be told to fail for some operation ids or to hold writes."""

    def __init__(self, fail: frozenset[int] = frozenset()) -> None:
        self.saved: list[LastWordsNote] = []
        self.fail = fail
        self.gate: anyio.Event | None = None
        self.probe = ConcurrencyProbe()

    async def save(self, note: LastWordsNote) -> None:
        with self.probe:
            if self.gate is not None:
                await self.gate.wait()
            await anyio.sleep(0.01)
            if note.operation_id in self.fail:
                raise OSError(f"disk full for {note.operation_id}")
            self.saved.append(note)


# ---------------------------------------------------------------------------------------- the note


def test_note_is_frozen_and_its_metadata_read_only() -> None:
    """A note cannot be changed, and its metadata is a read-only copy of the mapping given."""
    metadata: dict[str, str | None] = {"bucket": "b1", "etag": None}
    n = LastWordsNote(1, "k", "file.saved", WHEN, metadata)
    metadata["bucket"] = "changed"
    assert n.metadata == {"bucket": "b1", "etag": None}
    with pytest.raises(TypeError):
        n.metadata["bucket"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.signal = "other"  # type: ignore[misc]
    assert LastWordsNote(2, None, None, WHEN).metadata is None


# ------------------------------------------------------------------------------ the seed example


async def test_seed_example_notes_from_operation_finalized() -> None:
    """The seed: an operation_finalized handler turns each snapshot into a note and enqueues it; all are persisted."""
    repository = Repository()
    sink = SignalSink()

    async def handle(item: int) -> None:
        current_operation().emit(f"order.{item}.done")

    options = EphemeralOptions(max_concurrency=4, max_tracked_operations=5, signals=sink)
    # The notes outlive the coordinator: leaving it finalises the last five operations, and their
    # last words are kept as well.
    async with (
        LastWordsNoteAtom(repository.save) as notes,
        EphemeralWorkCoordinator(handle, options) as coordinator,
    ):

        def on_finalized(snapshot: EphemeralOperationSnapshot[Any]) -> None:
            last_words = LastWordsNote(
                operation_id=snapshot.operation_id,
                key=snapshot.key,
                signal=snapshot.signals[0].signal if snapshot.signals else None,
                timestamp=utc_now(),
            )
            _ = notes.try_enqueue(last_words)

        coordinator.operation_finalized.connect(on_finalized)
        ids = [await coordinator.enqueue(item) for item in range(20)]
    assert sorted(n.operation_id for n in repository.saved) == sorted(ids)
    by_id = {n.operation_id: n.signal for n in repository.saved}
    assert [by_id[operation_id] for operation_id in ids] == [f"order.{item}.done" for item in range(20)]
    assert notes.total_completed == 20 and notes.dropped_count == 0


# --------------------------------------------------------------------------------- drain and intake


async def test_drain_completes_intake_first() -> None:
    """drain() without complete() does not raise: it stops intake, then waits for every note (reference bug fixed)."""
    repository = Repository()
    async with LastWordsNoteAtom(repository.save) as notes:
        for operation_id in (1, 2, 3):
            await notes.enqueue(note(operation_id))
        await notes.drain()
        assert [n.operation_id for n in repository.saved] == [1, 2, 3]
        await notes.drain()  # idempotent
        with pytest.raises(CoordinatorClosedError):
            await notes.enqueue(note(4))
        assert not notes.try_enqueue(note(5))
        assert notes.dropped_count == 1
    assert notes.total_enqueued == 3 == notes.total_completed


async def test_failing_persist_is_recorded_and_later_notes_still_persist() -> None:
    """A persist that raises is recorded in a failed snapshot; the notes after it are persisted as usual."""
    repository = Repository(fail=frozenset({2}))
    async with LastWordsNoteAtom(repository.save) as notes:
        for operation_id in (1, 2, 3, 4):
            await notes.enqueue(note(operation_id))
    assert [n.operation_id for n in repository.saved] == [1, 3, 4]
    assert notes.total_failed == 1 and notes.total_completed == 3
    [failed] = notes.get_failed()
    assert isinstance(failed.error, OSError) and "disk full for 2" in str(failed.error)


async def test_default_options_persist_one_note_at_a_time() -> None:
    """By default notes are persisted one at a time, in order, with a 64-operation window living 30 s."""
    repository = Repository()
    async with LastWordsNoteAtom(repository.save) as notes:
        for operation_id in range(10):
            assert notes.try_enqueue(note(operation_id))
    assert repository.probe.peak == 1
    assert [n.operation_id for n in repository.saved] == list(range(10))
    options = notes.coordinator.options
    assert (options.max_concurrency, options.max_tracked_operations, options.max_operation_lifetime) == (1, 64, 30.0)


async def test_options_are_used_as_given() -> None:
    """Options passed in are used as given: four notes may be persisted at once."""
    repository = Repository()
    repository.gate = anyio.Event()
    async with LastWordsNoteAtom(repository.save, EphemeralOptions(max_concurrency=4)) as notes:
        for operation_id in range(8):
            await notes.enqueue(note(operation_id))
        await anyio.sleep(0.01)
        assert notes.active_count == 4 and notes.pending_count == 4
        repository.gate.set()
    assert repository.probe.peak == 4 and len(repository.saved) == 8


async def test_try_enqueue_backlog_keeps_every_note_in_order() -> None:
    """When the coordinator is full, try_enqueue parks notes in the backlog; all are persisted in order."""
    repository = Repository()
    repository.gate = anyio.Event()
    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=4)
    async with LastWordsNoteAtom(repository.save, options) as notes:
        assert all(notes.try_enqueue(note(operation_id)) for operation_id in range(30))
        await anyio.sleep(0.01)
        assert notes.backlog_count > 0
        assert notes.pending_count + notes.active_count == 30
        repository.gate.set()
    assert [n.operation_id for n in repository.saved] == list(range(30))
    assert notes.dropped_count == 0 and notes.backlog_count == 0


async def test_full_backlog_refuses_and_counts() -> None:
    """Beyond the coordinator's room and max_backlog, try_enqueue returns False and counts the note as dropped."""
    repository = Repository()
    repository.gate = anyio.Event()
    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=1)
    async with LastWordsNoteAtom(repository.save, options, max_backlog=2) as notes:
        accepted = [notes.try_enqueue(note(operation_id)) for operation_id in range(6)]
        assert accepted == [True, True, True, False, False, False]
        assert notes.dropped_count == 3
        repository.gate.set()
    assert [n.operation_id for n in repository.saved] == [0, 1, 2]


async def test_complete_with_a_backlog_still_persists_it() -> None:
    """complete() with notes in the backlog refuses new notes but persists the backlog before the atom drains."""
    repository = Repository()
    repository.gate = anyio.Event()
    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=1)
    async with LastWordsNoteAtom(repository.save, options) as notes:
        for operation_id in range(5):
            notes.try_enqueue(note(operation_id))
        notes.complete()
        assert not notes.try_enqueue(note(99))
        with pytest.raises(CoordinatorClosedError):
            await notes.enqueue(note(98))
        repository.gate.set()
        await notes.drain()
        assert [n.operation_id for n in repository.saved] == list(range(5))
    assert notes.dropped_count == 1


async def test_error_in_the_block_cancels_and_counts_the_backlog() -> None:
    """An exception inside `async with` propagates unchanged; notes never persisted are counted, not lost silently."""
    repository = Repository()
    repository.gate = anyio.Event()
    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=1)
    with pytest.raises(LookupError):
        async with LastWordsNoteAtom(repository.save, options) as notes:
            for operation_id in range(5):
                notes.try_enqueue(note(operation_id))
            await anyio.sleep(0.01)
            raise LookupError("stop")
    assert repository.saved == []
    coordinator = notes.coordinator
    assert notes.dropped_count + coordinator.total_cancelled == 5


async def test_enqueue_before_entering_raises() -> None:
    """Using the atom before `async with` raises a clear RuntimeError."""
    notes = LastWordsNoteAtom(Repository().save)
    with pytest.raises(RuntimeError, match="enter"):
        notes.try_enqueue(note(1))
    with pytest.raises(RuntimeError, match="enter"):
        await notes.enqueue(note(1))


def test_constructor_validation() -> None:
    """A non-callable persist or a negative max_backlog is refused."""
    with pytest.raises(TypeError, match="persist"):
        LastWordsNoteAtom("save")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_backlog"):
        LastWordsNoteAtom(Repository().save, max_backlog=-1)
