"""SqliteSingleWriterOptions: defaults, normalised durations, and checks naming the field."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from ephemeral.sqlite.singlewriter import SqliteSingleWriterOptions


def test_defaults() -> None:
    """The defaults are the original's (durations in seconds), plus four read connections."""
    options = SqliteSingleWriterOptions()
    assert dataclasses.asdict(options) == {
        "cache_size_limit": 1000,
        "default_cache_duration": 300.0,
        "hot_key_extension": 1800.0,
        "hot_access_threshold": 3,
        "max_tracked_writes": 128,
        "sample_rate": 1,
        "busy_timeout": 10.0,
        "enable_write_ahead_logging": True,
        "enforce_foreign_keys": True,
        "read_connections": 4,
    }


def test_durations_are_normalised_to_seconds() -> None:
    """A timedelta is stored as float seconds, so equal durations compare equal."""
    options = SqliteSingleWriterOptions(
        default_cache_duration=timedelta(minutes=5), hot_key_extension=timedelta(hours=1), busy_timeout=0
    )
    assert options.default_cache_duration == 300.0 and options.hot_key_extension == 3600.0
    assert options.busy_timeout == 0.0
    assert options == SqliteSingleWriterOptions(hot_key_extension=3600, busy_timeout=timedelta(0))


def test_keyword_only_and_frozen() -> None:
    """Options are keyword-only and immutable."""
    with pytest.raises(TypeError):
        SqliteSingleWriterOptions(1000)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SqliteSingleWriterOptions().sample_rate = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("cache_size_limit", 0, ValueError),
        ("cache_size_limit", 1.5, TypeError),
        ("hot_access_threshold", 0, ValueError),
        ("max_tracked_writes", 0, ValueError),
        ("sample_rate", 0, ValueError),
        ("sample_rate", True, TypeError),
        ("read_connections", 0, ValueError),
        ("read_connections", "4", TypeError),
        ("default_cache_duration", 0, ValueError),
        ("default_cache_duration", -1, ValueError),
        ("default_cache_duration", "5m", TypeError),
        ("hot_key_extension", timedelta(0), ValueError),
        ("busy_timeout", -0.5, ValueError),
        ("busy_timeout", timedelta(days=30), ValueError),
        ("enable_write_ahead_logging", 1, TypeError),
        ("enforce_foreign_keys", None, TypeError),
    ],
)
def test_bad_values_name_the_field(field: str, value: Any, error: type[Exception]) -> None:
    """Each out-of-range or mistyped field raises at construction, and the message names it."""
    with pytest.raises(error, match=field):
        SqliteSingleWriterOptions(**{field: value})
