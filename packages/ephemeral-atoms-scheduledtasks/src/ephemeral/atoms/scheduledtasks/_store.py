"""Durable tasks and where they wait: the store protocol and the in-memory store."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = ("DurableTask", "InMemoryTaskStore", "StoredTask", "TaskStore", "prepare_or_close")

_UTC = timezone.utc


@dataclass(frozen=True)
class DurableTask:
    """One piece of scheduled work: which schedule, which signal, which occurrence, and its metadata.

    A task is identified by ``(name, scheduled_at)``: a store accepts each such pair once.

    Attributes:
        name: The schedule's (or the task's) name.
        signal: The signal raised when it runs.
        scheduled_at: The occurrence it stands for, as an aware UTC datetime (not the time it fired).
        key: An optional key, carried by its signals.
        payload: Any JSON value.
        description: Free text.
    """

    name: str
    signal: str
    scheduled_at: datetime
    key: str | None = None
    payload: Any = None
    description: str | None = None

    def __post_init__(self) -> None:
        for attribute in ("name", "signal"):
            value = getattr(self, attribute)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{attribute} must be a non-empty string, got {value!r}")
        if not isinstance(self.scheduled_at, datetime):
            raise TypeError(f"scheduled_at must be a datetime, got {self.scheduled_at!r}")
        if self.scheduled_at.tzinfo is None:
            raise ValueError(f"scheduled_at must be timezone-aware, got {self.scheduled_at!r}")
        object.__setattr__(self, "scheduled_at", self.scheduled_at.astimezone(_UTC))
        for attribute in ("key", "description"):
            value = getattr(self, attribute)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{attribute} must be a string or None, got {value!r}")

    def payload_json(self) -> str:
        """The payload as JSON text (ValueError naming the task when it is not a JSON value)."""
        try:
            return json.dumps(self.payload)
        except (TypeError, ValueError) as error:
            raise ValueError(f"payload of task {self.name!r} must be a JSON value: {error}") from None


class StoredTask(NamedTuple):
    """A task claimed from a store: its row id, the task, and which attempt this is (1 for the first run)."""

    id: int
    task: DurableTask
    attempt: int


@runtime_checkable
class TaskStore(Protocol):
    """Where a ``DurableTaskAtom`` keeps its tasks. Every method is called from the atom's event loop.

    Attributes:
        lease: Seconds a claim lasts unless renewed (None: claims never expire, one process per store).
        poll_interval: Seconds between looks for work added by other processes (None: only this one adds).
    """

    lease: float | None
    poll_interval: float | None

    async def open(self) -> None:
        """Prepare the store (create tables); tasks left running by a dead single-process owner are requeued."""

    async def close(self) -> None:
        """Release connections. Stored tasks stay."""

    async def add(self, task: DurableTask, now: datetime) -> bool:
        """Store ``task``, durably before returning; False when ``(name, scheduled_at)`` is already stored."""

    async def claim(self, worker: str, now: datetime) -> StoredTask | None:
        """Take the oldest task that is due for ``worker``, or None."""

    async def next_due(self, now: datetime) -> float | None:
        """Seconds until a stored task may become claimable (0 if one is), None when none is waiting."""

    async def renew(self, stored: StoredTask, worker: str) -> bool:
        """Extend ``worker``'s lease on ``stored``; False when the lease was lost."""

    async def finish(self, stored: StoredTask, worker: str, now: datetime) -> bool:
        """Mark ``stored`` done (it never runs again); False when ``worker`` no longer held it."""

    async def fail(self, stored: StoredTask, worker: str, now: datetime, retry_after: float | None, error: str) -> bool:
        """Record a failed attempt: run again after ``retry_after`` seconds, or failed for good when None."""

    async def last_scheduled(self, name: str) -> datetime | None:
        """The latest ``scheduled_at`` stored for schedule ``name``, or None."""


async def prepare_or_close(store: TaskStore, prepare: Awaitable[object]) -> None:
    """Await ``prepare``, the set-up of a store just connected; when it fails, close the store and raise."""
    try:
        await prepare
    except BaseException:
        await store.close()
        raise


class InMemoryTaskStore:
    """Tasks in this process's memory: fast, and lost when the process ends (the default store).

    Tasks survive the atom, not the process: give the same store to a new ``DurableTaskAtom`` and it
    picks up where the last one stopped, including tasks that were running when it closed.
    """

    lease: float | None = None
    poll_interval: float | None = None

    def __init__(self) -> None:
        self._waiting: list[tuple[datetime, int, StoredTask]] = []
        self._running: dict[int, StoredTask] = {}
        self._identities: set[tuple[str, datetime]] = set()
        self._last: dict[str, datetime] = {}
        self._ids = itertools.count(1)

    async def open(self) -> None:
        """Requeue tasks that were running when the last atom using this store closed."""
        for stored in self._running.values():
            heapq.heappush(self._waiting, (datetime.min.replace(tzinfo=_UTC), stored.id, stored))
        self._running.clear()

    async def close(self) -> None:
        """Nothing to release."""

    async def add(self, task: DurableTask, now: datetime) -> bool:
        """Keep ``task``; False when the same ``(name, scheduled_at)`` is waiting or running."""
        identity = (task.name, task.scheduled_at)
        if identity in self._identities:
            return False
        self._identities.add(identity)
        last = self._last.get(task.name)
        if last is None or task.scheduled_at > last:
            self._last[task.name] = task.scheduled_at
        task_id = next(self._ids)
        heapq.heappush(self._waiting, (now, task_id, StoredTask(task_id, task, 1)))
        return True

    async def claim(self, worker: str, now: datetime) -> StoredTask | None:
        """The oldest waiting task that is due, or None."""
        if not self._waiting or self._waiting[0][0] > now:
            return None
        stored = heapq.heappop(self._waiting)[2]
        self._running[stored.id] = stored
        return stored

    async def next_due(self, now: datetime) -> float | None:
        """Seconds until the first waiting task is due, or None."""
        if not self._waiting:
            return None
        return max(0.0, (self._waiting[0][0] - now).total_seconds())

    async def renew(self, stored: StoredTask, worker: str) -> bool:
        """Claims do not expire here."""
        return stored.id in self._running

    async def finish(self, stored: StoredTask, worker: str, now: datetime) -> bool:
        """Forget the task."""
        if self._running.pop(stored.id, None) is None:
            return False
        self._identities.discard((stored.task.name, stored.task.scheduled_at))
        return True

    async def fail(self, stored: StoredTask, worker: str, now: datetime, retry_after: float | None, error: str) -> bool:
        """Wait ``retry_after`` seconds before the next attempt, or forget the task."""
        if retry_after is None:
            return await self.finish(stored, worker, now)
        if self._running.pop(stored.id, None) is None:
            return False
        retry = stored._replace(attempt=stored.attempt + 1)
        heapq.heappush(self._waiting, (now + timedelta(seconds=retry_after), stored.id, retry))
        return True

    async def last_scheduled(self, name: str) -> datetime | None:
        """The latest occurrence of ``name`` this store was given."""
        return self._last.get(name)
