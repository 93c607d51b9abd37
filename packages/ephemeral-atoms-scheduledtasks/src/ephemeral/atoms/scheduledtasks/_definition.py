"""Schedule definitions: cron text (croniter), an IANA zone, DST-correct next occurrences, JSON files."""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

__all__ = ("CronFormat", "ScheduledTaskDefinition")

_UTC = timezone.utc
_SEARCH_BACK = timedelta(hours=3)  # wider than any zone's DST shift


class CronFormat(str, enum.Enum):
    """How many fields a cron expression has: ``STANDARD`` five, ``INCLUDE_SECONDS`` six with seconds first."""

    STANDARD = "Standard"
    INCLUDE_SECONDS = "IncludeSeconds"


def _parse_format(value: object, task: str) -> CronFormat | None:
    if value is None or isinstance(value, CronFormat):
        return value
    if not isinstance(value, str):
        raise TypeError(f"format of scheduled task {task!r} must be a str, a CronFormat or None, got {value!r}")
    if isinstance(value, str):
        for member in CronFormat:
            if value.lower() in (member.value.lower(), member.name.lower(), f"cronformat.{member.value.lower()}"):
                return member
    raise ValueError(
        f"format of scheduled task {task!r} must be 'Standard', 'IncludeSeconds' or a CronFormat, got {value!r}"
    )


@dataclass(frozen=True)
class ScheduledTaskDefinition:
    """One schedule: a cron expression, evaluated in an IANA time zone, that raises ``signal``.

    Everything is validated at construction: a bad cron expression, an unknown zone or an unknown format
    raises ValueError naming the field and the task; a field of the wrong type raises TypeError.

    Attributes:
        name: The schedule's name (``schedule.fired:{name}``, the task's name).
        cron: Five fields (minute first), or six with seconds first.
        signal: The signal each of its tasks raises when it runs.
        key: An optional key carried by its tasks and their signals.
        payload: Any JSON value carried by its tasks (filenames, URLs, ...).
        description: Free text carried by its tasks.
        time_zone: An IANA zone name such as ``"Europe/London"``; None means UTC.
        format: ``"Standard"``, ``"IncludeSeconds"`` or a ``CronFormat``; None means five fields are
            standard and six are seconds first.
        run_on_startup: Also fire once when the scheduler starts.
    """

    name: str
    cron: str
    signal: str
    key: str | None = None
    payload: Any = None
    description: str | None = None
    time_zone: str | None = None
    format: CronFormat | str | None = None
    run_on_startup: bool = False
    _zone: ZoneInfo | timezone = field(init=False, repr=False, compare=False)
    _expression: str = field(init=False, repr=False, compare=False)
    _folds_twice: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name of a scheduled task must be a str, got {self.name!r}")
        if not self.name.strip():
            raise ValueError(f"name of a scheduled task must not be blank, got {self.name!r}")
        task = self.name
        for attribute in ("cron", "signal"):
            value = getattr(self, attribute)
            if not isinstance(value, str):
                raise TypeError(f"{attribute} of scheduled task {task!r} must be a str, got {value!r}")
            if not value.strip():
                raise ValueError(f"{attribute} of scheduled task {task!r} must not be blank, got {value!r}")
        for attribute in ("key", "description", "time_zone"):
            value = getattr(self, attribute)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{attribute} of scheduled task {task!r} must be a str or None, got {value!r}")
        if not isinstance(self.run_on_startup, bool):
            raise TypeError(f"run_on_startup of scheduled task {task!r} must be a bool, got {self.run_on_startup!r}")
        cron_format = _parse_format(self.format, task)
        object.__setattr__(self, "format", cron_format)
        fields = self.cron.split()
        if cron_format is None:
            cron_format = CronFormat.STANDARD if len(fields) == 5 else CronFormat.INCLUDE_SECONDS
        expected = 5 if cron_format is CronFormat.STANDARD else 6
        if len(fields) != expected:
            raise ValueError(
                f"cron of scheduled task {task!r} must have {expected} fields for format {cron_format.value}, "
                f"got {self.cron!r}"
            )
        # croniter reads a sixth field as seconds at the end; ours come first.
        expression = " ".join(fields[1:] + fields[:1]) if expected == 6 else " ".join(fields)
        try:
            croniter(expression, datetime(2000, 1, 1))
        except (CroniterError, ValueError, KeyError) as error:
            raise ValueError(
                f"cron of scheduled task {task!r} is not a valid expression {self.cron!r}: {error}"
            ) from None
        try:  # a date that never comes (February 30th) is only found out by looking for it
            croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
        except CroniterError:
            raise ValueError(f"cron of scheduled task {task!r} never matches a date: {self.cron!r}") from None
        zone: ZoneInfo | timezone = _UTC
        if self.time_zone is not None:
            try:
                zone = ZoneInfo(self.time_zone)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    f"time_zone of scheduled task {task!r} is not a known IANA zone: {self.time_zone!r}"
                ) from None
        try:
            json.dumps(self.payload)
        except (TypeError, ValueError) as error:
            raise ValueError(f"payload of scheduled task {task!r} must be a JSON value: {error}") from None
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_expression", expression)
        # A wildcard hour is an interval job: it fires in both passes of a repeated (fall-back) hour.
        hour = fields[2] if expected == 6 else fields[1]
        object.__setattr__(self, "_folds_twice", hour.startswith("*"))

    @property
    def cron_format(self) -> CronFormat:
        """The format in effect (given, or inferred from the number of fields)."""
        return CronFormat.STANDARD if len(self.cron.split()) == 5 else CronFormat.INCLUDE_SECONDS

    def next_occurrence(self, after: datetime) -> datetime:
        """The first occurrence strictly after ``after``, as an aware UTC datetime.

        The expression is matched against wall-clock time in ``time_zone``. On a spring-forward day a time
        that does not exist (02:30 when clocks jump from 02:00 to 03:00) fires once, at the jump; on a
        fall-back day a time that happens twice (01:30) fires once, at its first pass, unless the hour field
        is a wildcard (``*/15 * * * *`` keeps firing every 15 real minutes through both passes).

        Args:
            after: An aware datetime (any zone); a naive one is taken as UTC.

        Raises:
            TypeError: ``after`` is not a datetime.
        """
        if not isinstance(after, datetime):
            raise TypeError(f"after must be a datetime, got {after!r}")
        after = after.replace(tzinfo=_UTC) if after.tzinfo is None else after.astimezone(_UTC)
        zone = self._zone
        # A wall time c happens at c - offset, for one of the zone's offsets near that moment: start
        # from the smallest offset near ``after`` and stop once no later wall time can beat the best.
        start = after.replace(tzinfo=None) + min(_offsets_near(zone, after))
        candidates = croniter(self._expression, start)
        best: datetime | None = None
        stop = datetime.max
        while True:
            local: datetime = candidates.get_next(datetime)
            if local > stop:
                assert best is not None
                return best
            for instant in self._instants(local):
                if instant > after and (best is None or instant < best):
                    best = instant
                    stop = best.replace(tzinfo=None) + max(_offsets_near(zone, best))

    def _instants(self, local: datetime) -> list[datetime]:
        """The UTC instants at which the naive wall time ``local`` happens in the zone (0, 1 or 2 of them)."""
        zone = self._zone
        first = local.replace(tzinfo=zone, fold=0).astimezone(_UTC)
        second = local.replace(tzinfo=zone, fold=1).astimezone(_UTC)
        if first == second:
            return [first]
        if first.astimezone(zone).replace(tzinfo=None) == local:  # happens twice (fall back)
            return [first, second] if self._folds_twice else [first]
        return [_transition(zone, min(first, second), max(first, second))]  # skipped (spring forward)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "<json>") -> list[ScheduledTaskDefinition]:
        """Definitions from JSON text: a list of objects with camelCase or snake_case keys.

        Keys: ``name``, ``cron``, ``signal`` (required), ``key``, ``payload``, ``description``,
        ``timeZone``/``time_zone``, ``format`` (``"Standard"`` or ``"IncludeSeconds"``),
        ``runOnStartup``/``run_on_startup``.

        Raises:
            ValueError: Invalid JSON, not a list, an entry that is not an object, an unknown key or an
                invalid field; the message names the source, the entry (index and name) and the field.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: not valid JSON: {error}") from None
        if not isinstance(data, list):
            raise ValueError(f"{source}: scheduled tasks must be a JSON list of objects, got {type(data).__name__}")
        return [_from_entry(entry, index, source) for index, entry in enumerate(data)]

    @classmethod
    def load_from_json_file(cls, path: str | os.PathLike[str]) -> list[ScheduledTaskDefinition]:
        """Definitions from a JSON file (see ``from_json``); errors name the file, the entry and the field.

        Raises:
            ValueError: The file's content is invalid.
            OSError: The file cannot be read.
        """
        with open(path, encoding="utf-8") as file:
            text = file.read()
        return cls.from_json(text, source=os.fspath(path))


_KEYS = {
    "name": "name",
    "cron": "cron",
    "signal": "signal",
    "key": "key",
    "payload": "payload",
    "description": "description",
    "timezone": "time_zone",
    "time_zone": "time_zone",
    "format": "format",
    "runonstartup": "run_on_startup",
    "run_on_startup": "run_on_startup",
}


def _from_entry(entry: object, index: int, source: str) -> ScheduledTaskDefinition:
    where = f"{source}: entry {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be an object, got {type(entry).__name__}")
    name = entry.get("name")
    if isinstance(name, str):
        where = f"{where} ({name!r})"
    arguments: dict[str, Any] = {}
    for key, value in entry.items():
        field_name = _KEYS.get(key.lower()) if isinstance(key, str) else None
        if field_name is None:
            raise ValueError(f"{where}: unknown field {key!r} (known: {', '.join(sorted(set(_KEYS.values())))})")
        arguments[field_name] = value
    for required in ("name", "cron", "signal"):
        if required not in arguments:
            raise ValueError(f"{where}: field {required!r} is required")
    try:
        return ScheduledTaskDefinition(**arguments)
    except (TypeError, ValueError) as error:  # a file's bad field is a ValueError, whatever its kind
        raise ValueError(f"{where}: {error}") from None


def _offsets_near(zone: ZoneInfo | timezone, moment: datetime) -> list[timedelta]:
    """The zone's UTC offsets within a few hours of ``moment`` (one value away from any DST change)."""
    return [
        (moment + shift).astimezone(zone).utcoffset() or timedelta()
        for shift in (-_SEARCH_BACK, timedelta(), _SEARCH_BACK)
    ]


def _transition(zone: ZoneInfo | timezone, low: datetime, high: datetime) -> datetime:
    """The first UTC instant in ``(low, high]`` with ``high``'s UTC offset: the end of a skipped gap."""
    offset = high.astimezone(zone).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if datetime.fromtimestamp(middle, _UTC).astimezone(zone).utcoffset() == offset:
            hi = middle
        else:
            lo = middle
    return datetime.fromtimestamp(hi, _UTC)
