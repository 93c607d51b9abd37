"""RetryAtom under faults: nothing starts after a cancel, an error or an outer deadline; every item accounted."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.atoms.retry import RetryAtom


@dataclass
class Attempts:
    """A body failing its first ``failures[item]`` attempts, each taking ``duration``; records every start."""

    duration: float
    failures: dict[int, int]
    stopped: bool = False
    started: list[tuple[int, float]] = field(default_factory=list)
    late: list[tuple[int, float]] = field(default_factory=list)
    succeeded: set[int] = field(default_factory=set)

    async def __call__(self, item: int) -> None:
        if self.stopped:
            self.late.append((item, anyio.current_time()))
        self.started.append((item, anyio.current_time()))
        await anyio.sleep(self.duration)
        if sum(1 for i, _ in self.started if i == item) <= self.failures[item]:
            raise OSError(f"attempt failed for {item}")
        self.succeeded.add(item)


class Boom(Exception):
    """Raised out of the ``async with`` block."""


@pytest.mark.parametrize("ending", ["cancel", "raise", "outer-cancel"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    failures=st.lists(st.integers(0, 4), min_size=1, max_size=8),
    duration=st.sampled_from([0.0, 0.0, 0.5, 1.0]),
    backoff=st.sampled_from([0.5, 1.0, 2.0]),
    stop_at=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]),
    max_concurrency=st.integers(1, 4),
)
async def test_no_attempt_starts_after_the_stop(
    ending: str, failures: list[int], duration: float, backoff: float, stop_at: float, max_concurrency: int
) -> None:
    """Stops land on the same virtual instants as backoff timers; no attempt may start once the stop returned."""
    body = Attempts(duration, dict(enumerate(failures)))
    atom: RetryAtom[int] = RetryAtom(body, max_attempts=4, backoff=backoff, max_concurrency=max_concurrency)
    start = anyio.current_time()

    async def run() -> None:
        async with atom:
            for item in range(len(failures)):
                await atom.enqueue(item)
            await anyio.sleep(stop_at)
            if ending == "cancel":
                atom.coordinator.cancel()
                body.stopped = True
                await anyio.sleep(10)
            else:
                body.stopped = True
                raise Boom

    if ending == "outer-cancel":
        with anyio.move_on_after(stop_at) as scope:
            async with atom:
                for item in range(len(failures)):
                    await atom.enqueue(item)
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        body.stopped = True
        assert all(t <= start + stop_at for _, t in body.started)
    elif ending == "raise":
        with pytest.raises(Boom):
            await run()
    else:
        await run()
    await anyio.sleep(10)
    assert body.late == []
    c = atom.coordinator
    assert c.total_completed + c.total_failed + c.total_cancelled == c.total_enqueued
    assert c.pending_count == c.active_count == 0
    assert c.total_completed == len(body.succeeded)


async def test_a_cancel_on_the_instant_the_backoff_ends_starts_no_attempt() -> None:
    """The reported race: the backoff timer has fired, then ``cancel()`` returns; the retry must not start."""
    body = Attempts(0.0, {0: 5})
    async with RetryAtom(body, max_attempts=3, backoff=1.0) as atom:
        await atom.enqueue(0)
        await anyio.sleep(1.0)  # wakes on the same instant as the backoff timer
        atom.coordinator.cancel()
        body.stopped = True
    assert body.late == []
    assert [t for _, t in body.started] in ([0.0], [0.0, 1.0])
    assert atom.coordinator.total_cancelled == 1
