"""ephemeral.attributes.di: job runners in an svcs registry, started and drained by ephemeral_lifespan."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Annotated, Any

import anyio
import pytest
import svcs

from ephemeral.attributes import EphemeralSignalJobRunner, ephemeral_job
from ephemeral.attributes.di import (
    EphemeralScopedJobRunner,
    add_ephemeral_scoped_job_runner,
    add_ephemeral_signal_job_runner,
)
from ephemeral.core import SignalEvent, SignalSink
from ephemeral.core.di import ephemeral_lifespan

calls: list[tuple[str, int, str]] = []


class Audit:
    """A per-invocation dependency of the scoped jobs."""

    count = 0

    def __init__(self) -> None:
        Audit.count += 1
        self.number = Audit.count


class Watcher:
    def __init__(self, sink: SignalSink) -> None:
        self.sink = sink

    @ephemeral_job("order.*", emit_on_complete="watch.seen")
    async def watch(self, event: SignalEvent[Any]) -> None:
        await anyio.sleep(1)
        calls.append(("watch", id(self), event.signal))


class Scoped:
    def __init__(self, audit: Audit, label: str = "scoped") -> None:
        self.audit = audit
        self.label = label

    @ephemeral_job("scan.test", max_concurrency=0)
    async def scan(self, event: SignalEvent[Any]) -> None:
        await anyio.sleep(0.5)
        calls.append((self.label, self.audit.number, event.key or ""))


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()


async def test_signal_runner_in_the_lifespan_with_a_registered_sink() -> None:
    async with svcs.Registry() as registry:
        key = add_ephemeral_signal_job_runner(registry, Watcher)
        assert key is EphemeralSignalJobRunner
        async with ephemeral_lifespan(registry) as lifespan, svcs.Container(registry) as container:
            sink = await container.aget(SignalSink)  # registered because the registry had none
            runner = await container.aget(EphemeralSignalJobRunner)
            assert lifespan.services == (runner,)
            assert isinstance(runner.jobs[0].target, Watcher) and runner.jobs[0].target.sink is sink
            sink.emit("order.placed")
        # The lifespan drained the runner: the one-second job finished before it ended.
        assert [call[2] for call in calls] == ["order.placed"]
        assert [event.signal for event in sink.sense()] == ["order.placed", "watch.seen"]


async def test_signal_runner_uses_the_given_sink_factory_and_modules() -> None:
    module = ModuleType("jobs_module_for_test")
    module.Watcher = type("Watcher", (Watcher,), {"__module__": module.__name__})  # type: ignore[attr-defined]
    module.Unrelated = type("Unrelated", (), {"__module__": module.__name__})  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        sink = SignalSink()
        async with svcs.Registry() as registry:
            add_ephemeral_signal_job_runner(registry, module, signal_factory=lambda: sink, name="mod")
            async with ephemeral_lifespan(registry), svcs.Container(registry) as container:
                runner = await container.aget(Annotated[EphemeralSignalJobRunner, "mod"])
                assert [job.name for job in runner.jobs] == ["Watcher.watch"]
                assert await container.aget(SignalSink) is sink
    finally:
        del sys.modules[module.__name__]


async def test_scoped_runner_builds_a_new_object_per_invocation() -> None:
    async with svcs.Registry() as registry:
        registry.register_factory(Audit, Audit)
        add_ephemeral_scoped_job_runner(registry, Scoped)
        async with ephemeral_lifespan(registry), svcs.Container(registry) as container:
            runner = await container.aget(EphemeralScopedJobRunner)
            sink = await container.aget(SignalSink)
            sink.emit("scan.test", key="a")
            sink.emit("scan.test", key="b")
            await anyio.sleep(1)
            assert runner.get_stats().completed == 2
    assert sorted(key for _, _, key in calls) == ["a", "b"]
    numbers = [number for _, number, _ in calls]
    assert len(set(numbers)) == 2  # a new scope, and a new Audit, for every invocation


async def test_scoped_runner_prefers_a_registered_job_object() -> None:
    async with svcs.Registry() as registry:
        registry.register_factory(Scoped, lambda: Scoped(Audit(), label="registered"))
        add_ephemeral_scoped_job_runner(registry, Scoped)
        async with ephemeral_lifespan(registry), svcs.Container(registry) as container:
            (await container.aget(SignalSink)).emit("scan.test", key="x")
    assert [label for label, _, _ in calls] == ["registered"]


async def test_bad_registrations() -> None:
    async with svcs.Registry() as registry:
        with pytest.raises(ValueError, match="At least one job type"):
            add_ephemeral_signal_job_runner(registry)
        with pytest.raises(TypeError, match="classes or modules"):
            add_ephemeral_signal_job_runner(registry, Watcher(SignalSink()))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="signal_factory"):
            add_ephemeral_scoped_job_runner(registry, Scoped, signal_factory=lambda: "sink")  # type: ignore[arg-type,return-value]
        add_ephemeral_scoped_job_runner(registry, Scoped)  # Audit is not registered: each invocation fails
        async with ephemeral_lifespan(registry), svcs.Container(registry) as container:
            runner = await container.aget(EphemeralScopedJobRunner)
            sink = await container.aget(SignalSink)
            sink.emit("scan.test")
        assert runner.get_stats().failed == 1 and calls == []
        assert [event.signal for event in sink.sense("job.*")] == ["job.failed:scan:TypeError"]
        (snapshot,) = runner.get_snapshot()
        assert "'audit'" in str(snapshot.error)
    with pytest.raises(TypeError, match="registry"):
        EphemeralScopedJobRunner("registry", SignalSink(), [Scoped])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="job_types must be classes"):
        EphemeralScopedJobRunner(svcs.Registry(), SignalSink(), [Scoped(Audit())])  # type: ignore[list-item]


class Stuck:
    @ephemeral_job("stuck")
    async def stuck(self, event: SignalEvent[Any]) -> None:
        await anyio.sleep(100)


async def test_shutdown_timeout_bounds_the_job_runner_drain_too() -> None:
    registry = svcs.Registry()
    runner_type = add_ephemeral_signal_job_runner(registry, Stuck)
    start = anyio.current_time()
    async with svcs.Container(registry) as container, ephemeral_lifespan(registry, shutdown_timeout=2):
        runner = await container.aget(runner_type)
        (await container.aget(SignalSink)).emit("stuck")
        await anyio.sleep(0.5)
    await registry.aclose()
    assert round(anyio.current_time() - start, 3) == 2.5  # the drain gave up at the timeout
    assert runner.get_stats().cancelled == 1
