"""SignalBasedCircuitBreaker: opening at the threshold, closing as failures age out, exact retry times."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalEvent, SignalSink, current_operation
from ephemeral.core.lowlevel import AtomBase
from ephemeral.core.testing import run_readme_examples
from ephemeral.patterns.circuitbreaker import CircuitOpenException, SignalBasedCircuitBreaker, SignalHistory


async def failing_call(signal: str) -> None:
    """A body that records its failure as a signal, then fails."""
    current_operation().emit(signal)
    raise ConnectionError(signal)


def coordinator(sink: SignalSink | None = None) -> EphemeralWorkCoordinator[str]:
    options = EphemeralOptions(max_tracked_operations=1000, max_operation_lifetime=3600, signals=sink)
    return EphemeralWorkCoordinator(failing_call, options)


def virtual_sink() -> SignalSink:
    return SignalSink(max_age=3600.0, clock=anyio.current_time)


async def fail_every_second(c: EphemeralWorkCoordinator[str], count: int, signal: str = "api.failure") -> None:
    """One failure now and one each second after, ``count`` in all; returns one second after the last."""
    for _ in range(count):
        await c.enqueue(signal)
        await anyio.sleep(1)


async def settle(c: EphemeralWorkCoordinator[str]) -> None:
    """Let the coordinator run what was enqueued (no virtual time passes)."""
    while c.pending_count or c.active_count:
        await anyio.lowlevel.checkpoint()


@pytest.fixture
async def api() -> AsyncIterator[EphemeralWorkCoordinator[str]]:
    async with coordinator() as c:
        yield c


# -- the seed example ------------------------------------------------------------------------------


async def test_seed_example(api: EphemeralWorkCoordinator[str]) -> None:
    """The seed: is_open then get_time_until_close into CircuitOpenException; the glob variant; the count."""
    breaker = SignalBasedCircuitBreaker(failure_signal="api.failure", threshold=5, window_size=timedelta(seconds=30))
    await fail_every_second(api, 5)

    with pytest.raises(CircuitOpenException) as raised:
        if breaker.is_open(api):
            retry_after = breaker.get_time_until_close(api)
            raise CircuitOpenException("Too many failures", retry_after)
    assert str(raised.value) == "Too many failures"
    assert raised.value.retry_after == timedelta(seconds=25)

    for n in range(5):
        await api.enqueue(f"error.db.{n}")
    await settle(api)
    with pytest.raises(CircuitOpenException, match="Error pattern detected") as pattern_raised:
        if breaker.is_open_matching(api, "error.*"):
            raise CircuitOpenException("Error pattern detected")
    assert pattern_raised.value.retry_after is None

    failures: int = breaker.get_failure_count(api)
    assert failures == 5


# -- opening ---------------------------------------------------------------------------------------


async def test_opens_exactly_at_the_threshold(api: EphemeralWorkCoordinator[str]) -> None:
    """Four failures in the window keep the circuit closed; the fifth opens it."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=5, window_size=30)
    await fail_every_second(api, 4)
    assert breaker.get_failure_count(api) == 4
    assert not breaker.is_open(api)
    assert breaker.get_time_until_close(api) == timedelta(0)
    breaker.guard(api)  # closed: no exception
    await fail_every_second(api, 1)
    assert breaker.get_failure_count(api) == 5
    assert breaker.is_open(api)


async def test_failures_spread_wider_than_the_window_never_open_it(api: EphemeralWorkCoordinator[str]) -> None:
    """Five failures eight seconds apart never put five in one 30 s window."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=5, window_size=30)
    for _ in range(10):
        await api.enqueue("api.failure")
        await settle(api)
        assert breaker.get_failure_count(api) <= 4
        assert not breaker.is_open(api)
        await anyio.sleep(8)


async def test_only_the_exact_failure_name_counts(api: EphemeralWorkCoordinator[str]) -> None:
    """is_open counts signals named exactly failure_signal; longer or similar names do not count."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=2, window_size=30)
    for name in ("api.failure.timeout", "api.failures", "xapi.failure", "api.failure"):
        await api.enqueue(name)
    await settle(api)
    assert breaker.get_failure_count(api) == 1
    assert not breaker.is_open(api)
    assert breaker.is_open_matching(api, "api.failure*")
    assert breaker.get_failure_count(api, "api.failure*") == 3  # not xapi.failure


async def test_wildcards_in_failure_signal_are_literal(api: EphemeralWorkCoordinator[str]) -> None:
    """A failure_signal containing * still counts only that exact name."""
    breaker = SignalBasedCircuitBreaker("api.*", threshold=1, window_size=30)
    await api.enqueue("api.failure")
    await settle(api)
    assert not breaker.is_open(api)
    await api.enqueue("api.*")
    await settle(api)
    assert breaker.is_open(api)


# -- closing ---------------------------------------------------------------------------------------


async def test_closes_as_failures_age_out_exactly_on_time(api: EphemeralWorkCoordinator[str]) -> None:
    """Failures at t=0..4 with a 30 s window: open with 25 s to go at t=5, still open just before 30, closed at 30."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=5, window_size=30)
    await fail_every_second(api, 5)
    assert breaker.get_time_until_close(api) == timedelta(seconds=25)
    await anyio.sleep(20)
    assert breaker.is_open(api)
    assert breaker.get_time_until_close(api) == timedelta(seconds=5)
    await anyio.sleep(4.5)
    assert breaker.is_open(api)
    assert breaker.get_time_until_close(api) == timedelta(seconds=0.5)
    await anyio.sleep(0.5)
    assert not breaker.is_open(api)
    assert breaker.get_failure_count(api) == 4
    assert breaker.get_time_until_close(api) == timedelta(0)
    await anyio.sleep(3600)
    assert breaker.get_failure_count(api) == 0


async def test_time_until_close_uses_the_threshold_th_newest_failure(api: EphemeralWorkCoordinator[str]) -> None:
    """With seven failures at t=0..6 and threshold 5, the circuit closes when the t=2 one leaves: at t=32."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=5, window_size=30)
    await fail_every_second(api, 7)
    assert breaker.get_failure_count(api) == 7
    assert breaker.get_time_until_close(api) == timedelta(seconds=25)  # now t=7
    await anyio.sleep(25)
    assert not breaker.is_open(api)
    assert breaker.get_failure_count(api) == 4


async def test_a_new_failure_after_closing_reopens_it(api: EphemeralWorkCoordinator[str]) -> None:
    """Once closed, one more failure with four still in the window opens the circuit again (no half-open state)."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=5, window_size=30)
    await fail_every_second(api, 5)
    await anyio.sleep(breaker.get_time_until_close(api).total_seconds())
    assert not breaker.is_open(api)
    await api.enqueue("api.failure")
    await settle(api)
    assert breaker.is_open(api)
    assert breaker.get_time_until_close(api) == timedelta(seconds=1)  # the t=1 failure leaves at t=31


# -- guard and the exception -----------------------------------------------------------------------


async def test_guard_raises_with_retry_after(api: EphemeralWorkCoordinator[str]) -> None:
    """guard() raises CircuitOpenException carrying the time until close, and passes once closed."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=3, window_size=timedelta(minutes=1))
    await fail_every_second(api, 3)
    with pytest.raises(CircuitOpenException, match=r"3 'api\.failure' failures") as raised:
        breaker.guard(api)
    assert raised.value.retry_after == timedelta(seconds=57)
    await anyio.sleep(57)
    breaker.guard(api)


async def test_guard_with_a_pattern(api: EphemeralWorkCoordinator[str]) -> None:
    """guard(pattern=) counts signals matching the glob instead of failure_signal."""
    breaker = SignalBasedCircuitBreaker(threshold=2, window_size=10)
    await fail_every_second(api, 2, "error.db")
    breaker.guard(api)
    with pytest.raises(CircuitOpenException, match="error") as raised:
        breaker.guard(api, "error.*")
    assert raised.value.retry_after == timedelta(seconds=8)


def test_circuit_open_exception_fields() -> None:
    """CircuitOpenException keeps its message and normalises retry_after to a timedelta (None by default)."""
    plain = CircuitOpenException("Error pattern detected")
    assert isinstance(plain, Exception)
    assert (str(plain), plain.message, plain.retry_after) == ("Error pattern detected", "Error pattern detected", None)
    assert CircuitOpenException("x", 2.5).retry_after == timedelta(seconds=2.5)
    assert CircuitOpenException("x", timedelta(minutes=1)).retry_after == timedelta(seconds=60)
    with pytest.raises(ValueError, match="retry_after"):
        CircuitOpenException("x", -1)
    with pytest.raises(TypeError, match="retry_after"):
        CircuitOpenException("x", "soon")  # type: ignore[arg-type]


# -- where the breaker looks -----------------------------------------------------------------------


async def test_a_sink_is_read_with_sense_within_the_window() -> None:
    """Given a sink, signals emitted on it count, by the sink's clock, and age out the same way."""
    sink = virtual_sink()
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=3, window_size=10)
    for _ in range(3):
        sink.emit("api.failure", key="payments")
        await anyio.sleep(2)
    sink.emit("api.retry")
    assert breaker.get_failure_count(sink) == 3
    assert breaker.is_open(sink)
    assert breaker.get_time_until_close(sink) == timedelta(seconds=4)  # first at t=0, now t=6
    assert breaker.is_open_matching(sink, "api.*")
    await anyio.sleep(4)
    assert not breaker.is_open(sink)
    assert breaker.get_failure_count(sink, "api.*") == 3  # t=2, t=4 and the retry at t=6


async def test_a_shared_sink_also_sees_its_coordinators_failures() -> None:
    """A sink's view includes the failures of every coordinator sharing it."""
    sink = virtual_sink()
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=4, window_size=30)
    async with coordinator(sink) as first, coordinator(sink) as second:
        await fail_every_second(first, 2)
        await fail_every_second(second, 1)
        sink.emit("api.failure")
        assert breaker.get_failure_count(first) == 2
        assert breaker.get_failure_count(second) == 1
        assert breaker.get_failure_count(sink) == 4
        assert breaker.is_open(sink) and not breaker.is_open(first)


async def test_one_breaker_serves_many_coordinators_independently() -> None:
    """The breaker holds no state: the same instance is open for one coordinator and closed for another."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=2, window_size=30)
    async with coordinator() as failing, coordinator() as healthy:
        await fail_every_second(failing, 2)
        await healthy.enqueue("api.ok")
        await settle(healthy)
        assert breaker.is_open(failing)
        assert not breaker.is_open(healthy)
        assert breaker.get_failure_count(healthy) == 0


class Atom(AtomBase[EphemeralWorkCoordinator[str]]):
    """A minimal atom over a failing coordinator."""


async def test_an_atom_is_read_through_its_coordinator() -> None:
    """Given an atom, the breaker reads the atom's coordinator."""
    breaker = SignalBasedCircuitBreaker("api.failure", threshold=1, window_size=5)
    async with Atom(coordinator()) as atom:
        await atom.coordinator.enqueue("api.failure")
        await settle(atom.coordinator)
        assert breaker.is_open(atom)
        assert breaker.get_time_until_close(atom) == timedelta(seconds=5)


class FakeHistory:
    """Anything with get_signals() and now() is read like a coordinator."""

    def __init__(self, events: list[SignalEvent[Any]], sink: SignalSink) -> None:
        self.events = events
        self.sink = sink

    def get_signals(self, selector: Any = None) -> list[SignalEvent[Any]]:
        assert selector is not None
        return [e for e in self.events if selector(e)]

    def now(self) -> Any:
        return self.sink.now()


async def test_any_signal_history_is_accepted() -> None:
    """An object with get_signals(selector) and now() works as a coordinator would."""
    sink = virtual_sink()
    events: list[SignalEvent[Any]] = [SignalEvent("failure", n, None, sink.now()) for n in range(5)]
    history = FakeHistory(events, sink)
    assert isinstance(history, SignalHistory)
    breaker = SignalBasedCircuitBreaker()
    assert breaker.is_open(history)
    assert breaker.get_time_until_close(history) == timedelta(seconds=30)


def test_something_else_is_refused_naming_the_argument() -> None:
    """A source that is neither a coordinator, an atom nor a sink raises TypeError naming coordinator."""
    breaker = SignalBasedCircuitBreaker()
    with pytest.raises(TypeError, match="coordinator"):
        breaker.is_open(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="coordinator"):
        breaker.get_time_until_close(None)  # type: ignore[arg-type]


def test_bad_patterns_are_refused() -> None:
    """is_open_matching with a blank or non-string pattern raises an error naming pattern."""
    breaker = SignalBasedCircuitBreaker()
    with pytest.raises(ValueError, match="pattern"):
        breaker.is_open_matching(SignalSink(), " ")
    with pytest.raises(TypeError, match="pattern"):
        breaker.is_open_matching(SignalSink(), None)  # type: ignore[arg-type]


# -- construction ----------------------------------------------------------------------------------


def test_defaults_and_accessors() -> None:
    """Defaults are failure / 5 / 30 s; window_size takes seconds or a timedelta and reads back as a timedelta."""
    breaker = SignalBasedCircuitBreaker()
    assert (breaker.failure_signal, breaker.threshold, breaker.window_size) == ("failure", 5, timedelta(seconds=30))
    assert SignalBasedCircuitBreaker(window_size=1.5).window_size == timedelta(seconds=1.5)
    assert SignalBasedCircuitBreaker(window_size=timedelta(minutes=2)).window_size == timedelta(seconds=120)
    assert "failure" in repr(breaker)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"failure_signal": ""}, ValueError, "failure_signal"),
        ({"failure_signal": "  "}, ValueError, "failure_signal"),
        ({"failure_signal": None}, TypeError, "failure_signal"),
        ({"threshold": 0}, ValueError, "threshold"),
        ({"threshold": -3}, ValueError, "threshold"),
        ({"threshold": 2.5}, TypeError, "threshold"),
        ({"threshold": True}, TypeError, "threshold"),
        ({"window_size": 0}, ValueError, "window_size"),
        ({"window_size": timedelta(seconds=-1)}, ValueError, "window_size"),
        ({"window_size": "30s"}, TypeError, "window_size"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs: dict[str, Any], error: type[Exception], argument: str) -> None:
    """Blank names, thresholds below 1, non-positive windows and wrong types raise errors naming the argument."""
    with pytest.raises(error, match=argument):
        SignalBasedCircuitBreaker(**kwargs)


def test_readme_example_runs() -> None:
    """The README's example runs as written: five requests go out, the next two are refused."""
    output = run_readme_examples(Path(__file__).parent.parent / "README.md")
    lines = output.splitlines()
    assert [re.sub(r"retry in \d+s", "retry in Ns", line) for line in lines] == [
        "request 5 refused: Too many failures, retry in Ns",
        "request 6 refused: Too many failures, retry in Ns",
        "failures: 5",
        "open: True",
        "guard: True",
    ]
    assert lines[0].endswith("retry in 30s")  # 30 s after the first failure, a few ms ago (real time)
