"""Last words: a tiny note about an operation leaving its window, persisted off the hot path."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._coordinator import CoordinatorClosedError, EphemeralWorkCoordinator
from ._lifecycle import close_task_group, open_task_group
from ._operation import EphemeralOperationSnapshot
from ._options import EphemeralOptions

__all__ = ("LastWordsNote", "LastWordsNoteAtom")

_Self = TypeVar("_Self", bound="LastWordsNoteAtom")


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


class LastWordsNoteAtom:
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

    def __init__(
        self,
        persist: Callable[[LastWordsNote], Awaitable[object]],
        options: EphemeralOptions | None = None,
        *,
        max_backlog: int = 1024,
    ) -> None:
        if not callable(persist):
            raise TypeError(f"persist must be an async callable taking a note, got {persist!r}")
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 0:
            raise ValueError(f"max_backlog must be an int >= 0, got {max_backlog!r}")
        if options is None:
            options = EphemeralOptions(max_concurrency=1, max_tracked_operations=64, max_operation_lifetime=30.0)
        self._coordinator: EphemeralWorkCoordinator[LastWordsNote] = EphemeralWorkCoordinator(persist, options)
        self._max_backlog = max_backlog
        self._backlog: deque[LastWordsNote] = deque()
        self._feeder_wake: anyio.Event | None = None
        self._backlog_empty: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._closing = False
        self.dropped_count = 0

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        await self._coordinator.__aenter__()
        try:
            self._tg = tg = await open_task_group()
            tg.start_soon(self._feed)
        except BaseException:
            await self._coordinator.__aexit__(*sys.exc_info())
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        try:
            if exc_type is None:
                await self._flush_backlog()
        finally:
            self._closing = True
            self.dropped_count += len(self._backlog)  # only on an error: nothing left otherwise
            self._backlog.clear()
            await close_task_group(tg)
            await self._coordinator.__aexit__(exc_type, exc, tb)
        return None

    async def drain(self) -> None:
        """Stop accepting notes and wait until every accepted one has been persisted (or has failed)."""
        self._closing = True
        await self._flush_backlog()
        await self._coordinator.drain()

    def complete(self) -> None:
        """Stop accepting notes; accepted ones (the backlog included) are still persisted. Idempotent."""
        self._closing = True
        if not self._backlog:
            self._coordinator.complete()  # else the feeder completes it once the backlog is in

    # -- intake -----------------------------------------------------------------------------------

    async def enqueue(self, note: LastWordsNote) -> int:
        """Accept ``note``, waiting while the coordinator is full; return its operation id.

        Notes from ``try_enqueue`` keep their order among themselves; a note given here does not wait
        behind their backlog.

        Raises:
            CoordinatorClosedError: The atom no longer accepts notes.
        """
        if self._closing:
            raise CoordinatorClosedError("LastWordsNoteAtom has been completed; no new notes are accepted")
        return await self._coordinator.enqueue(note)

    def try_enqueue(self, note: LastWordsNote) -> bool:
        """Accept ``note`` without waiting (for sync callers); False when refused (counted in ``dropped_count``).

        A note that finds the coordinator full waits in the backlog, in order; it is refused only when
        the backlog is full too, or once the atom has stopped accepting notes.
        """
        if not self._closing and not self._backlog and self._coordinator.try_enqueue(note):
            return True
        if self._closing or self._tg is None or len(self._backlog) >= self._max_backlog:
            self.dropped_count += 1
            return False
        self._backlog.append(note)
        wake = self._feeder_wake
        if wake is not None:
            self._feeder_wake = None
            wake.set()
        return True

    async def _feed(self) -> None:
        """Move backlog notes into the coordinator, in order, as room appears."""
        while True:
            try:
                while self._backlog:
                    await self._coordinator.enqueue(self._backlog[0])
                    self._backlog.popleft()
            except CoordinatorClosedError:  # the coordinator was completed or cancelled directly
                self.dropped_count += len(self._backlog)
                self._backlog.clear()
            if self._closing:
                self._coordinator.complete()
            empty = self._backlog_empty
            if empty is not None:
                self._backlog_empty = None
                empty.set()
            self._feeder_wake = wake = anyio.Event()
            await wake.wait()

    async def _flush_backlog(self) -> None:
        while self._backlog:
            if self._backlog_empty is None:
                self._backlog_empty = anyio.Event()
            await self._backlog_empty.wait()

    # -- state ------------------------------------------------------------------------------------

    @property
    def coordinator(self) -> EphemeralWorkCoordinator[LastWordsNote]:
        """The coordinator running ``persist``: its window, counters and ``operation_finalized``."""
        return self._coordinator

    @property
    def backlog_count(self) -> int:
        """Notes accepted by ``try_enqueue`` still waiting for room in the coordinator."""
        return len(self._backlog)

    @property
    def pending_count(self) -> int:
        """Notes accepted and not yet being persisted (the backlog included)."""
        return self._coordinator.pending_count + len(self._backlog)

    @property
    def active_count(self) -> int:
        """Notes being persisted now."""
        return self._coordinator.active_count

    @property
    def total_enqueued(self) -> int:
        """Notes handed to ``persist``'s coordinator."""
        return self._coordinator.total_enqueued

    @property
    def total_completed(self) -> int:
        """Notes persisted."""
        return self._coordinator.total_completed

    @property
    def total_failed(self) -> int:
        """Notes whose ``persist`` raised."""
        return self._coordinator.total_failed

    def get_snapshot(self) -> list[EphemeralOperationSnapshot[Any]]:
        """The recent persist operations, oldest first."""
        return self._coordinator.get_snapshot()

    def get_failed(self) -> list[EphemeralOperationSnapshot[Any]]:
        """The recent persist operations that raised (each snapshot's ``error`` says why)."""
        return self._coordinator.get_failed()
