"""ScheduledTasksAtom: cron occurrences turned into durable tasks, with an explicit misfire policy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from ephemeral.core.lowlevel import TaskGroupOwner, TimeBase, loop_clock, time_until, to_seconds

from ._definition import ScheduledTaskDefinition
from ._durable import DurableTaskAtom
from ._store import DurableTask

__all__ = ("ScheduledTasksAtom", "ScheduledTasksOptions")

_Self = TypeVar("_Self", bound="ScheduledTasksAtom")
_log = logging.getLogger("ephemeral.atoms.scheduledtasks")
_MISFIRE = ("catch_up", "latest", "skip")
_EARLY = timedelta(milliseconds=1)
_BURST = 1000  # occurrences of one schedule handled per wake-up; more wait for the next (immediate) one


@dataclass(frozen=True, kw_only=True)
class ScheduledTasksOptions:
    """How a ``ScheduledTasksAtom`` reads time and treats occurrences it sees late.

    Attributes:
        poll_interval: The longest sleep between reads of ``clock`` (seconds or timedelta). The scheduler
            wakes at the next due occurrence or after this, whichever is first: a guard against wall-clock
            jumps, not a busy poll.
        clock: ``clock()`` -> the current aware UTC datetime. None: the event loop's clock mapped onto
            UTC at start, so virtual time drives the schedule in tests.
        misfire: What happens to occurrences seen more than ``misfire_grace`` after they were due (the
            process was down, or the loop blocked): ``"catch_up"`` runs every one of them, in order;
            ``"latest"`` runs only the most recent and skips the rest; ``"skip"`` runs none of them. Every
            skipped occurrence is signalled as ``schedule.missed:{name}``.
        misfire_grace: How late an occurrence may be seen and still count as on time.

    Raises:
        ValueError: ``poll_interval`` <= 0, ``misfire_grace`` < 0, or an unknown ``misfire``.
        TypeError: ``clock`` is not callable.
    """

    poll_interval: float | timedelta = 60.0
    clock: Callable[[], datetime] | None = None
    misfire: Literal["catch_up", "latest", "skip"] = "catch_up"
    misfire_grace: float | timedelta = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "poll_interval", to_seconds(self.poll_interval, "poll_interval"))
        object.__setattr__(self, "misfire_grace", to_seconds(self.misfire_grace, "misfire_grace", allow_zero=True))
        if self.clock is not None and not callable(self.clock):
            raise TypeError(f"clock must be a callable returning an aware UTC datetime, got {self.clock!r}")
        if self.misfire not in _MISFIRE:
            raise ValueError(f"misfire must be one of {', '.join(map(repr, _MISFIRE))}, got {self.misfire!r}")


class ScheduledTasksAtom(TaskGroupOwner):
    """Fires cron schedules into a ``DurableTaskAtom``: each occurrence becomes one ``DurableTask``.

    ``async with`` runs it. At start each schedule resumes from the latest occurrence its store holds
    (occurrences missed while the process was down then follow the misfire policy) or, with no history,
    from now; ``run_on_startup`` also fires once at start (``scheduled_at`` is the start, to the second).
    The scheduler sleeps until the next due occurrence or ``poll_interval``, whichever comes first. Each
    occurrence the store accepts is signalled as ``schedule.fired:{name}``; one it already held (another
    process fired it) is not fired again. The atom does not close the durable atom it feeds.

    Args:
        durable: The atom that stores and runs the tasks.
        definitions: One or more schedules (unique names).
        options: Poll interval, clock and misfire policy.

    Raises:
        TypeError: ``durable`` is not a ``DurableTaskAtom`` or a definition is not a ``ScheduledTaskDefinition``.
        ValueError: No definitions, or two with the same name.
        RuntimeError: On entering, when ``durable`` has not been entered (is not running).
    """

    def __init__(
        self,
        durable: DurableTaskAtom,
        definitions: Iterable[ScheduledTaskDefinition],
        options: ScheduledTasksOptions | None = None,
    ) -> None:
        if not isinstance(durable, DurableTaskAtom):
            raise TypeError(f"durable must be a DurableTaskAtom, got {durable!r}")
        if isinstance(definitions, (str, bytes)) or not isinstance(definitions, Iterable):
            raise TypeError(f"definitions must be an iterable of ScheduledTaskDefinition, got {definitions!r}")
        self._definitions = list(definitions)
        if not self._definitions:
            raise ValueError("definitions must hold at least one ScheduledTaskDefinition")
        names: set[str] = set()
        for definition in self._definitions:
            if not isinstance(definition, ScheduledTaskDefinition):
                raise TypeError(f"definitions must hold ScheduledTaskDefinition items, got {definition!r}")
            if definition.name in names:
                raise ValueError(f"definitions holds two schedules named {definition.name!r}")
            names.add(definition.name)
        if options is None:
            options = ScheduledTasksOptions()
        elif not isinstance(options, ScheduledTasksOptions):
            raise TypeError(f"options must be ScheduledTasksOptions, got {options!r}")
        self.options = options
        self._durable = durable
        self._poll = float(options.poll_interval)  # type: ignore[arg-type]  # normalised to seconds
        self._grace = timedelta(seconds=float(options.misfire_grace))  # type: ignore[arg-type]
        self._now: Callable[[], datetime] = options.clock or datetime.now  # replaced at start
        self._cursors: dict[str, datetime] = {}
        self._next: dict[str, datetime] = {}
        self._tg: TaskGroup | None = None
        self._wake_count = 0

    @property
    def definitions(self) -> list[ScheduledTaskDefinition]:
        """The schedules, in the order given."""
        return list(self._definitions)

    @property
    def wake_count(self) -> int:
        """How many times the scheduler has woken up and read the clock since it started."""
        return self._wake_count

    def next_runs(self) -> dict[str, datetime]:
        """Each schedule's next occurrence (aware UTC), by name; empty before start."""
        return dict(self._next)

    async def _on_enter(self, tg: TaskGroup) -> None:
        if not self._durable._open:
            raise RuntimeError(
                "enter the DurableTaskAtom first: `async with DurableTaskAtom(handler) as durable, "
                "ScheduledTasksAtom(durable, definitions):`"
            )
        clock = self.options.clock
        self._now = clock if clock is not None else TimeBase(loop_clock()).now
        self._tg = tg
        await tg.start(self._run)

    def _read_clock(self) -> datetime:
        now = self._now()
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise TypeError(f"clock() must return an aware datetime, got {now!r}")
        return now.astimezone(timezone.utc)

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        now = self._read_clock()
        store = self._durable.store
        for definition in self._definitions:
            last = await store.last_scheduled(definition.name)
            self._cursors[definition.name] = now if last is None else last
        await self._fire_due(now)
        for definition in self._definitions:
            if definition.run_on_startup:
                at = now.replace(microsecond=0)
                await self._fire(definition, at)
                self._cursors[definition.name] = max(self._cursors[definition.name], at)
        task_status.started()
        while True:
            soonest = min(self._next.values())
            delay = min(self._poll, max(0.0, (soonest - self._read_clock()).total_seconds()))
            await anyio.sleep(time_until(delay, 0.0))
            self._wake_count += 1
            await self._fire_due(self._read_clock())

    async def _fire_due(self, now: datetime) -> None:
        """Fire (or skip, as the policy says) every occurrence due by ``now``, oldest first."""
        for definition in self._definitions:
            name = definition.name
            due: list[datetime] = []
            occurrence = definition.next_occurrence(self._cursors[name])
            horizon = now + _EARLY  # a wake-up a rounding error early still fires what it woke for
            while occurrence <= horizon and len(due) < _BURST:
                due.append(occurrence)
                occurrence = definition.next_occurrence(occurrence)
            more = occurrence <= horizon  # the burst is full: later due occurrences wait for the next pass
            self._next[name] = now if more else occurrence
            late = [o for o in due if now - o > self._grace]
            policy = self.options.misfire
            if policy == "catch_up" or not late:
                missed: set[datetime] = set()
            elif policy == "latest":
                missed = set(late) if more else set(late) - {due[-1]}  # the latest is in a later burst
            else:
                missed = set(late)
            for at in due:
                if at in missed:
                    self._durable.signals.emit(f"schedule.missed:{name}", key=definition.key or name)
                    _log.info("schedule %r missed its occurrence at %s (misfire=%s)", name, at.isoformat(), policy)
                elif not await self._fire(definition, at):
                    self._next[name] = now + timedelta(seconds=self._poll)  # try again at the next wake-up
                    break
                self._cursors[name] = at

    async def _fire(self, definition: ScheduledTaskDefinition, at: datetime) -> bool:
        """Hand the occurrence at ``at`` to the durable atom; False when that failed (tried again later)."""
        task = DurableTask(
            definition.name, definition.signal, at, definition.key, definition.payload, definition.description
        )
        try:
            accepted = await self._durable.enqueue(task)
        except Exception:
            _log.exception("schedule %r could not store its occurrence at %s", definition.name, at.isoformat())
            self._durable.signals.emit(f"schedule.failed:{definition.name}", key=definition.key or definition.name)
            return False
        if accepted:
            self._durable.signals.emit(f"schedule.fired:{definition.name}", key=definition.key or definition.name)
        return True
