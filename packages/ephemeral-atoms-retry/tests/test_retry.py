"""RetryAtom: attempts, backoff schedule, jitter, retry hints, signals and failure accounting."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral.atoms.retry import ATTEMPT_STATE, RetryAtom
from ephemeral.core import (
    AtomStats,
    CoordinatorClosedError,
    EphemeralOperationSnapshot,
    OperationStatus,
    SignalSink,
    current_operation,
)
from ephemeral.core.testing import ConcurrencyProbe


class Flaky:
    """A body that fails its first ``failures`` attempts per item and records when each attempt started."""

    def __init__(
        self,
        failures: int = 0,
        error: Callable[[], Exception] = lambda: ConnectionError("flaky"),
        on_attempt: Callable[[int], None] | None = None,
    ) -> None:
        self.failures = failures
        self.error = error
        self.on_attempt = on_attempt
        self.attempts: dict[Any, list[float]] = defaultdict(list)
        self.probe = ConcurrencyProbe()

    async def __call__(self, item: Any) -> str:
        times = self.attempts[item]
        times.append(anyio.current_time())
        with self.probe:
            await anyio.lowlevel.checkpoint()
            if self.on_attempt is not None:
                self.on_attempt(len(times))
            if len(times) <= self.failures:
                raise self.error()
            return f"done {item}"

    def gaps(self, item: Any) -> list[float]:
        times = self.attempts[item]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def offsets(self, item: Any) -> list[float]:
        times = self.attempts[item]
        return [t - times[0] for t in times]


def signals_of(snapshot: EphemeralOperationSnapshot[Any]) -> list[str]:
    return [event.signal for event in snapshot.signals]


# ------------------------------------------------------------------------------------ the seed example


@dataclass(frozen=True)
class ApiRequest:
    url: str


async def test_seed_example_backs_off_200_then_400_ms() -> None:
    """The README example: attempt 1 immediate, attempt 2 after 200 ms, attempt 3 after 400 ms, then done."""
    body = Flaky(failures=2)

    async def call_external_api(request: ApiRequest) -> None:
        await body(request)

    async with RetryAtom(
        call_external_api,
        max_attempts=3,
        backoff=lambda attempt: timedelta(milliseconds=100 * 2**attempt),
        max_concurrency=4,
    ) as atom:
        request = ApiRequest("https://api.example.com")
        await atom.enqueue(request)
        await atom.drain()
        assert body.offsets(request) == pytest.approx([0.0, 0.2, 0.6], abs=2e-6)  # a timer may land a microsecond late
        assert atom.stats() == AtomStats(pending=0, active=0, completed=1, failed=0)
        (snapshot,) = atom.snapshot()
        assert signals_of(snapshot) == ["retry.attempt:2", "retry.attempt:3"]
        with pytest.raises(CoordinatorClosedError):
            await atom.enqueue(request)


# ------------------------------------------------------------------- the reference tests, translated


async def test_retries_on_failure() -> None:
    """Failing attempts 1 and 2 of 3 gives three attempts and a success."""
    body = Flaky(failures=2)
    async with RetryAtom(body, max_attempts=3, backoff=0.01) as atom:
        await atom.enqueue("x")
    assert len(body.attempts["x"]) == 3
    assert atom.stats().completed == 1


async def test_succeeds_on_first_attempt() -> None:
    """A body that succeeds runs once, emits no retry signal and keeps its result on the operation."""
    body = Flaky()
    async with RetryAtom(body, max_attempts=3) as atom:
        await atom.enqueue("x")
        await atom.drain()
        (snapshot,) = atom.snapshot()
    assert len(body.attempts["x"]) == 1
    assert signals_of(snapshot) == []
    assert snapshot.result == "done x"
    assert atom.total_retries == 0


async def test_gives_up_after_max_attempts() -> None:
    """An always failing body is tried max_attempts times, then recorded as failed with retry.exhausted."""
    body = Flaky(failures=99)
    async with RetryAtom(body, max_attempts=3, backoff=0.005) as atom:
        await atom.enqueue("x")
        await atom.drain()
        (snapshot,) = atom.snapshot()
    assert len(body.attempts["x"]) == 3
    assert atom.stats().failed == 1
    assert snapshot.status is OperationStatus.FAILED
    assert isinstance(snapshot.error, ConnectionError)
    assert signals_of(snapshot) == ["retry.attempt:2", "retry.attempt:3", "retry.exhausted:3"]
    assert (atom.total_retries, atom.total_exhausted) == (2, 1)


async def test_backoff_increases_the_delay() -> None:
    """With a callable backoff of attempt x 50 ms, the second gap is longer than the first."""
    body = Flaky(failures=2)
    async with RetryAtom(body, max_attempts=3, backoff=lambda attempt: attempt * 0.05) as atom:
        await atom.enqueue("x")
    first, second = body.gaps("x")
    assert second > first
    assert (first, second) == pytest.approx((0.05, 0.10), abs=2e-6)  # a timer may land a microsecond late


async def test_stats_track_a_retried_success() -> None:
    """An item failing once then succeeding counts as one completed, none failed."""
    async with RetryAtom(Flaky(failures=1), max_attempts=3, backoff=0.01) as atom:
        await atom.enqueue("x")
        await atom.drain()
        assert atom.stats() == AtomStats(0, 0, 1, 0)
        assert atom.total_retries == 1


async def test_multiple_items_all_retry() -> None:
    """Three items each failing once, two at a time: each is tried exactly twice, never more than two at once."""
    body = Flaky(failures=1)
    async with RetryAtom(body, max_attempts=3, backoff=0.01, max_concurrency=2) as atom:
        for item in ("a", "b", "c"):
            await atom.enqueue(item)
    assert {item: len(times) for item, times in body.attempts.items()} == {"a": 2, "b": 2, "c": 2}
    assert body.probe.peak <= 2
    assert atom.stats() == AtomStats(0, 0, 3, 0)


# ----------------------------------------------------------------------------------------- timing


async def test_exponential_schedule_in_exact_virtual_time() -> None:
    """backoff=1 doubles each wait: attempts start at 0, 1, 3 and 7 seconds, then the item is exhausted."""
    body = Flaky(failures=99)
    start = anyio.current_time()
    async with RetryAtom(body, max_attempts=4, backoff=1.0) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, 1.0, 3.0, 7.0]
    assert body.attempts["x"][0] == start
    assert anyio.current_time() - start == 7.0


async def test_timedelta_backoff() -> None:
    """A timedelta backoff is the first wait, doubled after that."""
    body = Flaky(failures=2)
    async with RetryAtom(body, max_attempts=3, backoff=timedelta(milliseconds=250)) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, 0.25, 0.75]


async def test_zero_backoff_retries_at_once() -> None:
    """backoff=0 retries without waiting."""
    body = Flaky(failures=2)
    async with RetryAtom(body, max_attempts=3, backoff=0) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, 0.0, 0.0]


async def test_jitter_stays_within_its_bounds_and_follows_the_seed() -> None:
    """With jitter=0.5 each wait lies within 50% of the plain backoff and equals what the seeded Random draws."""
    body = Flaky(failures=99)
    async with RetryAtom(body, max_attempts=6, backoff=1.0, jitter=0.5, random=random.Random(7)) as atom:
        await atom.enqueue("x")
    gaps = body.gaps("x")
    plain = [1.0, 2.0, 4.0, 8.0, 16.0]
    for gap, base in zip(gaps, plain, strict=True):
        assert base * 0.5 <= gap <= base * 1.5
    draws = random.Random(7)
    expected = [base * (1 + 0.5 * draws.uniform(-1.0, 1.0)) for base in plain]
    assert gaps == pytest.approx(expected, abs=1e-5)
    assert gaps != pytest.approx(plain, abs=1e-3)


async def test_jitter_spreads_concurrent_items() -> None:
    """Items failing together do not all retry at the same instant once jitter is on."""
    body = Flaky(failures=1)
    async with RetryAtom(
        body, max_attempts=2, backoff=1.0, jitter=1.0, random=random.Random(1), max_concurrency=10
    ) as atom:
        for item in range(10):
            await atom.enqueue(item)
    retries = {round(body.attempts[item][1], 6) for item in range(10)}
    assert len(retries) == 10
    assert all(0.0 <= body.gaps(item)[0] <= 2.0 for item in range(10))


# ------------------------------------------------------------------------------------- retry hints


class RateLimited(Exception):
    """An error that says how long to wait, as HTTP 429 and 503 responses do."""

    def __init__(self, retry_after: float | timedelta | str | None) -> None:
        super().__init__(f"retry after {retry_after}")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(5, 5.0), (0.5, 0.5), (timedelta(seconds=2), 2.0), (0, 0.0), ("3", 3.0), ("250ms", 0.25)],
)
async def test_an_exception_retry_after_replaces_the_backoff(hint: float | timedelta | str, expected: float) -> None:
    """An exception's retry_after (seconds, timedelta or text) is waited exactly, without jitter, not the backoff."""
    body = Flaky(failures=1, error=lambda: RateLimited(hint))
    async with RetryAtom(body, max_attempts=2, backoff=100.0, jitter=0.9) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, expected]


async def test_an_unusable_retry_after_falls_back_to_the_backoff() -> None:
    """A retry_after that is None, negative or unreadable text is ignored: the plain backoff applies."""
    hints: list[float | str | None] = [None, -3.0, "tomorrow"]
    body = Flaky(failures=3, error=lambda: RateLimited(hints.pop(0)))
    async with RetryAtom(body, max_attempts=4, backoff=1.0) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, 1.0, 3.0, 7.0]


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        ("rate-limit:500ms", 0.5),
        ("retry-after:2s", 2.0),
        ("retry-after:1.5s", 1.5),
        ("retry-after:3", 3.0),
        ("api.rate-limit: 250ms ", 0.25),
        ("rate-limit:0ms", 0.0),
    ],
)
async def test_a_hint_signal_on_the_operation_replaces_the_backoff(signal: str, expected: float) -> None:
    """A body emitting rate-limit:{d} or retry-after:{d} on its operation before failing waits exactly d."""

    def hint(attempt: int) -> None:
        if attempt == 1:
            current_operation().emit(signal)

    body = Flaky(failures=1, on_attempt=hint)
    async with RetryAtom(body, max_attempts=2, backoff=100.0) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, expected]


@pytest.mark.parametrize("signal", ["rate-limit:soon", "rate-limit:-1ms", "retry-after:", "rate-limit:infs"])
async def test_a_garbled_hint_signal_falls_back_to_the_backoff(signal: str) -> None:
    """A hint whose duration cannot be read is ignored, so the plain backoff applies."""

    def hint(attempt: int) -> None:
        current_operation().emit(signal)

    body = Flaky(failures=1, on_attempt=hint)
    async with RetryAtom(body, max_attempts=2, backoff=1.0) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, 1.0]


async def test_the_newest_hint_wins_and_the_exception_wins_over_signals() -> None:
    """Among hint signals of one attempt the newest counts; an exception's retry_after beats them all."""

    def hint(attempt: int) -> None:
        current_operation().emit("rate-limit:100ms")
        current_operation().emit("retry-after:2s")

    errors: list[Exception] = [ConnectionError("plain"), RateLimited(7)]
    body = Flaky(failures=2, error=lambda: errors.pop(0), on_attempt=hint)
    async with RetryAtom(body, max_attempts=3, backoff=100.0) as atom:
        await atom.enqueue("x")
    assert body.offsets("x") == [0.0, 2.0, 9.0]


async def test_a_hint_counts_for_its_own_attempt_only() -> None:
    """A hint emitted during attempt 1 does not set the wait after attempt 2, which backs off normally."""

    def hint(attempt: int) -> None:
        if attempt == 1:
            current_operation().emit("retry-after:5s")

    body = Flaky(failures=2, on_attempt=hint)
    async with RetryAtom(body, max_attempts=3, backoff=1.0) as atom:
        await atom.enqueue("x")
        await atom.drain()
        (snapshot,) = atom.snapshot()
    assert body.offsets("x") == [0.0, 5.0, 7.0]
    assert signals_of(snapshot) == ["retry-after:5s", "retry.attempt:2", "retry.attempt:3"]


# ------------------------------------------------------------------------------- what is retried


async def test_retry_on_limits_what_is_retried() -> None:
    """An exception outside retry_on fails the item at once, with no retry signal."""
    body = Flaky(failures=99, error=lambda: ValueError("bad input"))
    async with RetryAtom(body, max_attempts=5, backoff=1.0, retry_on=(ConnectionError, TimeoutError)) as atom:
        await atom.enqueue("x")
        await atom.drain()
        (snapshot,) = atom.snapshot()
    assert len(body.attempts["x"]) == 1
    assert isinstance(snapshot.error, ValueError)
    assert signals_of(snapshot) == []
    assert (atom.stats().failed, atom.total_exhausted) == (1, 0)


def _errno_11(error: BaseException) -> bool:
    return getattr(error, "errno", None) == 11


@pytest.mark.parametrize(
    ("failures", "error", "retry_on", "attempts"),
    [
        (1, lambda: TimeoutError("slow"), TimeoutError, 2),
        (99, lambda: OSError(11, "try again"), _errno_11, 3),
        (99, lambda: OSError(2, "no such file"), _errno_11, 1),
    ],
    ids=["class", "predicate-retries", "predicate-gives-up"],
)
async def test_retry_on_accepts_a_single_class_and_a_predicate(
    failures: int, error: Callable[[], Exception], retry_on: Any, attempts: int
) -> None:
    """retry_on may be one exception class or a predicate over the exception."""
    body = Flaky(failures=failures, error=error)
    async with RetryAtom(body, max_attempts=3, backoff=0.0, retry_on=retry_on) as atom:
        await atom.enqueue("x")
    assert len(body.attempts["x"]) == attempts


async def test_the_body_sees_its_attempt_number() -> None:
    """The running attempt's number is readable from the operation's state."""
    seen: list[int] = []

    def record(attempt: int) -> None:
        seen.append(current_operation().get_state(ATTEMPT_STATE))

    async with RetryAtom(Flaky(failures=2, on_attempt=record), max_attempts=3, backoff=0.0) as atom:
        await atom.enqueue("x")
    assert seen == [1, 2, 3]


async def test_a_failing_backoff_callable_fails_the_item() -> None:
    """A backoff callable returning a negative wait fails that item with a ValueError naming backoff."""
    async with RetryAtom(Flaky(failures=99), max_attempts=3, backoff=lambda attempt: -1.0) as atom:
        await atom.enqueue("x")
        await atom.drain()
        (snapshot,) = atom.snapshot()
    assert isinstance(snapshot.error, ValueError)
    assert "backoff" in str(snapshot.error)


# ------------------------------------------------------------------------ concurrency and closing


async def test_backoff_waits_hold_a_concurrency_slot() -> None:
    """With max_concurrency=1, the second item starts only after the first finished retrying."""
    body = Flaky(failures=1)
    async with RetryAtom(body, max_attempts=2, backoff=1.0, max_concurrency=1) as atom:
        await atom.enqueue("a")
        await atom.enqueue("b")
    assert body.attempts["a"] == [body.attempts["a"][0], body.attempts["a"][0] + 1.0]
    assert body.attempts["b"][0] == body.attempts["a"][1]
    assert body.probe.peak == 1


async def test_many_items_are_each_accounted_for_once() -> None:
    """Under load, every item ends completed or failed exactly once, and the counters add up."""
    body = Flaky(failures=2)
    async with RetryAtom(body, max_attempts=2, backoff=0.5, max_concurrency=8) as atom:
        for item in range(100):
            await atom.enqueue(item)
    metrics = atom.coordinator.get_metrics()
    assert (metrics.total_enqueued, metrics.total_completed, metrics.total_failed) == (100, 0, 100)
    assert (atom.total_retries, atom.total_exhausted) == (100, 100)
    assert body.probe.peak <= 8


async def test_an_error_in_the_block_cancels_a_backing_off_item() -> None:
    """Leaving the block on an exception interrupts an item waiting to retry; it is cancelled, not retried."""
    body = Flaky(failures=99)
    with pytest.raises(KeyError):
        async with RetryAtom(body, max_attempts=5, backoff=10.0) as atom:
            await atom.enqueue("x")
            await anyio.sleep(1)
            raise KeyError("stop")
    assert len(body.attempts["x"]) == 1
    assert atom.coordinator.total_cancelled == 1
    assert atom.stats().failed == 0


async def test_enqueue_before_entering_raises() -> None:
    """An atom not entered with `async with` refuses items."""
    atom: RetryAtom[str] = RetryAtom(Flaky())
    with pytest.raises(RuntimeError, match="async with"):
        await atom.enqueue("x")


async def test_signals_reach_a_shared_sink() -> None:
    """With signals=, the retry signals are visible on the shared sink under the item's operation id."""
    sink = SignalSink()
    async with RetryAtom(Flaky(failures=9), max_attempts=2, backoff=0.0, signals=sink) as atom:
        operation_id = await atom.enqueue("x")
        await atom.drain()
        assert [e.signal for e in sink.sense("retry.*")] == ["retry.attempt:2", "retry.exhausted:2"]
        assert {e.operation_id for e in sink.sense("retry.*")} == {operation_id}
    assert atom.signals is sink


# ------------------------------------------------------------------------------------------ arguments


def test_body_must_be_callable() -> None:
    """A missing body raises TypeError naming it."""
    with pytest.raises(TypeError, match="body"):
        RetryAtom(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)])
def test_max_attempts_must_be_a_positive_int(value: Any, error: type[Exception]) -> None:
    """max_attempts below 1 raises ValueError, a non-int TypeError, both naming it."""
    with pytest.raises(error, match="max_attempts"):
        RetryAtom(Flaky(), max_attempts=value)


@pytest.mark.parametrize(
    ("value", "error"), [(-0.1, ValueError), (timedelta(seconds=-1), ValueError), ("1s", TypeError)]
)
def test_backoff_must_be_a_duration_or_callable(value: Any, error: type[Exception]) -> None:
    """A negative backoff raises ValueError, one that is neither a duration nor callable TypeError."""
    with pytest.raises(error, match="backoff"):
        RetryAtom(Flaky(), backoff=value)


@pytest.mark.parametrize(("value", "error"), [(-0.1, ValueError), (1.5, ValueError), ("0.1", TypeError)])
def test_jitter_must_be_a_fraction(value: Any, error: type[Exception]) -> None:
    """jitter outside [0, 1] raises ValueError, a non-number TypeError, both naming it."""
    with pytest.raises(error, match="jitter"):
        RetryAtom(Flaky(), jitter=value)


def test_random_must_be_a_random_instance() -> None:
    """random must be a random.Random."""
    with pytest.raises(TypeError, match="random"):
        RetryAtom(Flaky(), random=42)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [KeyboardInterrupt, (ValueError, BaseException), "ValueError", (ValueError, 1)])
def test_retry_on_must_name_exceptions_or_be_a_predicate(value: Any) -> None:
    """retry_on must be Exception subclasses or a predicate; BaseException types are refused."""
    with pytest.raises(TypeError, match="retry_on"):
        RetryAtom(Flaky(), retry_on=value)


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), ("4", TypeError)])
def test_max_concurrency_is_checked(value: Any, error: type[Exception]) -> None:
    """max_concurrency below 1 or not an int raises, naming it."""
    with pytest.raises(error, match="max_concurrency"):
        RetryAtom(Flaky(), max_concurrency=value)


def test_signals_must_be_a_sink() -> None:
    """Anything but a SignalSink as signals raises TypeError naming it."""
    with pytest.raises(TypeError, match="signals"):
        RetryAtom(Flaky(), signals="sink")  # type: ignore[arg-type]


def test_max_attempts_is_exposed() -> None:
    """The configured attempt limit is readable."""
    assert RetryAtom(Flaky(), max_attempts=7).max_attempts == 7


async def test_errors_name_retry_atom_and_a_sync_body_is_refused() -> None:
    """The errors name RetryAtom (the object called), and a plain ``def`` body is refused at construction."""

    def plain(item: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"body must be an async function \(async def\), got <function"):
        RetryAtom(plain)  # type: ignore[arg-type]

    async def body(item: int) -> None:
        pass

    atom = RetryAtom(body)
    with pytest.raises(RuntimeError, match=r"async with RetryAtom\(\.\.\.\)"):
        await atom.enqueue(1)
    async with atom:
        await atom.enqueue(1)
    with pytest.raises(CoordinatorClosedError, match=r"^RetryAtom has been completed; no new items are accepted$"):
        await atom.enqueue(2)
