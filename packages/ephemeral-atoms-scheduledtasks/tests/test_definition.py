"""ScheduledTaskDefinition: validation, next occurrences across DST, JSON files good and bad."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from croniter import croniter

from ephemeral.atoms.scheduledtasks import CronFormat, ScheduledTaskDefinition

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def occurrences(definition: ScheduledTaskDefinition, start: datetime, end: datetime) -> list[datetime]:
    found = []
    at = definition.next_occurrence(start)
    while at <= end:
        found.append(at)
        at = definition.next_occurrence(at)
    return found


def test_every_five_minutes_in_utc() -> None:
    d = ScheduledTaskDefinition("five", "*/5 * * * *", "tick")
    assert d.next_occurrence(utc(2026, 1, 1, 12, 0)) == utc(2026, 1, 1, 12, 5)
    assert d.next_occurrence(utc(2026, 1, 1, 12, 3, 59)) == utc(2026, 1, 1, 12, 5)
    assert d.cron_format is CronFormat.STANDARD


def test_six_fields_are_seconds_first() -> None:
    d = ScheduledTaskDefinition("secs", "15 * * * * *", "tick")
    assert d.cron_format is CronFormat.INCLUDE_SECONDS
    assert d.next_occurrence(utc(2026, 1, 1, 12, 0, 0)) == utc(2026, 1, 1, 12, 0, 15)
    assert d.next_occurrence(utc(2026, 1, 1, 12, 0, 15)) == utc(2026, 1, 1, 12, 1, 15)
    explicit = ScheduledTaskDefinition("secs", "*/10 * * * * *", "tick", format="IncludeSeconds")
    assert explicit.format is CronFormat.INCLUDE_SECONDS
    assert explicit.next_occurrence(utc(2026, 1, 1, 12, 0, 1)) == utc(2026, 1, 1, 12, 0, 10)


def test_naive_after_is_utc() -> None:
    d = ScheduledTaskDefinition("five", "*/5 * * * *", "tick")
    assert d.next_occurrence(datetime(2026, 1, 1, 12, 0)) == utc(2026, 1, 1, 12, 5)


LONDON = "Europe/London"  # 2026: clocks go forward 29 March 01:00 GMT, back 25 October 02:00 BST


def test_london_spring_forward_skipped_time_runs_once_at_the_jump() -> None:
    d = ScheduledTaskDefinition("night", "30 1 * * *", "tick", time_zone=LONDON)
    runs = occurrences(d, utc(2026, 3, 27, 12), utc(2026, 3, 31, 12))
    # 01:30 does not exist on 29 March: it runs once, at 02:00 BST (01:00 UTC).
    assert runs == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]


def test_london_fall_back_repeated_time_runs_once() -> None:
    d = ScheduledTaskDefinition("night", "30 1 * * *", "tick", time_zone=LONDON)
    runs = occurrences(d, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert runs == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # croniter 7.0 alone, given an aware start, fires this one twice that day (00:30 and 01:30 UTC):
    # next_occurrence walks wall-clock candidates itself and keeps the first pass only.
    raw = croniter("30 1 * * *", datetime(2026, 10, 24, 12, tzinfo=d._zone))
    raw_runs = [raw.get_next(datetime).astimezone(UTC) for _ in range(3)]
    assert runs[0] in raw_runs and len([r for r in runs if r.date() == runs[0].date()]) == 1


def test_wildcard_hour_keeps_real_intervals_across_both_changes() -> None:
    d = ScheduledTaskDefinition("half", "*/30 * * * *", "tick", time_zone=LONDON)
    back = occurrences(d, utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 45))
    assert back == [utc(2026, 10, 25, 0, 0) + timedelta(minutes=30 * i) for i in range(6)]
    forward = occurrences(d, utc(2026, 3, 28, 23, 45), utc(2026, 3, 29, 2, 45))
    # 01:00-02:00 local does not exist: 01:00 and 01:30 collapse into one run at the jump.
    assert forward == [
        utc(2026, 3, 29, 0, 0),
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 2, 0),
        utc(2026, 3, 29, 2, 30),
    ]


def test_new_york_two_thirty_on_spring_forward_runs_once() -> None:
    d = ScheduledTaskDefinition("ny", "30 2 * * *", "tick", time_zone="America/New_York")
    runs = occurrences(d, utc(2026, 3, 7, 12), utc(2026, 3, 10, 12))  # 8 March 2026 02:00 EST -> 03:00 EDT
    assert runs == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]
    fall = ScheduledTaskDefinition("ny", "30 1 * * *", "tick", time_zone="America/New_York")
    runs = occurrences(fall, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))  # 1 November: 01:30 happens twice
    assert runs == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "* * * * *", "format": "IncludeSeconds"}, "cron"),
        ({"cron": "* * * * * * *"}, "cron"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"format": "Hourly"}, "format"),
        ({"signal": ""}, "signal"),
        ({"payload": {1, 2}}, "payload"),
        ({"cron": "0 0 30 2 *"}, "cron"),  # February 30th never comes
        ({"cron": "0 0 0 31 4,6 *"}, "cron"),
    ],
)
def test_bad_fields_name_the_field_and_the_task(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"name": "nightly", "cron": "0 0 * * *", "signal": "s", **kwargs}
    with pytest.raises(ValueError, match=rf"^{field} of scheduled task 'nightly'"):
        ScheduledTaskDefinition(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"run_on_startup": "yes"}, "run_on_startup"),
        ({"key": 5}, "key"),
        ({"cron": 5}, "cron"),
        ({"signal": None}, "signal"),
        ({"time_zone": 0}, "time_zone"),
        ({"format": 6}, "format"),
    ],
)
def test_fields_of_the_wrong_type_raise_type_error_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"name": "nightly", "cron": "0 0 * * *", "signal": "s", **kwargs}
    with pytest.raises(TypeError, match=rf"^{field} of scheduled task 'nightly'"):
        ScheduledTaskDefinition(**arguments)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name of a scheduled task must be a str"):
        ScheduledTaskDefinition(7, "0 0 * * *", "s")  # type: ignore[arg-type]


def test_format_accepts_the_enum_and_its_names() -> None:
    for value in (CronFormat.STANDARD, "Standard", "standard", "CronFormat.Standard"):
        assert ScheduledTaskDefinition("a", "0 0 * * *", "s", format=value).format is CronFormat.STANDARD


def test_json_file_camel_and_snake_case(tmp_path: Path) -> None:
    path = tmp_path / "schedules.json"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "daily",
                    "cron": "0 0 * * *",
                    "signal": "schedule.daily",
                    "key": "daily",
                    "description": "Daily signal",
                    "runOnStartup": True,
                    "payload": {"type": "daily"},
                    "timeZone": "Europe/London",
                },
                {
                    "name": "fast",
                    "cron": "*/10 * * * * *",
                    "signal": "tick",
                    "run_on_startup": False,
                    "format": "IncludeSeconds",
                },
            ]
        )
    )
    daily, fast = ScheduledTaskDefinition.load_from_json_file(path)
    assert daily == ScheduledTaskDefinition(
        "daily",
        "0 0 * * *",
        "schedule.daily",
        key="daily",
        payload={"type": "daily"},
        description="Daily signal",
        time_zone="Europe/London",
        run_on_startup=True,
    )
    assert fast.format is CronFormat.INCLUDE_SECONDS and not fast.run_on_startup


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"schedules\.json: not valid JSON"),
        ('{"name": "a"}', r"schedules\.json: scheduled tasks must be a JSON list"),
        ("[1]", r"schedules\.json: entry 0: must be an object"),
        ('[{"name": "a", "cron": "0 0 * * *"}]', r"schedules\.json: entry 0 \('a'\): field 'signal' is required"),
        (
            '[{"name": "a", "cron": "0 0 * * *", "signal": "s"},'
            ' {"name": "b", "cron": "0 0 * * *", "signal": "s", "timeZone": "Nowhere/City"}]',
            r"schedules\.json: entry 1 \('b'\): time_zone of scheduled task 'b'",
        ),
        ('[{"name": "a", "cron": "0 0 * * *", "signal": "s", "cronn": 1}]', r"entry 0 \('a'\): unknown field 'cronn'"),
        ('[{"name": "a", "cron": "0 25 * * *", "signal": "s"}]', r"entry 0 \('a'\): cron of scheduled task 'a'"),
        (
            '[{"name": "a", "cron": "0 0 * * *", "signal": "s", "runOnStartup": "yes"}]',
            r"entry 0 \('a'\): run_on_startup of scheduled task 'a' must be a bool",
        ),
        ('[{"name": 3, "cron": "0 0 * * *", "signal": "s"}]', r"entry 0: name of a scheduled task must be a str"),
    ],
)
def test_json_errors_name_file_entry_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "schedules.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        ScheduledTaskDefinition.load_from_json_file(path)


def test_from_json_text() -> None:
    (one,) = ScheduledTaskDefinition.from_json('[{"name": "a", "cron": "0 0 * * *", "signal": "s"}]')
    assert one.name == "a" and one.time_zone is None
