"""KeyedPriorityFanOut: priority jumps only its own key's queue, per-key order per lane, depth, accounting."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import CoordinatorClosedError, SignalSink
from ephemeral.core.testing import assert_accounted, output_blocks, run_readme_examples
from ephemeral.patterns.keyedpriorityfanout import KeyedPriorityFanOut, PendingCounts


class Command(NamedTuple):
    user: str
    name: str
    duration: float = 1.0
    urgent: bool = False


class Handler:
    def __init__(self) -> None:
        self.started: list[Command] = []
        self.finished: list[Command] = []
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total = 0
        self.total_peak = 0

    async def __call__(self, command: Command) -> None:
        self.started.append(command)
        self.running[command.user] = self.running.get(command.user, 0) + 1
        self.peak[command.user] = max(self.peak.get(command.user, 0), self.running[command.user])
        self.total += 1
        self.total_peak = max(self.total_peak, self.total)
        try:
            await anyio.sleep(command.duration)
            if command.name.startswith("fail"):
                raise RuntimeError(command.name)
        finally:
            self.running[command.user] -= 1
            self.total -= 1
        self.finished.append(command)

    def names(self, user: str) -> list[str]:
        return [c.name for c in self.started if c.user == user]


def fanout(handler: Handler, **kwargs: Any) -> KeyedPriorityFanOut[str, Command]:
    arguments: dict[str, Any] = {"max_concurrency": 32, "per_key_concurrency": 1, **kwargs}
    return KeyedPriorityFanOut(key_selector=lambda c: c.user, body=handler, **arguments)


async def test_seed_example() -> None:
    handler = Handler()
    async with fanout(handler, max_priority_depth=100) as f:
        for n in range(4):
            await f.enqueue(Command("u1", f"normal-{n}"))
        await anyio.sleep(0.5)
        accepted = await f.enqueue_priority(Command("u1", "urgent"))
        assert accepted
        counts = f.pending_counts
        assert counts == PendingCounts(priority=1, normal=3)
        assert (counts.priority, counts.normal) == (1, 3)
        await f.drain()
    assert handler.names("u1") == ["normal-0", "urgent", "normal-1", "normal-2", "normal-3"]
    assert f.pending_counts == (0, 0)


async def test_priority_jumps_only_its_own_keys_queue() -> None:
    """With one global slot, a priority item of key b waits for b's turn: it does not overtake key a."""
    handler = Handler()
    async with fanout(handler, max_concurrency=1) as f:
        await f.enqueue(Command("a", "a0"))
        await f.enqueue(Command("b", "b0"))
        await f.enqueue(Command("a", "a1"))
        await f.enqueue(Command("b", "b1"))
        await anyio.sleep(0.5)
        assert await f.enqueue_priority(Command("b", "b-urgent"))
    assert [c.name for c in handler.started] == ["a0", "b-urgent", "a1", "b0", "b1"]


async def test_per_key_order_within_each_lane() -> None:
    handler = Handler()
    async with fanout(handler) as f:
        await f.enqueue(Command("u", "n0", 5.0))
        await anyio.sleep(0.1)
        for n in range(1, 4):
            await f.enqueue(Command("u", f"n{n}"))
        for p in range(3):
            assert await f.enqueue_priority(Command("u", f"p{p}"))
        await f.enqueue(Command("u", "n4"))
        assert await f.enqueue_priority(Command("u", "p3"))
        assert f.get_pending_counts_for_key("u") == (4, 4)
    assert handler.names("u") == ["n0", "p0", "p1", "p2", "p3", "n1", "n2", "n3", "n4"]
    assert handler.peak["u"] == 1


async def test_busy_key_does_not_stall_others() -> None:
    handler = Handler()
    async with fanout(handler, max_concurrency=2) as f:
        for n in range(10):
            await f.enqueue(Command("hot", f"h{n}", 10.0))
        await f.enqueue(Command("cold", "c0"))
        await f.enqueue_priority(Command("cold", "c-urgent"))
        await anyio.sleep(2.5)
        assert [c.name for c in handler.finished] == ["c-urgent", "c0"]
        f.cancel()
    assert f.pending_counts == (0, 0)


async def test_priority_depth_refuses_beyond_the_limit() -> None:
    handler = Handler()
    async with fanout(handler, max_priority_depth=2) as f:
        await f.enqueue(Command("u", "busy", 5.0))
        await anyio.sleep(0.1)
        assert await f.enqueue_priority(Command("u", "p0"))
        assert await f.enqueue_priority(Command("v", "p1", 5.0))  # v starts at once: no longer waiting
        await anyio.sleep(0.1)
        assert await f.enqueue_priority(Command("u", "p2"))
        assert not await f.enqueue_priority(Command("u", "p3"))
        assert not f.try_enqueue(Command("u", "p4"), priority=True)
        assert f.try_enqueue(Command("u", "n0"))
        assert f.pending_counts == (2, 1)
    assert handler.names("u") == ["busy", "p0", "p2", "n0"]
    assert f.get_metrics().total_enqueued == 5


async def test_bounded_intake() -> None:
    handler = Handler()
    async with fanout(handler, max_concurrency=1, max_pending=2) as f:
        await f.enqueue(Command("a", "a0", 5.0))
        await anyio.sleep(0.1)
        await f.enqueue(Command("a", "a1"))
        assert await f.enqueue_priority(Command("b", "b0"))
        assert not f.try_enqueue(Command("c", "c0"))
        with anyio.move_on_after(1) as scope:
            await f.enqueue_priority(Command("c", "c1"))
        assert scope.cancelled_caught
        assert f.pending_counts == (1, 1)
    assert f.get_metrics().total_completed == 3


async def test_exception_in_block_cancels_and_accounts() -> None:
    handler = Handler()
    with pytest.raises(ConnectionResetError):
        async with fanout(handler, max_concurrency=2) as f:
            for n in range(5):
                await f.enqueue(Command("k" + str(n % 2), f"n{n}", 3.0))
            await f.enqueue_priority(Command("k0", "urgent", 3.0))
            await anyio.sleep(1)
            raise ConnectionResetError
    metrics = f.get_metrics()
    assert metrics.total_cancelled == 6
    assert metrics.total_completed + metrics.total_failed + metrics.total_cancelled == metrics.total_enqueued
    assert f.pending_counts == (0, 0)
    with pytest.raises(CoordinatorClosedError):
        await f.enqueue_priority(Command("x", "y"))


async def test_failures_are_counted() -> None:
    handler = Handler()
    async with fanout(handler) as f:
        await f.enqueue(Command("u", "fail-1"))
        await f.enqueue_priority(Command("u", "fail-2"))
        await f.enqueue(Command("u", "ok"))
    metrics = f.get_metrics()
    assert (metrics.total_completed, metrics.total_failed) == (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"per_key_concurrency": 0}, ValueError, "per_key_concurrency"),
        ({"per_key_concurrency": 3, "max_concurrency": 2}, ValueError, "per_key_concurrency"),
        ({"max_priority_depth": 0}, ValueError, "max_priority_depth"),
        ({"max_priority_depth": 1.5}, TypeError, "max_priority_depth"),
        ({"max_pending": 0}, ValueError, "max_pending"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        fanout(Handler(), **kwargs)


def test_bad_callables() -> None:
    with pytest.raises(TypeError, match="key_selector"):
        KeyedPriorityFanOut(key_selector=None, body=Handler(), max_concurrency=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        KeyedPriorityFanOut(key_selector=str, body=None, max_concurrency=1)  # type: ignore[arg-type]


steps = st.one_of(
    st.tuples(
        st.just("enqueue"),
        st.sampled_from("abc"),
        st.booleans(),
        st.sampled_from([0.0, 0.1, 1.0, 3.0]),
        st.booleans(),
    ),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5, 2.0])),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schedule=st.lists(steps, max_size=30),
    limit=st.integers(1, 3),
    per_key=st.integers(1, 2),
    depth=st.one_of(st.none(), st.integers(1, 3)),
)
async def test_property_priority_order_limits_depth_and_accounting(
    schedule: list[tuple[Any, ...]], limit: int, per_key: int, depth: int | None
) -> None:
    """Random loads: each start of a key takes its oldest waiting priority item, else its oldest normal
    one; limits hold; enqueue_priority refuses exactly at the depth; every accepted item is counted once."""
    per_key = min(per_key, limit)
    model: dict[str, tuple[deque[Command], deque[Command]]] = {key: (deque(), deque()) for key in "abc"}
    violations: list[str] = []
    handler = Handler()

    async def body(command: Command) -> None:
        priority, normal = model[command.user]
        expected = priority[0] if priority else normal[0]
        if command != expected:
            violations.append(f"{command} started instead of {expected}")
        (priority if command.urgent else normal).remove(command)
        await handler(command)

    counter = 0
    accepted = 0
    f: KeyedPriorityFanOut[str, Command] = KeyedPriorityFanOut(
        key_selector=lambda c: c.user,
        body=body,
        max_concurrency=limit,
        per_key_concurrency=per_key,
        max_priority_depth=depth,
        max_pending=6,
    )
    async with f:
        for step in schedule:
            if step[0] == "sleep":
                await anyio.sleep(step[1])
                continue
            _, user, urgent, duration, fails = step
            counter += 1
            command = Command(user, f"{'fail' if fails else 'ok'}-{counter}", duration, urgent)
            if urgent:
                waiting = sum(len(p) for p, _ in model.values())
                room = depth is None or waiting < depth
                ok = await f.enqueue_priority(command)
                assert ok == room
                if ok:  # accepted just now, with no await since: it cannot have started
                    model[user][0].append(command)
            else:
                await f.enqueue(command)
                model[user][1].append(command)
                ok = True
            accepted += ok
            assert f.pending_counts == (
                sum(len(p) for p, _ in model.values()),
                sum(len(n) for _, n in model.values()),
            )
    assert violations == []
    assert handler.total_peak <= limit
    assert all(peak <= per_key for peak in handler.peak.values())
    metrics = f.get_metrics()
    assert metrics.total_enqueued == accepted
    assert metrics.total_completed + metrics.total_failed == accepted
    assert metrics.total_failed == sum(c.name.startswith("fail") for c in handler.started)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deadline=st.integers(0, 8000).map(lambda ms: ms / 1000))
async def test_outer_cancel_at_a_random_deadline(deadline: float) -> None:
    """An outer cancel scope firing at any moment: nothing starts after it, every item counted, lanes emptied."""
    handler = Handler()
    f = fanout(handler, max_concurrency=2, max_pending=4)
    with anyio.move_on_after(deadline):
        async with f:
            for n in range(16):
                command = Command("k" + str(n % 3), f"c{n}", 0.7)
                if n % 4 == 3:
                    await f.enqueue_priority(command)
                else:
                    await f.enqueue(command)
    assert handler.total == 0
    assert f.pending_counts == (0, 0)
    assert_accounted(f)


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what the README shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert run_readme_examples(readme) == output_blocks(readme)[0]


async def test_lane_rules_skip_and_hold_one_lane() -> None:
    """cancel_priority_on skips waiting priority items (counted); defer_normal_on holds normal items only."""
    sink = SignalSink(clock=anyio.current_time)
    handler = Handler()
    async with fanout(
        handler, max_concurrency=1, sink=sink, cancel_priority_on="user.gone", defer_normal_on="db.busy"
    ) as f:
        await f.enqueue(Command("u", "busy", 2.0))
        await anyio.sleep(0.1)
        assert await f.enqueue_priority(Command("u", "p0"))
        await f.enqueue(Command("u", "n0"))
        sink.emit("user.gone")
        sink.emit("db.busy")
        await anyio.sleep(3)
        assert f.pending_counts == (0, 1)  # p0 skipped; n0 held back
        sink.retract("user.gone")
        assert await f.enqueue_priority(Command("u", "p1"))  # the priority lane is not held
        await anyio.sleep(3)
        sink.retract("db.busy")
    assert handler.names("u") == ["busy", "p1", "n0"]
    metrics = f.get_metrics()
    assert (metrics.total_skipped, metrics.total_completed) == (1, 3)
    assert_accounted(f)
