"""ControlledFanOut: global and per-key limits, no head-of-line blocking, per-key order, accounting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import CoordinatorClosedError, SignalSink, current_operation
from ephemeral.core.testing import assert_accounted, output_blocks, run_readme_examples
from ephemeral.patterns.controlledfanout import ControlledFanOut


@dataclass(frozen=True)
class Request:
    tenant_id: str
    n: int
    duration: float = 1.0


class Tracker:
    """A body recording per-key and global concurrency, start and finish order."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.global_running = 0
        self.global_peak = 0
        self.started: list[Request] = []
        self.finished: list[tuple[Request, float]] = []

    async def __call__(self, request: Request) -> None:
        key = request.tenant_id
        self.started.append(request)
        self.running[key] = self.running.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self.running[key])
        self.global_running += 1
        self.global_peak = max(self.global_peak, self.global_running)
        try:
            await anyio.sleep(request.duration)
        finally:
            self.running[key] -= 1
            self.global_running -= 1
        self.finished.append((request, anyio.current_time()))


def fanout(body: Tracker, global_limit: int, per_key: int, **kwargs: Any) -> ControlledFanOut[str, Request]:
    return ControlledFanOut(
        key_selector=lambda request: request.tenant_id,
        body=body,
        max_global_concurrency=global_limit,
        per_key_concurrency=per_key,
        **kwargs,
    )


async def test_seed_example() -> None:
    """Tenant1 is held at 5 at once; tenant2 runs in parallel with it."""
    body = Tracker()
    async with fanout(body, 100, 5) as f:
        for n in range(12):
            await f.enqueue(Request("tenant1", n))
        await f.enqueue(Request("tenant2", 0))
        await anyio.sleep(0.5)
        assert f.get_active_count_for_key("tenant1") == 5
        assert f.get_pending_count_for_key("tenant1") == 7
        assert f.get_active_count_for_key("tenant2") == 1
        assert f.active_count == 6
        assert f.key_count == 2
        await f.drain()
    assert body.peak == {"tenant1": 5, "tenant2": 1}
    tenant2_done = next(at for request, at in body.finished if request.tenant_id == "tenant2")
    assert tenant2_done == 1.0  # beside tenant1's first five, not after its backlog
    assert max(at for _, at in body.finished) == 3.0  # 12 items, 5 at a time, 1 s each
    assert f.get_metrics().total_completed == 13


async def test_a_flooding_key_never_blocks_the_others() -> None:
    """One hot tenant with a long backlog at per-key limit 1 and a global limit of 2: cold tenants flow through."""
    body = Tracker()
    async with fanout(body, 2, 1) as f:
        for n in range(50):
            await f.enqueue(Request("hot", n, duration=10.0))
        for tenant in "abcde":
            await f.enqueue(Request(tenant, 0, duration=1.0))
        await anyio.sleep(5.5)
        cold = sorted(request.tenant_id for request, _ in body.finished if request.tenant_id != "hot")
        assert cold == list("abcde")  # one slot is the hot key's; the other serves the cold keys in turn
        f.cancel()
    assert body.peak["hot"] == 1


async def test_global_limit_holds_over_keys() -> None:
    body = Tracker()
    async with fanout(body, 3, 2) as f:
        for n in range(30):
            await f.enqueue(Request("k" + str(n % 7), n))
    assert body.global_peak == 3
    assert max(body.peak.values()) <= 2
    assert f.get_metrics().total_completed == 30


async def test_per_key_order_at_limit_one() -> None:
    body = Tracker()
    async with fanout(body, 8, 1) as f:
        for n in range(40):
            await f.enqueue(Request("k" + str(n % 3), n, duration=(n * 7 % 5) / 10))
    for key in ("k0", "k1", "k2"):
        started = [request.n for request in body.started if request.tenant_id == key]
        done = [request.n for request, _ in body.finished if request.tenant_id == key]
        assert started == done == sorted(started)


async def test_bounded_intake_waits_and_try_enqueue_refuses() -> None:
    body = Tracker()
    async with fanout(body, 1, 1, max_pending=2) as f:
        await f.enqueue(Request("a", 0, 5.0))
        await anyio.sleep(0.1)
        await f.enqueue(Request("a", 1))
        await f.enqueue(Request("b", 2))
        assert not f.try_enqueue(Request("c", 3))
        with anyio.move_on_after(1) as scope:
            await f.enqueue(Request("c", 3))
        assert scope.cancelled_caught
    assert f.get_metrics().total_completed == 3


async def test_body_failures_and_signals_go_to_the_sink() -> None:
    sink = SignalSink(clock=anyio.current_time)

    async def body(request: Request) -> None:
        current_operation().emit(f"done.{request.tenant_id}")
        if request.n % 2:
            raise RuntimeError(request.n)

    async with ControlledFanOut(
        key_selector=lambda r: r.tenant_id, body=body, max_global_concurrency=2, sink=sink
    ) as f:
        for n in range(4):
            await f.enqueue(Request("t", n))
        await f.drain()
        assert sink.count("done.t") == 4
    metrics = f.get_metrics()
    assert (metrics.total_completed, metrics.total_failed) == (2, 2)


async def test_exception_in_block_cancels_and_accounts() -> None:
    body = Tracker()
    with pytest.raises(LookupError):
        async with fanout(body, 2, 1) as f:
            for n in range(6):
                await f.enqueue(Request("k" + str(n % 2), n, duration=3.0))
            await anyio.sleep(1)
            raise LookupError
    metrics = f.get_metrics()
    assert metrics.total_cancelled == 6
    assert metrics.total_completed + metrics.total_failed + metrics.total_cancelled == metrics.total_enqueued
    with pytest.raises(CoordinatorClosedError):
        await f.enqueue(Request("x", 0))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_global_concurrency": 0}, ValueError, "max_global_concurrency"),
        ({"per_key_concurrency": 0}, ValueError, "per_key_concurrency"),
        ({"per_key_concurrency": 5, "max_global_concurrency": 4}, ValueError, "per_key_concurrency"),
        ({"max_pending": 0}, ValueError, "max_pending"),
        ({"max_global_concurrency": "4"}, TypeError, "max_global_concurrency"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    arguments: dict[str, Any] = {"max_global_concurrency": 4, "per_key_concurrency": 1, **kwargs}
    with pytest.raises(error, match=name):
        ControlledFanOut(key_selector=str, body=Tracker(), **arguments)


def test_bad_callables() -> None:
    with pytest.raises(TypeError, match="key_selector"):
        ControlledFanOut(key_selector=1, body=Tracker(), max_global_concurrency=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        ControlledFanOut(key_selector=str, body=1, max_global_concurrency=1)  # type: ignore[arg-type]


steps = st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from("abcd"), st.integers(1, 6), st.sampled_from([0.0, 0.1, 1.0, 3.0])),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5, 2.0])),
    st.tuples(st.just("cancel")),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(steps, max_size=20), global_limit=st.integers(1, 4), per_key=st.integers(1, 3))
async def test_property_limits_order_no_blocking_and_accounting(
    schedule: list[tuple[Any, ...]], global_limit: int, per_key: int
) -> None:
    """Random loads: both limits hold, each key starts in enqueue order (and finishes in order at limit 1), a
    free global slot never idles while a key below its limit has work waiting, every item is counted once."""
    per_key = min(per_key, global_limit)
    body = Tracker()
    violations: list[str] = []
    counter = 0
    cancelled = False
    f = fanout(body, global_limit, per_key, max_pending=6)

    def check_work_conserving() -> None:
        if body.global_running < global_limit:
            for key in "abcd":
                if body.running.get(key, 0) < per_key and f.get_pending_count_for_key(key):
                    violations.append(f"key {key} waits while a global slot and its key slot are free")

    async with f:
        for step in schedule:
            if step[0] == "enqueue":
                for _ in range(step[2]):
                    counter += 1
                    try:
                        await f.enqueue(Request(step[1], counter, step[3]))
                    except CoordinatorClosedError:
                        assert cancelled
            elif step[0] == "sleep":
                await anyio.sleep(step[1])
                await anyio.sleep(0.001)  # let dispatch settle before looking
                if not cancelled:
                    check_work_conserving()
            else:
                f.cancel()
                cancelled = True
    assert violations == []
    assert body.global_peak <= global_limit
    assert all(peak <= per_key for peak in body.peak.values())
    for key in "abcd":
        started = [r.n for r in body.started if r.tenant_id == key]
        assert started == sorted(started)
        if per_key == 1:
            done = [r.n for r, _ in body.finished if r.tenant_id == key]
            assert done == started[: len(done)]
    m = f.get_metrics()
    assert m.total_completed + m.total_failed + m.total_cancelled == m.total_enqueued
    assert m.total_completed == len(body.finished)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deadline=st.integers(0, 8000).map(lambda ms: ms / 1000))
async def test_outer_cancel_at_a_random_deadline(deadline: float) -> None:
    """An outer cancel scope firing at any moment: nothing starts after it, every item is counted."""
    body = Tracker()
    f = fanout(body, 3, 1, max_pending=5)
    start = anyio.current_time()
    with anyio.move_on_after(deadline):
        async with f:
            for n in range(20):
                await f.enqueue(Request("k" + str(n % 4), n, 0.9))
    assert all(at - start <= deadline + 1e-6 for _, at in body.finished)
    assert_accounted(f)


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what the README shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert run_readme_examples(readme) == output_blocks(readme)[0]
