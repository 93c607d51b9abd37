"""BatchingAtom under faults: outer cancel scopes at random deadlines, exceptions out of ``async with``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.atoms.batching import BatchingAtom, BatchingStats

steps = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(1, 9)),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.001, 0.004, 0.05, 0.3, 1.0])),
    st.tuples(st.just("drain")),
)


@dataclass
class Deliveries:
    """What ``on_batch`` saw: each batch with the virtual time it arrived and how its call ended."""

    delay: float
    fail_every: int
    started: list[tuple[float, list[int]]] = field(default_factory=list)
    finished: int = 0
    failed: int = 0
    interrupted: int = 0

    async def __call__(self, items: list[int]) -> None:
        self.started.append((anyio.current_time(), list(items)))
        try:
            await anyio.sleep(self.delay)
            if self.fail_every and len(self.started) % self.fail_every == 0:
                self.failed += 1
                raise OSError("sink down")
        except anyio.get_cancelled_exc_class():
            self.interrupted += 1
            raise
        self.finished += 1

    @property
    def items(self) -> list[int]:
        return [item for _, batch in self.started for item in batch]


def check_settled(atom: BatchingAtom[int], deliveries: Deliveries, accepted: int) -> None:
    """Every accepted item was handed to on_batch exactly once or counted as never delivered; nothing pends."""
    stats = atom.get_stats()
    delivered = deliveries.items
    assert sorted(delivered) == list(range(len(delivered)))  # each once, a prefix in order
    assert delivered == sorted(delivered)
    assert stats == BatchingStats(
        batches=len(deliveries.started),
        items=len(delivered),
        failures=deliveries.failed + deliveries.interrupted,
        pending=0,
        cancelled=accepted - len(delivered),
    )
    assert atom.stats().active == 0
    assert atom.stats().pending == 0


class Boom(Exception):
    """Raised out of the ``async with`` block."""


@pytest.mark.parametrize("ending", ["leave", "raise", "outer-cancel"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schedule=st.lists(steps, max_size=12),
    max_batch_size=st.integers(1, 4),
    flush_interval=st.sampled_from([0.002, 0.01, 0.5]),
    delay=st.sampled_from([0.0, 0.001, 0.003, 0.2]),
    fail_every=st.sampled_from([0, 2, 3]),
    deadline=st.floats(0.0, 0.05),
)
async def test_random_schedules_leave_cleanly_and_account_for_every_item(
    ending: str,
    schedule: list[tuple[Any, ...]],
    max_batch_size: int,
    flush_interval: float,
    delay: float,
    fail_every: int,
    deadline: float,
) -> None:
    """Whatever ends the block (its end, an exception, an outer deadline), the atom leaves cleanly and settles.

    Nothing reaches ``on_batch`` after the block raised or the outer scope was cancelled, and items handed
    to ``on_batch`` are never counted as undelivered.
    """
    deliveries = Deliveries(delay, fail_every)
    accepted = 0
    stopped_at: float | None = None
    atom: BatchingAtom[int] = BatchingAtom(deliveries, max_batch_size=max_batch_size, flush_interval=flush_interval)

    async def body() -> None:
        nonlocal accepted, stopped_at
        async with atom:
            for step in schedule:
                if step[0] == "enqueue":
                    if atom.get_stats().cancelled or atom.coordinator.is_completed:
                        break
                    for _ in range(step[1]):
                        atom.enqueue(accepted)
                        accepted += 1
                elif step[0] == "sleep":
                    await anyio.sleep(step[1])
                else:
                    await atom.drain()
            if ending == "raise":
                stopped_at = anyio.current_time()
                raise Boom

    start = anyio.current_time()
    if ending == "raise":
        with pytest.raises(Boom):
            await body()
    elif ending == "outer-cancel":
        with anyio.move_on_after(deadline) as scope:
            await body()
        if scope.cancelled_caught:
            stopped_at = start + deadline
    else:
        await body()
    if stopped_at is not None:
        late = [t for t, _ in deliveries.started if t > stopped_at]
        assert not late, f"on_batch started at {late} after the block stopped at {stopped_at}"
    else:
        assert deliveries.items == list(range(accepted))
    check_settled(atom, deliveries, accepted)
    await anyio.sleep(1)  # nothing left running wakes up later
    check_settled(atom, deliveries, accepted)


@pytest.mark.parametrize("deadline", [0.0, 0.001, 0.005, 0.0051, 0.01, 0.02])
async def test_an_outer_deadline_with_items_in_flight_leaves_the_scope(deadline: float) -> None:
    """The reported case: ``move_on_after`` around the block while batches are delivered and buffered."""
    deliveries = Deliveries(delay=0.004, fail_every=0)
    atom: BatchingAtom[int] = BatchingAtom(deliveries, max_batch_size=3, flush_interval=0.002)
    accepted = 0
    with anyio.move_on_after(deadline):
        async with atom:  # a zero deadline cancels the entry itself: nothing is accepted
            for accepted in range(1, 11):
                atom.enqueue(accepted - 1)
    assert all(t <= deadline for t, _ in deliveries.started)
    check_settled(atom, deliveries, accepted)


async def test_nothing_reaches_on_batch_after_the_block_raised() -> None:
    """A full batch cut just before the block raises is never handed over; it is counted as cancelled."""
    deliveries = Deliveries(delay=0.0, fail_every=0)
    with pytest.raises(Boom):
        async with BatchingAtom(deliveries, max_batch_size=3, flush_interval=1.0) as atom:
            for i in range(3):
                atom.enqueue(i)
            raise Boom
    assert deliveries.started == []
    assert atom.get_stats() == BatchingStats(batches=0, items=0, failures=0, pending=0, cancelled=3)


async def test_a_batch_interrupted_by_the_error_counts_as_delivered_and_failed() -> None:
    """on_batch received the batch: it is a failed batch, its items are not "never delivered"."""
    deliveries = Deliveries(delay=5.0, fail_every=0)
    with pytest.raises(Boom):
        async with BatchingAtom(deliveries, max_batch_size=2, flush_interval=1.0) as atom:
            for i in range(5):
                atom.enqueue(i)
            await anyio.sleep(1)
            raise Boom
    assert [batch for _, batch in deliveries.started] == [[0, 1]]
    assert deliveries.interrupted == 1
    assert atom.get_stats() == BatchingStats(batches=1, items=2, failures=1, pending=0, cancelled=3)
