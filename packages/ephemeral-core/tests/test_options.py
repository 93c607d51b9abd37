"""EphemeralOptions: defaults, immutability, validation and normalisation of every field."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from typing import Any

import pytest

from ephemeral.core import EphemeralOptions, SignalConstraints, SignalSink


def build(field: str, value: object) -> EphemeralOptions:
    """Options with one field set by name."""
    kwargs: dict[str, Any] = {field: value}
    return EphemeralOptions(**kwargs)


async def _async_handler(event: object) -> None:
    return None


def test_defaults() -> None:
    """Every option defaults to the documented value."""
    options = EphemeralOptions()
    assert options.max_concurrency == (os.cpu_count() or 1)
    assert options.max_concurrency_per_key == 1
    assert options.enable_dynamic_concurrency is False
    assert options.max_tracked_operations == 200
    assert options.max_operation_lifetime == 300.0
    assert options.enable_operation_echo is True
    assert options.operation_echo_retention == 60.0
    assert options.operation_echo_capacity == 256
    assert options.enable_fair_scheduling is False
    assert options.fair_scheduling_threshold == 10
    assert options.signals is None
    assert options.on_signal is None
    assert options.on_signal_async is None
    assert options.on_signal_retracted is None
    assert options.on_signal_retracted_async is None
    assert options.max_concurrent_signal_handlers == 4
    assert options.max_queued_signals == 1000
    assert options.signal_constraints is None
    assert options.cancel_on_signals is None
    assert options.defer_on_signals is None
    assert options.resume_on_signals is None
    assert options.defer_check_interval == 0.1
    assert options.max_defer_attempts == 50
    assert options.coordinator_id is None
    assert options.emits is None
    assert options.listens is None


def test_default_drain_signals() -> None:
    """By default a coordinator drains on the drain-all, drain-by-id and drain-by-pattern requests."""
    drain = EphemeralOptions().drain_on_signals
    assert drain is not None
    assert set(drain) == {"coordinator.drain.all", "coordinator.drain.id", "coordinator.drain.pattern"}
    assert len(tuple(drain)) == 3


def test_max_concurrency_defaults_to_one_without_a_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """When os.cpu_count() is unknown the default concurrency is 1, never 0 or None."""
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert EphemeralOptions().max_concurrency == 1


def test_default_concurrency_follows_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default max_concurrency is read from os.cpu_count() when the options are built."""
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    assert EphemeralOptions().max_concurrency == 12


def test_options_are_frozen() -> None:
    """Assigning an option after construction raises FrozenInstanceError."""
    options = EphemeralOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_concurrency = 3  # type: ignore[misc]


def test_options_are_keyword_only() -> None:
    """Options cannot be given positionally."""
    with pytest.raises(TypeError):
        EphemeralOptions(4)  # type: ignore[call-arg]


def test_valid_values_are_kept() -> None:
    """Valid non-default values are stored as given."""
    sink = SignalSink()
    constraints = SignalConstraints(max_depth=3)

    def on_signal(event: object) -> None:
        return None

    options = EphemeralOptions(
        max_concurrency=1,
        max_concurrency_per_key=2,
        enable_dynamic_concurrency=True,
        max_tracked_operations=1,
        max_operation_lifetime=None,
        enable_operation_echo=False,
        operation_echo_retention=0.5,
        operation_echo_capacity=1,
        enable_fair_scheduling=True,
        fair_scheduling_threshold=1,
        signals=sink,
        on_signal=on_signal,
        on_signal_async=_async_handler,
        on_signal_retracted=on_signal,
        on_signal_retracted_async=_async_handler,
        max_concurrent_signal_handlers=1,
        max_queued_signals=1,
        signal_constraints=constraints,
        defer_check_interval=0.001,
        max_defer_attempts=0,
        drain_on_signals=None,
        coordinator_id="ingest",
    )
    assert options.max_concurrency == 1
    assert options.max_concurrency_per_key == 2
    assert options.enable_dynamic_concurrency is True
    assert options.max_operation_lifetime is None
    assert options.signals is sink
    assert options.signal_constraints is constraints
    assert options.on_signal is on_signal
    assert options.on_signal_async is _async_handler
    assert options.max_defer_attempts == 0
    assert options.drain_on_signals is None
    assert options.coordinator_id == "ingest"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_operation_lifetime", timedelta(minutes=5)),
        ("operation_echo_retention", timedelta(seconds=30)),
        ("defer_check_interval", timedelta(milliseconds=250)),
        ("max_operation_lifetime", 12),
        ("defer_check_interval", 1),
    ],
)
def test_durations_accept_seconds_or_timedelta(field: str, value: float | timedelta) -> None:
    """Every duration option accepts a timedelta or a number of seconds, int included."""
    options = build(field, value)
    assert getattr(options, field) == value


_INVALID: list[tuple[str, Any]] = [
    ("max_concurrency", 0),
    ("max_concurrency", -1),
    ("max_concurrency", 1.5),
    ("max_concurrency", "4"),
    ("max_concurrency", True),
    ("max_concurrency", None),
    ("max_concurrency_per_key", 0),
    ("max_concurrency_per_key", 2.0),
    ("max_tracked_operations", 0),
    ("max_tracked_operations", -200),
    ("max_tracked_operations", "200"),
    ("operation_echo_capacity", 0),
    ("operation_echo_capacity", None),
    ("fair_scheduling_threshold", 0),
    ("fair_scheduling_threshold", False),
    ("max_concurrent_signal_handlers", 0),
    ("max_concurrent_signal_handlers", 4.0),
    ("max_queued_signals", 0),
    ("max_queued_signals", -1),
    ("max_defer_attempts", -1),
    ("max_defer_attempts", 50.0),
    ("enable_dynamic_concurrency", 1),
    ("enable_dynamic_concurrency", "yes"),
    ("enable_operation_echo", None),
    ("enable_operation_echo", 0),
    ("enable_fair_scheduling", "false"),
    ("emit_lifecycle_signals", "yes"),
    ("max_operation_lifetime", 0),
    ("max_operation_lifetime", -1),
    ("max_operation_lifetime", timedelta(seconds=-1)),
    ("max_operation_lifetime", float("nan")),
    ("max_operation_lifetime", "300"),
    ("operation_echo_retention", 0),
    ("operation_echo_retention", -60),
    ("operation_echo_retention", timedelta(0)),
    ("operation_echo_retention", None),
    ("defer_check_interval", 0),
    ("defer_check_interval", -0.1),
    ("defer_check_interval", "0.1"),
    ("defer_check_interval", None),
    ("signals", "sink"),
    ("signals", object()),
    ("signal_constraints", {"max_depth": 3}),
    ("signal_constraints", "strict"),
    ("on_signal", 1),
    ("on_signal", "handler"),
    ("on_signal_async", 2),
    ("on_signal_retracted", object()),
    ("on_signal_retracted_async", "x"),
    ("cancel_on_signals", 1),
    ("cancel_on_signals", ["ok", 1]),
    ("defer_on_signals", [None]),
    ("resume_on_signals", 3.5),
    ("drain_on_signals", 5),
    ("drain_on_signals", [b"coordinator.drain.all"]),
    ("emits", [1]),
    ("listens", 2),
    ("coordinator_id", ""),
    ("coordinator_id", 5),
]


@pytest.mark.parametrize(("field", "value"), _INVALID)
def test_invalid_values_name_the_field(field: str, value: Any) -> None:
    """Every invalid option value raises ValueError or TypeError whose message names the field."""
    with pytest.raises((ValueError, TypeError)) as raised:
        build(field, value)
    assert field in str(raised.value)


def test_every_validated_field_is_covered() -> None:
    """The invalid-value table has at least one invalid value for every option."""
    assert {field for field, _ in _INVALID} == set(EphemeralOptions.field_names())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrency", 0),
        ("max_tracked_operations", -1),
        ("max_operation_lifetime", -5),
        ("coordinator_id", ""),
    ],
)
def test_out_of_range_values_raise_value_error(field: str, value: Any) -> None:
    """An option of the right type but out of range raises ValueError, not TypeError."""
    with pytest.raises(ValueError, match=field):
        build(field, value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_concurrency", "4"),
        ("enable_operation_echo", 1),
        ("defer_check_interval", "0.1"),
        ("signals", "sink"),
        ("on_signal", 1),
        ("cancel_on_signals", [1]),
    ],
)
def test_wrong_types_raise_type_error(field: str, value: Any) -> None:
    """An option of the wrong type raises TypeError naming the field."""
    with pytest.raises(TypeError, match=field):
        build(field, value)


@pytest.mark.parametrize(
    "field", ["cancel_on_signals", "defer_on_signals", "resume_on_signals", "drain_on_signals", "emits", "listens"]
)
def test_pattern_fields_are_normalised(field: str) -> None:
    """Pattern fields split comma lists, trim tokens, drop blanks and duplicates, and keep first-seen order."""
    options = build(field, ["error.*, warning.*", "  ", "", "throttle,,  ,", "error.*"])
    assert getattr(options, field) == ("error.*", "warning.*", "throttle")


def test_pattern_field_from_a_single_string() -> None:
    """A single string is one comma-separated list, not a sequence of characters."""
    options = EphemeralOptions(cancel_on_signals="stop, abort", defer_on_signals="pause")
    assert options.cancel_on_signals == ("stop", "abort")
    assert options.defer_on_signals == ("pause",)


def test_pattern_field_from_a_set() -> None:
    """A set of patterns is accepted and normalised to a tuple of its patterns."""
    options = EphemeralOptions(resume_on_signals={"go", "resume.*"})
    assert options.resume_on_signals is not None
    assert isinstance(options.resume_on_signals, tuple)
    assert set(options.resume_on_signals) == {"go", "resume.*"}


def test_empty_pattern_field_disables_it() -> None:
    """An empty or blank pattern list normalises to an empty tuple."""
    assert EphemeralOptions(drain_on_signals=[]).drain_on_signals == ()
    assert EphemeralOptions(cancel_on_signals=" , ").cancel_on_signals == ()


def test_replace_builds_new_options() -> None:
    """dataclasses.replace returns new options with the change and every other field kept."""
    sink = SignalSink()
    original = EphemeralOptions(max_concurrency=2, signals=sink, cancel_on_signals="stop, abort")
    changed = dataclasses.replace(original, max_concurrency=8)
    assert changed.max_concurrency == 8
    assert original.max_concurrency == 2
    assert changed.signals is sink
    assert changed.cancel_on_signals == ("stop", "abort")
    assert changed.max_tracked_operations == original.max_tracked_operations
    assert changed.drain_on_signals == original.drain_on_signals


def test_replace_validates_the_new_value() -> None:
    """dataclasses.replace runs validation, so an invalid replacement raises naming the field."""
    with pytest.raises(ValueError, match="max_tracked_operations"):
        dataclasses.replace(EphemeralOptions(), max_tracked_operations=0)


def test_replace_normalises_new_patterns() -> None:
    """Patterns given to dataclasses.replace are normalised like those given to the constructor."""
    changed = dataclasses.replace(EphemeralOptions(), defer_on_signals="a, ,b")
    assert changed.defer_on_signals == ("a", "b")


def test_field_names_lists_every_option() -> None:
    """field_names returns the name of every option, in declaration order."""
    names = EphemeralOptions.field_names()
    assert names == tuple(f.name for f in dataclasses.fields(EphemeralOptions))
    assert names[0] == "max_concurrency"
    for expected in ("max_tracked_operations", "signals", "drain_on_signals", "coordinator_id"):
        assert expected in names
