"""BackoffPolicy and the retry hints: exponential waits, cap, seeded jitter, hints from signals and errors."""

from __future__ import annotations

import random
from datetime import timedelta

import anyio
import pytest

from ephemeral.core.lowlevel import BackoffPolicy, newest_retry_hint, parse_duration, parse_retry_hint


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("throttled")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1.5s", 1.5), (" 3 ", 3.0), ("0", 0.0), ("2S", 2.0)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1s", "inf", "nan", "5m", "ms"])
def test_garbled_durations_are_no_hint(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("signal", "seconds"),
    [
        ("rate-limit:500ms", 0.5),
        ("retry-after:2s", 2.0),
        ("api.retry-after:1", 1.0),
        ("retry-after:garbled", None),
        ("retry-after", None),
        ("job.done", None),
    ],
)
def test_signals_carry_hints(signal: str, seconds: float | None) -> None:
    assert parse_retry_hint(signal) == seconds


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [(2, 2.0), (0.25, 0.25), (timedelta(milliseconds=300), 0.3), ("500ms", 0.5), ("7", 7.0)],
)
def test_errors_carry_hints_in_retry_after(retry_after: object, seconds: float) -> None:
    assert parse_retry_hint(Throttled(retry_after)) == seconds


@pytest.mark.parametrize("retry_after", [None, -1, float("nan"), float("inf"), True, "later", object()])
def test_bad_retry_after_is_no_hint(retry_after: object) -> None:
    assert parse_retry_hint(Throttled(retry_after)) is None
    assert parse_retry_hint(ValueError("no attribute")) is None
    assert parse_retry_hint(None) is None


def test_the_error_hint_wins_over_signals_and_the_newest_signal_over_older() -> None:
    signals = ["retry-after:5s", "job.step", "rate-limit:250ms", "job.other"]
    assert newest_retry_hint(Throttled(1), signals) == 1.0
    assert newest_retry_hint(ValueError(), signals) == 0.25
    assert newest_retry_hint(None, ["job.other"]) is None


def test_exponential_waits_double_from_the_initial_one() -> None:
    policy = BackoffPolicy(0.1)
    assert [policy.delay(n) for n in range(1, 5)] == [0.1, 0.2, 0.4, 0.8]


def test_the_cap_bounds_computed_waits_not_hints() -> None:
    policy = BackoffPolicy(timedelta(seconds=1), factor=3.0, max_delay=5.0)
    assert [policy.delay(n) for n in range(1, 5)] == [1.0, 3.0, 5.0, 5.0]
    assert policy.delay(9, hint=30.0) == 30.0
    assert policy.max_delay == 5.0


def test_a_callable_gives_each_wait() -> None:
    policy = BackoffPolicy(lambda attempt: timedelta(seconds=attempt), max_delay=2.5)
    assert [policy.delay(n) for n in range(1, 5)] == [1.0, 2.0, 2.5, 2.5]


def test_seeded_jitter_is_reproducible_and_bounded() -> None:
    first = BackoffPolicy(1.0, jitter=0.5, random=random.Random(7))
    second = BackoffPolicy(1.0, jitter=0.5, random=random.Random(7))
    waits = [first.delay(1) for _ in range(50)]
    assert waits == [second.delay(1) for _ in range(50)]
    assert all(0.5 <= wait <= 1.5 for wait in waits)
    assert len(set(waits)) > 1
    assert BackoffPolicy(1.0, jitter=0.5).delay(1, hint=2.0) == 2.0  # hints are never jittered


def test_waits_are_whole_microseconds() -> None:
    assert BackoffPolicy(0.1234567).delay(1) == 0.123457
    assert BackoffPolicy(1.0).delay(1, hint=0.0000004) == 0.0


async def test_a_policy_drives_sleeps_in_virtual_time() -> None:
    policy = BackoffPolicy(0.5, max_delay=1.0)
    start = anyio.current_time()
    for attempt in range(1, 4):
        await anyio.sleep(policy.delay(attempt))
    assert anyio.current_time() - start == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"initial": -1.0}, ValueError, "initial"),
        ({"initial": "1s"}, TypeError, "initial"),
        ({"initial": 1.0, "factor": 0.5}, ValueError, "factor"),
        ({"initial": 1.0, "factor": "2"}, TypeError, "factor"),
        ({"initial": 1.0, "max_delay": -1}, ValueError, "max_delay"),
        ({"initial": 1.0, "jitter": 1.5}, ValueError, "jitter"),
        ({"initial": 1.0, "jitter": "a"}, TypeError, "jitter"),
        ({"initial": 1.0, "random": 3}, TypeError, "random"),
        ({"initial": True}, TypeError, "initial"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_argument_name_can_be_the_callers() -> None:
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(-1.0, name="backoff")
    assert "factor=2" in repr(BackoffPolicy())
