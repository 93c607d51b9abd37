"""AdaptiveRateService: hints hold the whole service for as long as asked, then it recovers; accounting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import CoordinatorClosedError, SignalSink, current_operation
from ephemeral.core.testing import ConcurrencyProbe, output_blocks, run_readme_examples
from ephemeral.patterns.adaptiverate import AdaptiveRateService, RateLimitException


class Api:
    """A body recording when each call started; ``hints`` maps an item to what it reports."""

    def __init__(self, duration: float = 0.0, hints: dict[Any, Any] | None = None) -> None:
        self.duration = duration
        self.hints = hints or {}
        self.calls: list[tuple[Any, float]] = []
        self.probe = ConcurrencyProbe()

    async def __call__(self, item: Any) -> None:
        self.calls.append((item, anyio.current_time()))
        with self.probe:
            await anyio.sleep(self.duration)
            hint = self.hints.pop(item, None)
            if isinstance(hint, str):
                current_operation().emit(hint)
            elif isinstance(hint, BaseException):
                raise hint

    def started(self, item: Any) -> list[float]:
        return [at for called, at in self.calls if called == item]


def near(value: float) -> Any:
    """A time as a sleep reaches it: a deadline is passed by up to a microsecond."""
    return pytest.approx(value, abs=1e-5)


async def test_seed_example() -> None:
    """A body emitting rate-limit:500ms delays the next item by that long; counts are visible."""
    api = Api(duration=0.1, hints={2: "rate-limit:500ms"})
    async with AdaptiveRateService(api, max_concurrency=8) as service:
        for n in range(3):
            await service.process(n)
        assert (service.pending_count, service.active_count) == (3, 0)
        await anyio.sleep(0.2)
        assert service.is_holding
        await service.process(3)
        await service.process(4)
        assert (service.pending_count, service.active_count) == (2, 0)
    assert api.started(3) == api.started(4) == [near(0.6)]
    metrics = service.get_metrics()
    assert metrics.total_completed == metrics.total_enqueued == 5


async def test_hint_holds_every_new_start_then_resumes_at_half_concurrency() -> None:
    api = Api(duration=0.1, hints={0: "rate-limit:500ms"})
    async with AdaptiveRateService(api, max_concurrency=4) as service:
        await service.process(0)
        await anyio.sleep(0.2)  # 0 has reported the hint at 0.1
        assert service.is_holding
        assert service.hold_remaining == pytest.approx(0.4)
        for n in range(1, 9):
            await service.process(n)
        await anyio.sleep(0.35)
        assert [item for item, _ in api.calls] == [0]
        await anyio.sleep(0.1)
        assert not service.is_holding
        assert service.current_concurrency == 2
    starts = [at for _, at in api.calls[1:]]
    assert starts == [near(0.6)] * 2 + [near(0.7)] * 2 + [near(0.8)] * 2 + [near(0.9)] * 2  # two at a time
    assert api.probe.peak == 2


async def test_retry_after_seconds_and_a_bare_number() -> None:
    api = Api(hints={0: "api.retry-after:2s", 2: "rate-limit:1"})
    async with AdaptiveRateService(api, max_concurrency=1) as service:
        for n in range(4):
            await service.process(n)
    starts = [at for _, at in api.calls]
    assert starts == [0.0, near(2.0), near(2.0), near(3.0)]


async def test_running_bodies_carry_on_during_a_hold() -> None:
    api = Api(duration=1.0, hints={0: "rate-limit:5s"})
    async with AdaptiveRateService(api, max_concurrency=3) as service:
        for n in range(3):
            await service.process(n)
        await anyio.sleep(1.5)
        assert service.get_metrics().total_completed == 3
        assert service.is_holding


async def test_a_longer_hint_extends_a_shorter_one_does_not_shorten() -> None:
    api = Api(duration=0.1, hints={0: "rate-limit:1s", 1: "rate-limit:3s"})
    async with AdaptiveRateService(api, max_concurrency=2) as service:
        await service.process(0)
        await service.process(1)
        await anyio.sleep(0.5)  # both reported at 0.1: held until 1.1, then until 3.1
        service.hold(0.1)  # ends before the current hold: changes nothing
        assert service.hold_remaining == near(2.6)
        assert service.hold_count >= 1  # 2 when the 1 s hint was reported first
        await service.process(2)
    assert api.started(2) == [near(3.1)]
    assert service.signals.count("rate-limit.hold") == service.hold_count


async def test_exception_with_retry_after_is_tried_again_after_the_hold() -> None:
    api = Api(hints={1: RateLimitException("429", retry_after="1.5")})
    async with AdaptiveRateService(api, max_concurrency=1, max_attempts=3) as service:
        for n in range(4):
            await service.process(n)
    assert api.started(1) == [0.0, near(1.5)]  # tried again in its slot: it keeps its place
    assert api.started(2) == api.started(3) == [near(1.5)]
    metrics = service.get_metrics()
    assert (metrics.total_completed, metrics.total_failed, metrics.total_enqueued) == (4, 0, 4)


async def test_any_exception_with_retry_after_works_and_attempts_are_bounded() -> None:
    class Http429(Exception):
        retry_after = timedelta(seconds=1)

    attempts: list[float] = []

    async def always_429(item: int) -> None:
        attempts.append(anyio.current_time())
        raise Http429

    async with AdaptiveRateService(always_429, max_attempts=3) as service:
        await service.process(0)
    assert attempts == [0.0, near(1.0), near(2.0)]
    assert service.get_metrics().total_failed == 1
    assert service.hold_count == 3  # the last refusal still holds the service


async def test_other_exceptions_fail_at_once() -> None:
    api = Api(hints={0: ValueError("bad request")})
    async with AdaptiveRateService(api, max_attempts=5) as service:
        await service.process(0)
        await service.process(1)
    assert [item for item, _ in api.calls] == [0, 1]
    metrics = service.get_metrics()
    assert (metrics.total_completed, metrics.total_failed) == (1, 1)
    assert service.hold_count == 0


async def test_max_hold_cuts_a_long_hint() -> None:
    api = Api(hints={0: "retry-after:3600s"})
    async with AdaptiveRateService(api, max_concurrency=1, max_hold=10) as service:
        await service.process(0)
        await service.process(1)
    assert api.started(1) == [near(10.0)]


async def test_garbled_hints_are_ignored() -> None:
    api = Api(hints={0: "rate-limit:soon", 1: "rate-limit:-5s"})
    async with AdaptiveRateService(api, max_concurrency=1) as service:
        for n in range(3):
            await service.process(n)
    assert [at for _, at in api.calls] == [0.0, 0.0, 0.0]
    assert service.hold_count == 0


@pytest.mark.real_time
async def test_hint_from_a_worker_thread() -> None:
    reported = anyio.Event()

    async def body(item: int) -> None:
        await anyio.to_thread.run_sync(lambda: current_operation().emit("rate-limit:30s"))
        reported.set()

    async with AdaptiveRateService(body, max_concurrency=1) as service:
        await service.process(0)
        with anyio.fail_after(10):
            await reported.wait()
        assert service.is_holding
        assert service.hold_remaining > 20  # nothing waits, so leaving the block does not wait it out


async def test_exception_in_block_cancels_held_work_and_accounts() -> None:
    api = Api(duration=0.1, hints={0: "rate-limit:60s"})
    with pytest.raises(TimeoutError):
        async with AdaptiveRateService(api, max_concurrency=1) as service:
            for n in range(6):
                await service.process(n)
            await anyio.sleep(1)
            raise TimeoutError
    metrics = service.get_metrics()
    assert metrics.total_completed == 1
    assert metrics.total_cancelled == 5
    assert metrics.total_completed + metrics.total_failed + metrics.total_cancelled == metrics.total_enqueued
    with pytest.raises(CoordinatorClosedError):
        await service.process(9)


async def test_outer_deadline_during_a_hold_leaves_nothing_running() -> None:
    api = Api(hints={1: RateLimitException(retry_after=30)})
    with anyio.move_on_after(5):
        async with AdaptiveRateService(api, max_concurrency=1, max_attempts=10) as service:
            await service.process(0)
            await service.process(1)
    metrics = service.get_metrics()
    assert metrics.active_count == 0
    assert (metrics.total_completed, metrics.total_cancelled) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"max_hold": 0}, ValueError, "max_hold"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"max_concurrency": "8"}, TypeError, "max_concurrency"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        AdaptiveRateService(Api(), **kwargs)


def test_bad_body() -> None:
    with pytest.raises(TypeError, match="body"):
        AdaptiveRateService(None)  # type: ignore[arg-type]


async def test_shared_sink_sees_hold_signals() -> None:
    sink = SignalSink(clock=anyio.current_time)
    names: list[str] = []
    sink.subscribe(lambda event: names.append(event.signal))
    async with AdaptiveRateService(Api(hints={0: "rate-limit:1s"}), max_concurrency=1, sink=sink) as service:
        await service.process(0)
        await service.process(1)
    assert [n for n in names if n.startswith("rate-limit.")] == ["rate-limit.hold", "rate-limit.resumed"]


steps = st.one_of(
    st.tuples(
        st.just("process"),
        st.integers(1, 4),
        st.sampled_from([0.0, 0.1, 1.0]),
        st.sampled_from([None, None, "rate-limit:300ms", "retry-after:2s", "raise:1", "raise:0.5"]),
    ),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5, 2.0])),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, max_size=15), limit=st.integers(1, 4), attempts=st.integers(1, 3))
async def test_property_no_start_during_a_hold_and_accounting(
    schedule: list[tuple[Any, ...]], limit: int, attempts: int
) -> None:
    """Random loads and hints: no first attempt starts while an earlier hint's hold lasts, the limit holds,
    each item is tried at most max_attempts times, and every item is counted once."""
    holds: list[tuple[int, float]] = []  # (sequence, end) of each hint reported
    starts: list[tuple[int, float]] = []  # (sequence, time) of each first attempt
    tries: dict[int, int] = {}
    plan: dict[int, tuple[float, str | None]] = {}
    sequence = [0]
    running = [0]
    problems: list[str] = []

    async def body(item: int) -> None:
        sequence[0] += 1
        tries[item] = tries.get(item, 0) + 1
        if tries[item] == 1:
            starts.append((sequence[0], anyio.current_time()))
        running[0] += 1
        if running[0] > limit:
            problems.append("over the limit")
        try:
            duration, hint = plan[item]
            await anyio.sleep(duration)
            if hint is None:
                return
            sequence[0] += 1
            if hint.startswith("raise:"):
                delay = float(hint[6:])
                holds.append((sequence[0], anyio.current_time() + delay))
                raise RateLimitException(retry_after=delay)
            holds.append((sequence[0], anyio.current_time() + (0.3 if "300ms" in hint else 2.0)))
            current_operation().emit(hint)
        finally:
            running[0] -= 1

    counter = 0
    async with AdaptiveRateService(body, max_concurrency=limit, max_attempts=attempts, max_pending=5) as service:
        for step in schedule:
            if step[0] == "process":
                for _ in range(step[1]):
                    counter += 1
                    plan[counter] = (step[2], step[3])
                    await service.process(counter)
            else:
                await anyio.sleep(step[1])
    for seq, at in starts:
        for hold_seq, end in holds:
            if hold_seq < seq and at < end - 1e-6:  # started after the hint, inside its hold
                problems.append(f"start at {at} inside a hold ending at {end}")
    assert problems == []
    assert all(n <= attempts for n in tries.values())
    metrics = service.get_metrics()
    assert metrics.total_enqueued == counter
    assert metrics.total_completed + metrics.total_failed == counter
    assert metrics.total_failed == sum(
        1 for item, (_, hint) in plan.items() if hint is not None and hint.startswith("raise:")
    )


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what the README shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert run_readme_examples(readme) == output_blocks(readme)[0]


class Load:
    """A body taking ``duration``, recording at each start how many run and what the service allows."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.service: AdaptiveRateService[Any] | None = None
        self.running = 0
        self.over: list[tuple[float, int, int]] = []
        self.hints: dict[Any, str] = {}

    async def __call__(self, item: Any) -> None:
        assert self.service is not None
        self.running += 1
        if self.running > self.service.current_concurrency:
            self.over.append((anyio.current_time(), self.running, self.service.current_concurrency))
        try:
            await anyio.sleep(self.duration)
            hint = self.hints.pop(item, None)
            if hint is not None:
                current_operation().emit(hint)
        finally:
            self.running -= 1


async def feed(service: AdaptiveRateService[Any], until: float) -> None:
    """Keep the service busy with items until ``until``."""
    n = 1000
    while anyio.current_time() < until:
        n += 1
        await service.process(n)


async def test_after_a_hint_concurrency_halves_then_rises_by_one_per_hold_length() -> None:
    load = Load(duration=0.1)
    load.hints[0] = "rate-limit:1s"
    seen: list[tuple[float, int]] = []
    async with AdaptiveRateService(load, max_concurrency=8, max_pending=20) as service:
        load.service = service
        assert service.current_concurrency == 8
        await service.process(0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, service, 7.0)
            for _ in range(14):
                await anyio.sleep(0.5)
                seen.append((round(anyio.current_time(), 1), service.current_concurrency))
    # hint at 0.1: 8 -> 4 at once; hold until 1.1; then +1 at 2.1, 3.1, 4.1, 5.1, never past 8
    assert seen == [
        (0.5, 4), (1.0, 4), (1.5, 4), (2.0, 4), (2.5, 5), (3.0, 5), (3.5, 6), (4.0, 6),
        (4.5, 7), (5.0, 7), (5.5, 8), (6.0, 8), (6.5, 8), (7.0, 8),
    ]  # fmt: skip
    assert load.over == []  # no start above the limit allowed at that moment
    assert service.hold_count == 1


async def test_concurrency_never_goes_below_one() -> None:
    load = Load(duration=0.1)
    load.hints.update({0: "rate-limit:200ms", 1: "rate-limit:200ms", 2: "rate-limit:200ms", 3: "rate-limit:200ms"})
    async with AdaptiveRateService(load, max_concurrency=2) as service:
        load.service = service
        for n in range(5):
            await service.process(n)
        await anyio.sleep(0.15)
        assert service.current_concurrency == 1
    assert service.hold_count == 3  # 0 and 1 report together: one hold; then 2 and 3 one after the other
    assert service.current_concurrency == 1  # each hold halved it again; 1 stays 1
    assert load.over == []


async def test_a_hint_during_the_ramp_cuts_again() -> None:
    load = Load(duration=0.1)
    load.hints[0] = "rate-limit:1s"
    async with AdaptiveRateService(load, max_concurrency=8, max_pending=20) as service:
        load.service = service
        await service.process(0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, service, 6.0)
            await anyio.sleep(2.5)  # held 0.1-1.1 at 4, rose to 5 at 2.1
            assert (service.current_concurrency, service.is_holding) == (5, False)
            service.hold(0.5)  # the API refuses again during the ramp
            assert service.current_concurrency == 2
            await anyio.sleep(0.4)
            assert service.current_concurrency == 2  # still held
            await anyio.sleep(0.5)  # resumed at 3.0, the next step is half a second
            assert service.current_concurrency == 2
            await anyio.sleep(0.2)  # 3.6
            assert service.current_concurrency == 3
            await anyio.sleep(1.5)  # 5.1: +1 at 4.0, 4.5, 5.0
            assert service.current_concurrency == 6
    assert load.over == []


async def test_attempts_tried_again_respect_the_lowered_concurrency() -> None:
    tried: dict[int, int] = {}
    running = [0]
    starts: list[tuple[float, int]] = []

    async def body(item: int) -> None:
        tried[item] = tried.get(item, 0) + 1
        running[0] += 1
        starts.append((anyio.current_time(), running[0]))
        try:
            await anyio.sleep(0.1)
            if tried[item] == 1:
                raise RateLimitException("429", retry_after=1)
        finally:
            running[0] -= 1

    async with AdaptiveRateService(body, max_concurrency=4, max_attempts=2) as service:
        for n in range(4):
            await service.process(n)
    retries = [(round(at, 1), n) for at, n in starts[4:]]
    assert retries == [(1.1, 1), (1.1, 2), (1.2, 1), (1.2, 2)]  # two at a time once the hold ends
    assert service.get_metrics().total_completed == 4
