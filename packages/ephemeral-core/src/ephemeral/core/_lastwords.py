"""Last words: a tiny note about an operation leaving its window, persisted off the hot path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from ._persist import PersistAtom

__all__ = ("LastWordsNote", "LastWordsNoteAtom")


@dataclass(frozen=True, slots=True)
class LastWordsNote:
    """What to remember about an operation once it is gone: small on purpose.

    Attributes:
        operation_id: The operation.
        key: Its key, if any.
        signal: The signal worth remembering (by name), if any.
        timestamp: When the note was taken (a timezone-aware UTC datetime).
        metadata: Any further strings worth keeping; stored read-only.
    """

    operation_id: int
    key: str | None
    signal: str | None
    timestamp: datetime
    metadata: Mapping[str, str | None] | None = None

    def __post_init__(self) -> None:
        if self.metadata is not None and not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


class LastWordsNoteAtom(PersistAtom[LastWordsNote]):
    """Persists ``LastWordsNote``s through ``persist``, one at a time by default, off the caller's path.

    A thin wrapper around an ``EphemeralWorkCoordinator`` whose body is ``persist``: a note whose
    ``persist`` raises is recorded as a failed operation (``get_failed()``, ``total_failed``) and the
    next notes are persisted as usual. ``try_enqueue`` serves sync callers such as
    ``operation_finalized`` handlers: when the coordinator has no room, the note waits in a bounded
    backlog (``max_backlog``) that a single task feeds into it in order; only beyond that is a note
    refused, and counted in ``dropped_count``. Leaving ``async with`` (or ``drain()``) stops intake and
    waits until every accepted note has been handled.

    Args:
        persist: ``async def persist(note)``.
        options: Coordinator options, used as given; the default is ``max_concurrency=1``,
            ``max_tracked_operations=64``, ``max_operation_lifetime=30`` seconds.
        max_backlog: How many notes ``try_enqueue`` may hold while the coordinator is full.

    Example:
        >>> async with LastWordsNoteAtom(repository.save) as notes:
        ...     def on_finalized(snapshot):
        ...         first = snapshot.signals[0].signal if snapshot.signals else None
        ...         notes.try_enqueue(LastWordsNote(snapshot.operation_id, snapshot.key, first, utc_now()))
        ...     coordinator.operation_finalized.connect(on_finalized)
    """

    item_name = "note"
