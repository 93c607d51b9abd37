"""The lifecycle base: entered once, drained on a clean exit, aborted on an error, closed once, and
correct under outer cancel scopes firing at any moment (issue: a cancellation during entry made the
first enqueue both count an item and fail)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import TaskGroup
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralKeyedWorkCoordinator,
    EphemeralOptions,
    EphemeralResultCoordinator,
    EphemeralWorkCoordinator,
    PriorityWorkCoordinator,
    PriorityWorkCoordinatorOptions,
)
from ephemeral.core.lowlevel import (
    ClosableResource,
    CoordinatorBase,
    PersistAtom,
    TaskGroupOwner,
    cancel_probe,
    owned_task_group,
)
from ephemeral.core.testing import assert_lifecycle_faults


class Recorder(TaskGroupOwner):
    """Records which lifecycle steps ran, in order; one background task ticks until cancelled."""

    def __init__(self, *, fail_on_enter: bool = False, fail_on_drain: bool = False) -> None:
        self.steps: list[str] = []
        self.ticks = 0
        self.fail_on_enter = fail_on_enter
        self.fail_on_drain = fail_on_drain

    async def _tick(self) -> None:
        try:
            while True:
                await anyio.sleep(1)
                self.ticks += 1
        finally:
            self.steps.append("task-cancelled")

    async def _on_enter(self, tg: TaskGroup) -> None:
        self.steps.append("enter")
        tg.start_soon(self._tick)
        if self.fail_on_enter:
            raise OSError("cannot start")

    async def _on_clean_exit(self) -> None:
        self.steps.append("drain")
        await anyio.sleep(2.5)
        if self.fail_on_drain:
            raise OSError("cannot drain")

    def _on_error_exit(self) -> None:
        self.steps.append("abort")

    def _on_close(self) -> None:
        self.steps.append("close")


async def test_clean_exit_drains_then_closes_then_cancels_background_tasks() -> None:
    """Leaving the block cleanly drains (background tasks still run), closes once, then cancels them."""
    async with Recorder() as recorder:
        assert recorder.steps == ["enter"]
    assert recorder.steps == ["enter", "drain", "close", "task-cancelled"]
    assert recorder.ticks == 2  # the ticker ran while the drain waited


async def test_exception_aborts_closes_and_propagates_unchanged() -> None:
    """An exception in the block aborts, closes, and leaves `async with` as itself (no exception group)."""
    recorder = Recorder()
    with pytest.raises(KeyError):
        async with recorder:
            raise KeyError("boom")
    assert recorder.steps == ["enter", "abort", "close", "task-cancelled"]


async def test_failing_drain_aborts() -> None:
    """A drain that raises is an error exit: abort runs, then close, and the error propagates."""
    recorder = Recorder(fail_on_drain=True)
    with pytest.raises(OSError, match="cannot drain"):
        async with recorder:
            pass
    assert recorder.steps == ["enter", "drain", "abort", "close", "task-cancelled"]


async def test_failing_enter_closes_and_propagates() -> None:
    """An error while starting closes what was opened and leaves `async with` unchanged."""
    recorder = Recorder(fail_on_enter=True)
    with pytest.raises(OSError, match="cannot start"):
        async with recorder:
            pytest.fail("the block must not run")
    assert recorder.steps == ["enter", "close", "task-cancelled"]


async def test_entered_only_once() -> None:
    """A second `async with`, after the first or inside it, raises RuntimeError."""
    recorder = Recorder()
    async with recorder:
        with pytest.raises(RuntimeError, match=r"already been entered|only once"):
            async with recorder:
                pass
    with pytest.raises(RuntimeError, match="only once"):
        async with recorder:
            pass


async def test_outer_cancel_scope_aborts_and_is_absorbed_by_its_scope() -> None:
    """An outer deadline firing in the block aborts the owner; the deadline's scope absorbs the cancellation."""
    recorder = Recorder()
    with anyio.move_on_after(1.5) as scope:
        async with recorder:
            await anyio.sleep(10)
    assert scope.cancelled_caught
    # The outer cancellation reaches the background task on its own too (on trio, possibly first).
    assert [step for step in recorder.steps if step != "task-cancelled"] == ["enter", "abort", "close"]
    assert "task-cancelled" in recorder.steps


async def test_outer_cancel_scope_during_drain_aborts() -> None:
    """A deadline firing while the clean exit drains turns it into an abort."""
    recorder = Recorder()
    with anyio.move_on_after(1) as scope:
        async with recorder:
            pass
    assert scope.cancelled_caught
    assert [step for step in recorder.steps if step != "task-cancelled"] == ["enter", "drain", "abort", "close"]
    assert "task-cancelled" in recorder.steps


async def test_owned_task_group_keeps_the_blocks_exception_unwrapped() -> None:
    """owned_task_group cancels its tasks when the block ends and lets the block's exception out as itself."""
    cancelled = anyio.Event()

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with pytest.raises(ValueError, match="x"):
        async with owned_task_group() as tg:
            tg.start_soon(forever)
            await anyio.lowlevel.checkpoint()
            raise ValueError("x")
    assert cancelled.is_set()


# -- issue 10 item 4: a cancellation during entry, then the first enqueue ------------------------------


async def _noop(item: Any) -> Any:
    await anyio.sleep(0.01)
    return item


COORDINATORS: dict[str, Callable[[], CoordinatorBase[Any, Any]]] = {
    "work": lambda: EphemeralWorkCoordinator(_noop, EphemeralOptions(max_concurrency=2)),
    "keyed": lambda: EphemeralKeyedWorkCoordinator(lambda item: item % 3, _noop, EphemeralOptions(max_concurrency=2)),
    "priority": lambda: PriorityWorkCoordinator(
        _noop, PriorityWorkCoordinatorOptions(ephemeral_options=EphemeralOptions(max_concurrency=2))
    ),
    "result": lambda: EphemeralResultCoordinator(_noop, EphemeralOptions(max_concurrency=2)),
}


def _accounted(c: CoordinatorBase[Any, Any]) -> bool:
    finished = c.total_completed + c.total_failed + c.total_skipped + c.total_cancelled
    return finished == c.total_enqueued and c.pending_count == 0 and c.active_count == 0


@pytest.mark.parametrize("kind", sorted(COORDINATORS))
@pytest.mark.parametrize("call", ["enqueue", "try_enqueue"])
async def test_item_offered_after_a_cancellation_reached_the_coordinator_is_refused_not_counted(
    kind: str, call: str
) -> None:
    """Once a cancellation reached the coordinator's workers, an item is refused with a clear error (or
    False from try_enqueue) and not counted; it is never both counted and refused."""
    c = COORDINATORS[kind]()
    with anyio.CancelScope() as scope:
        async with c:
            scope.cancel()
            # Let the coordinator's own tasks see the cancellation; this task does not see it here.
            await anyio.lowlevel.cancel_shielded_checkpoint()
            if call == "enqueue":
                with pytest.raises(CoordinatorClosedError, match="cancellation"):
                    await c.enqueue(1)
            else:
                assert c.try_enqueue(1) is False
            assert c.total_enqueued == 0
    assert c.is_completed
    assert _accounted(c)


def _with_body(kind: str, body: Callable[[int], Awaitable[None]], limit: int) -> CoordinatorBase[Any, Any]:
    options = EphemeralOptions(max_concurrency=limit)
    if kind == "keyed":
        return EphemeralKeyedWorkCoordinator(lambda item: item % 3, body, options)
    if kind == "priority":
        return PriorityWorkCoordinator(body, PriorityWorkCoordinatorOptions(ephemeral_options=options))
    if kind == "result":
        return EphemeralResultCoordinator(body, options)
    return EphemeralWorkCoordinator(body, options)


@pytest.mark.parametrize("kind", sorted(COORDINATORS))
@pytest.mark.parametrize(("last", "limit"), [(0, 1), (4, 1), (30, 1), (7, 3)])
async def test_nothing_starts_after_a_body_cancels_the_outer_scope(kind: str, last: int, limit: int) -> None:
    """A body that cancels the scope around the coordinator and returns without awaiting: no queued item
    starts after it (the workers run items back to back without suspending, so they check first), and
    every accepted item is accounted for."""
    started: list[int] = []

    async def body(item: int) -> None:
        started.append(item)
        if item == last:
            scope.cancel()

    c = _with_body(kind, body, limit)
    with anyio.CancelScope() as scope:
        async with c:
            for item in range(60):
                await c.enqueue(item)
    assert scope.cancelled_caught
    assert started[-1] == last or (limit > 1 and last in started)
    assert len(started) <= last + limit  # the others running at that moment may have started, no more
    assert _accounted(c)


async def test_cancel_probe_follows_the_scopes_around_the_task() -> None:
    """cancel_probe agrees with anyio.current_effective_deadline: cancelled scopes count, a shield stops them."""
    assert cancel_probe()() is False
    with anyio.CancelScope() as outer:
        probe = cancel_probe()
        assert probe() is False
        outer.cancel()
        assert probe() is True
        assert anyio.current_effective_deadline() == -math.inf
        with anyio.CancelScope(shield=True):
            assert cancel_probe()() is False
            assert anyio.current_effective_deadline() != -math.inf
            await anyio.lowlevel.checkpoint()  # shielded: not cancelled here
        assert probe() is True
        await anyio.lowlevel.checkpoint()  # the cancellation arrives
    assert outer.cancelled_caught
    async with anyio.create_task_group() as tg:
        seen: list[bool] = []

        async def child() -> None:
            probe = cancel_probe()
            seen.append(probe())
            tg.cancel_scope.cancel()
            seen.append(probe())
            await anyio.sleep_forever()

        tg.start_soon(child)
    assert seen == [False, True]


# -- outer cancel scopes at random deadlines --------------------------------------------------------


async def _run_until(deadline: float, owner_factory: Callable[[], Any], feed: Callable[[Any], Awaitable[None]]) -> Any:
    owner = owner_factory()
    with anyio.move_on_after(deadline):
        async with owner:
            await feed(owner)
    return owner


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(sorted(COORDINATORS)),
    deadline=st.sampled_from([0.0, 0.001, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1]),
    gaps=st.lists(st.sampled_from([0.0, 0.0, 0.002, 0.007, 0.02]), min_size=1, max_size=12),
    raise_at=st.one_of(st.none(), st.integers(0, 12)),
)
async def test_outer_cancel_scope_at_a_random_deadline_keeps_accounting(
    kind: str, deadline: float, gaps: list[float], raise_at: int | None
) -> None:
    """Whenever an outer deadline fires (entering, feeding, draining), the coordinator leaves every cancel
    scope in order, every accepted item is accounted for once, and nothing runs afterwards."""

    async def feed(c: CoordinatorBase[Any, Any]) -> None:
        for index, gap in enumerate(gaps):
            if index == raise_at:
                raise LookupError("in the block")
            try:
                await c.enqueue(index)
            except CoordinatorClosedError:
                return
            await anyio.sleep(gap)

    try:
        c = await _run_until(deadline, COORDINATORS[kind], feed)
    except LookupError:
        return  # the block's own error left `async with` unchanged; nothing else to check here
    assert _accounted(c), c.get_metrics()
    assert c.is_completed
    completed = c.total_completed
    await anyio.sleep(1)
    assert c.total_completed == completed  # nothing runs after the block ended


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deadline=st.sampled_from([0.0, 0.001, 0.004, 0.01, 0.02, 0.05]),
    count=st.integers(0, 20),
    duration=st.sampled_from([0.0, 0.003, 0.01]),
)
async def test_nested_owner_under_a_random_deadline(deadline: float, count: int, duration: float) -> None:
    """An atom owning its own tasks over a coordinator (PersistAtom) closes both in order at any deadline."""
    persisted: list[int] = []

    async def persist(item: int) -> None:
        await anyio.sleep(duration)
        persisted.append(item)

    options = EphemeralOptions(max_concurrency=1, max_tracked_operations=4)

    async def feed(atom: PersistAtom[int]) -> None:
        for item in range(count):
            atom.try_enqueue(item)
        await anyio.sleep(0.002)

    atom = await _run_until(deadline, lambda: PersistAtom(persist, options, max_backlog=8), feed)
    c = atom.coordinator
    assert _accounted(c), c.get_metrics()
    assert c.total_completed == len(persisted)


# -- the fault-rule kit (ephemeral.core.testing.assert_lifecycle_faults) -----------------------------


async def test_lifecycle_fault_rules_hold_for_the_base_and_the_coordinators() -> None:
    async def use(c: CoordinatorBase[Any, Any]) -> None:
        for item in range(5):
            await c.enqueue(item)

    await assert_lifecycle_faults(Recorder)
    for make in COORDINATORS.values():
        await assert_lifecycle_faults(make, use)


class _Leaky:
    """Breaks the rules: starts a task it never cancels, swallows errors, can be entered again."""

    def __init__(self, tg: TaskGroup, *, swallow: bool = False) -> None:
        self.tg = tg
        self.swallow = swallow

    async def __aenter__(self) -> _Leaky:
        self.tg.start_soon(anyio.sleep, 5)
        return self

    async def __aexit__(self, *exc_info: object) -> bool:
        return self.swallow


@pytest.mark.parametrize(
    ("swallow", "message"), [(True, "was swallowed"), (False, "tasks the object started still run")]
)
async def test_lifecycle_fault_rules_report_the_broken_rule(swallow: bool, message: str) -> None:
    async with anyio.create_task_group() as tg:
        with pytest.raises(AssertionError, match=message):
            await assert_lifecycle_faults(lambda: _Leaky(tg, swallow=swallow))
        tg.cancel_scope.cancel()


async def test_a_closable_resource_is_usable_until_closed_once() -> None:
    """ClosableResource: async with optional, closing releases once, then entering and use are refused."""

    class Held(ClosableResource):
        def __init__(self) -> None:
            self.released = 0

        def use(self) -> str:
            self._check_open()
            return "used"

        def _on_close(self) -> None:
            self.released += 1

    held = Held()
    assert held.use() == "used" and not held.closed  # usable without async with
    async with held as entered:
        assert entered is held
    assert held.closed and held.released == 1
    await held.aclose()
    assert held.released == 1  # closing again is a no-op
    with pytest.raises(CoordinatorClosedError, match="this Held is closed"):
        held.use()
    with pytest.raises(CoordinatorClosedError, match="this Held is closed"):
        async with held:
            pass
