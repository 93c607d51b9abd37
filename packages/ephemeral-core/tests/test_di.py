"""ephemeral.core.di: coordinators and other services in an svcs registry, run with the app's lifespan."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

import anyio
import anyio.lowlevel
import httpx
import pytest
import svcs
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralKeyedWorkCoordinator,
    EphemeralOptions,
    EphemeralWorkCoordinator,
)
from ephemeral.core.di import (
    EphemeralCoordinatorFactory,
    EphemeralKeyedCoordinatorFactory,
    EphemeralLifespan,
    add_coordinator,
    add_ephemeral_keyed_work_coordinator,
    add_ephemeral_work_coordinator,
    add_keyed_coordinator,
    add_lifespan_service,
    add_scoped_coordinator,
    add_scoped_ephemeral_keyed_work_coordinator,
    add_scoped_ephemeral_work_coordinator,
    add_scoped_keyed_coordinator,
    ephemeral_lifespan,
)
from ephemeral.core.lowlevel import CoordinatorBase
from ephemeral.core.testing import assert_lifecycle_faults


class Item:
    def __init__(self, value: int) -> None:
        self.value = value


class Other:
    pass


Pair = tuple[str, int]


def recorder(delay: float = 0.0) -> tuple[list[Any], Callable[[Any], Any]]:
    seen: list[Any] = []

    async def body(item: Any) -> None:
        await anyio.sleep(delay)
        seen.append(item)

    return seen, body


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (startup, then shutdown on exit) and talk to it over ASGI."""
    async with (
        LifespanManager(app, shutdown_timeout=None) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


# The FastAPI example (examples/fastapi_app.py) is tested by ephemeral-attributes, whose job runner it uses.


async def test_scoped_coordinator_drains_with_the_request() -> None:
    """A request-scoped coordinator is entered on aget and drained when svcs closes the request's container."""
    seen, body = recorder(delay=1.0)

    @svcs.fastapi.lifespan
    async def lifespan(app: FastAPI, registry: svcs.Registry) -> AsyncGenerator[dict[str, object], None]:
        add_scoped_coordinator(registry, body, EphemeralOptions(max_concurrency=2), item_type=int)
        yield {}

    app = FastAPI(lifespan=lifespan)
    coordinators: list[EphemeralWorkCoordinator[int]] = []

    @app.post("/batch/{count}", status_code=202)
    async def batch(count: int, services: svcs.fastapi.DepContainer) -> dict[str, int]:
        coordinator = await services.aget(EphemeralWorkCoordinator[int])
        assert coordinator is await services.aget(EphemeralWorkCoordinator[int])
        coordinators.append(coordinator)
        for i in range(count):
            await coordinator.enqueue(i)
        return {"accepted": count}

    async with serve(app) as client:
        assert (await client.post("/batch/5")).status_code == 202
        assert sorted(seen) == [0, 1, 2, 3, 4]
        assert (await client.post("/batch/1")).status_code == 202
    assert len(coordinators) == 2 and coordinators[0] is not coordinators[1]
    assert all(c.is_drained and c.total_cancelled == 0 for c in coordinators)


# -- singleton registrations and the factory -------------------------------------------------------


async def test_factory_returns_the_running_coordinator_per_name() -> None:
    """Named registrations of one item type share a factory; each name has its own long-lived coordinator."""
    default_seen, default_body = recorder()
    priority_seen, priority_body = recorder()
    async with svcs.Registry() as registry:
        key = add_coordinator(registry, default_body, EphemeralOptions(max_concurrency=2), item_type=Item)
        assert key == EphemeralCoordinatorFactory[Item]
        assert add_ephemeral_work_coordinator(registry, priority_body, name="priority", item_type=Item) == key
        async with ephemeral_lifespan(registry) as lifespan, svcs.Container(registry) as services:
            factory = await services.aget(EphemeralCoordinatorFactory[Item])
            assert factory.names == ("", "priority") and factory.item_type is Item
            default = factory.create_coordinator()
            priority = factory.create_coordinator("priority")
            assert default is factory.create_coordinator() is factory.create_coordinator("")
            assert priority is not default and priority.coordinator_id == "priority"
            assert lifespan.coordinators == (default, priority)
            assert await services.aget(EphemeralWorkCoordinator[Item]) is default
            assert await services.aget(Annotated[EphemeralWorkCoordinator[Item], "priority"]) is priority
            await default.enqueue(Item(1))
            await priority.enqueue(Item(2))
    assert [i.value for i in default_seen] == [1] and [i.value for i in priority_seen] == [2]
    assert default.is_drained and priority.is_drained


async def test_second_registration_of_a_name_raises() -> None:
    """Registering the same item type and name twice raises instead of silently keeping the first (bug 27)."""
    _, body = recorder()
    async with svcs.Registry() as registry:
        add_coordinator(registry, body, item_type=Item)
        with pytest.raises(ValueError, match=r"default coordinator .*Item.* already registered"):
            add_coordinator(registry, body, item_type=Item)
        add_coordinator(registry, body, name="bulk", item_type=Item)
        with pytest.raises(ValueError, match=r"coordinator 'bulk' .*already registered"):
            add_ephemeral_work_coordinator(registry, body, name="bulk", item_type=Item)
        with pytest.raises(ValueError, match="already registered \\(as a singleton coordinator\\)"):
            add_scoped_coordinator(registry, body, name="bulk", item_type=Item)
        # Other item types, keyed coordinators and unparameterised registrations are other services.
        add_coordinator(registry, body, name="bulk", item_type=Other)
        add_keyed_coordinator(registry, lambda item: item, body, name="bulk", item_type=Item)
        add_coordinator(registry, body)
        with pytest.raises(ValueError, match="already registered"):
            add_coordinator(registry, body)
        async with ephemeral_lifespan(registry) as lifespan:
            assert len(lifespan.coordinators) == 5


async def test_unknown_name_raises_a_lookup_error() -> None:
    """Asking the factory for a name nobody registered raises LookupError naming the registration call."""
    _, body = recorder()
    async with svcs.Registry() as registry:
        add_coordinator(registry, body, item_type=Item)
        async with ephemeral_lifespan(registry), svcs.Container(registry) as services:
            factory = await services.aget(EphemeralCoordinatorFactory[Item])
            with pytest.raises(LookupError, match=r"name 'nope'.*registered: ''.*add_coordinator\(registry, \.\.\."):
                factory.create_coordinator("nope")
            with pytest.raises(TypeError, match="name must be a string"):
                factory.create_coordinator(3)  # type: ignore[arg-type]


async def test_factory_outside_the_lifespan() -> None:
    """The factory raises before start, gives the drained coordinator after shutdown, refuses after registry close."""
    _, body = recorder()
    registry = svcs.Registry()
    try:
        add_coordinator(registry, body, item_type=Item)
        with svcs.Container(registry) as services:
            factory = services.get(EphemeralCoordinatorFactory[Item])
        with pytest.raises(RuntimeError, match="not running yet"):
            factory.create_coordinator()
        async with ephemeral_lifespan(registry):
            running = factory.create_coordinator()
            await running.enqueue(Item(1))
        assert factory.create_coordinator() is running and running.is_drained
        with pytest.raises(CoordinatorClosedError):
            await running.enqueue(Item(2))
    finally:
        await registry.aclose()
    with pytest.raises(CoordinatorClosedError, match=r"registry .* has been closed"):
        factory.create_coordinator()


async def test_registering_while_running_raises() -> None:
    """A long-lived coordinator added while the lifespan runs would never start, so it is refused."""
    _, body = recorder()
    async with svcs.Registry() as registry, ephemeral_lifespan(registry):
        with pytest.raises(RuntimeError, match="before the application starts"):
            add_coordinator(registry, body, item_type=Item)
        with pytest.raises(RuntimeError, match="already running"):
            async with ephemeral_lifespan(registry):
                pass


async def test_lifespan_restarts_with_new_coordinators() -> None:
    """A registry's lifespan can run again (a restarted app) with fresh coordinators; one lifespan object runs once."""
    _, body = recorder()
    async with svcs.Registry() as registry:
        add_coordinator(registry, body, item_type=Item)
        lifespan = ephemeral_lifespan(registry)
        async with lifespan:
            first = lifespan.coordinators[0]
        async with ephemeral_lifespan(registry) as again:
            assert again.coordinators[0] is not first and not again.coordinators[0].is_completed
        with pytest.raises(RuntimeError, match="only once"):
            async with lifespan:
                pass


async def test_unparameterised_registration() -> None:
    """Without item_type, the factory and the coordinator are registered under their plain, unparameterised classes."""
    seen, body = recorder()
    async with svcs.Registry() as registry:
        assert add_coordinator(registry, body) is EphemeralCoordinatorFactory
        async with ephemeral_lifespan(registry), svcs.Container(registry) as services:
            factory = await services.aget(EphemeralCoordinatorFactory)
            assert factory.item_type is None
            assert await services.aget(EphemeralWorkCoordinator) is factory.create_coordinator()
            await factory.create_coordinator().enqueue("x")
    assert seen == ["x"]


async def test_new_coordinator_is_a_fresh_one_owned_by_the_caller() -> None:
    """new_coordinator builds a new coordinator from the registration, unlike the shared create_coordinator."""
    seen, body = recorder()
    async with svcs.Registry() as registry:
        add_coordinator(registry, body, name="jobs", item_type=Item)
        async with ephemeral_lifespan(registry), svcs.Container(registry) as services:
            factory = await services.aget(EphemeralCoordinatorFactory[Item])
            async with factory.new_coordinator("jobs") as own:
                assert own is not factory.create_coordinator("jobs") and own.coordinator_id == "jobs"
                await own.enqueue(Item(7))
            assert own.is_drained and [i.value for i in seen] == [7]


async def test_keyed_coordinator_keeps_order_per_key() -> None:
    """add_keyed_coordinator gives a long-lived keyed coordinator through its own factory, per-key order kept."""
    seen, body = recorder(delay=0.5)
    async with svcs.Registry() as registry:
        key = add_keyed_coordinator(
            registry, lambda item: item[0], body, EphemeralOptions(max_concurrency=4), item_type=Pair
        )
        assert key == EphemeralKeyedCoordinatorFactory[Pair]
        assert add_ephemeral_keyed_work_coordinator(registry, lambda item: item[0], body, name="b", item_type=Pair)
        async with ephemeral_lifespan(registry), svcs.Container(registry) as services:
            factory = await services.aget(EphemeralKeyedCoordinatorFactory[Pair])
            coordinator = factory.create_coordinator()
            assert isinstance(coordinator, EphemeralKeyedWorkCoordinator)
            assert await services.aget(EphemeralKeyedWorkCoordinator[Pair, Any]) is coordinator
            assert factory.create_coordinator("b") is not coordinator
            for item in [("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3)]:
                await coordinator.enqueue(item)
    assert [value for key_, value in seen if key_ == "A"] == [1, 2, 3]
    assert [value for key_, value in seen if key_ == "B"] == [1, 2]


# -- scoped registrations --------------------------------------------------------------------------


async def test_scoped_coordinator_per_container() -> None:
    """Each container gets its own coordinator (the same one on every aget), drained when it closes."""
    seen, body = recorder(delay=1.0)
    async with svcs.Registry() as registry:
        key = add_scoped_coordinator(registry, body, item_type=Item)
        assert key == EphemeralWorkCoordinator[Item]
        async with svcs.Container(registry) as first:
            one = await first.aget(EphemeralWorkCoordinator[Item])
            assert await first.aget(EphemeralWorkCoordinator[Item]) is one
            async with svcs.Container(registry) as second:
                two = await second.aget(EphemeralWorkCoordinator[Item])
                await two.enqueue(Item(2))
            assert two.is_drained and [i.value for i in seen] == [2]
            await one.enqueue(Item(1))
            await one.enqueue(Item(3))
            assert not one.is_completed
        assert one is not two and one.is_drained and one.total_completed == 2
    assert seen[0].value == 2 and sorted(i.value for i in seen) == [1, 2, 3]


async def test_scoped_named_and_keyed_registrations() -> None:
    """Scoped coordinators can be named (an Annotated service type) and keyed, and names do not collide."""
    seen, body = recorder()
    async with svcs.Registry() as registry:
        named = add_scoped_ephemeral_work_coordinator(registry, body, name="audit", item_type=Item)
        assert cast(object, named) == Annotated[EphemeralWorkCoordinator[Item], "audit"]
        keyed = add_scoped_keyed_coordinator(registry, lambda item: item.value % 2, body, item_type=Item)
        assert keyed == EphemeralKeyedWorkCoordinator[Item, Any]
        add_scoped_ephemeral_keyed_work_coordinator(registry, lambda item: item.value, body, name="x", item_type=Item)
        with pytest.raises(ValueError, match="already registered \\(as a scoped coordinator\\)"):
            add_scoped_coordinator(registry, body, name="audit", item_type=Item)
        with pytest.raises(ValueError, match="already registered"):
            add_coordinator(registry, body, name="audit", item_type=Item)
        async with svcs.Container(registry) as services:
            audit = await services.aget(named)
            assert audit.coordinator_id == "audit"
            by_parity = await services.aget(keyed)
            assert isinstance(by_parity, EphemeralKeyedWorkCoordinator)
            await audit.enqueue(Item(1))
            await by_parity.enqueue(Item(2))
    assert sorted(i.value for i in seen) == [1, 2]


def test_scoped_coordinator_needs_aget() -> None:
    """svcs's synchronous get refuses a scoped coordinator, which is an async context manager."""
    _, body = recorder()
    with svcs.Registry() as registry, svcs.Container(registry) as services:
        add_scoped_coordinator(registry, body, item_type=Item)
        with pytest.raises(TypeError, match="aget"):
            services.get(EphemeralWorkCoordinator[Item])


# -- the lifespan's shutdown -----------------------------------------------------------------------


async def test_shutdown_drains_in_reverse_registration_order() -> None:
    """A coordinator feeding another drains first when registered after it, so the downstream still accepts."""
    delivered, sink_body = recorder(delay=1.0)
    async with svcs.Registry() as registry:
        add_coordinator(registry, sink_body, name="downstream", item_type=Item)
        downstream: list[CoordinatorBase[Any, Any]] = []

        async def upstream_body(item: Item) -> None:
            await anyio.sleep(1.0)
            await downstream[0].enqueue(item)

        add_coordinator(registry, upstream_body, name="upstream", item_type=Item)
        async with ephemeral_lifespan(registry) as lifespan:
            downstream.append(lifespan.coordinators[0])
            upstream = lifespan.coordinators[1]
            for i in range(5):
                await upstream.enqueue(Item(i))
    assert sorted(i.value for i in delivered) == [0, 1, 2, 3, 4]
    assert upstream.total_completed == 5 and downstream[0].total_completed == 5


async def test_shutdown_timeout_cancels_what_is_left() -> None:
    """With shutdown_timeout, draining stops at the deadline and the rest is counted as cancelled, not lost."""
    seen, body = recorder(delay=100.0)
    quick, quick_body = recorder(delay=0.5)
    async with svcs.Registry() as registry:
        add_coordinator(registry, body, EphemeralOptions(max_concurrency=2), item_type=Item)
        add_coordinator(registry, quick_body, name="quick", item_type=Item)
        async with ephemeral_lifespan(registry, shutdown_timeout=5) as lifespan:
            slow, fast = lifespan.coordinators
            for i in range(5):
                await slow.enqueue(Item(i))
                await fast.enqueue(Item(i))
            started = anyio.current_time()
        assert 5 <= anyio.current_time() - started < 6
    metrics = slow.get_metrics()
    assert seen == [] and metrics.total_cancelled == 5 and metrics.total_enqueued == 5
    assert len(quick) == 5 and fast.total_cancelled == 0


async def test_an_exception_in_the_lifespan_cancels_and_counts() -> None:
    """An exception leaving the lifespan cancels waiting work, counted in total_cancelled, and propagates."""
    seen, body = recorder(delay=10.0)
    async with svcs.Registry() as registry:
        add_coordinator(registry, body, EphemeralOptions(max_concurrency=1), item_type=Item)
        lifespan = ephemeral_lifespan(registry)
        with pytest.raises(KeyError):
            async with lifespan:
                for i in range(3):
                    await lifespan.coordinators[0].enqueue(Item(i))
                raise KeyError("boom")
    metrics = lifespan.coordinators[0].get_metrics()
    assert seen == [] and metrics.total_cancelled == 3 and metrics.is_drained


async def test_lifespan_lifecycle_faults() -> None:
    """An error or an outer deadline in the lifespan cancels the coordinators' work; a lifespan runs once."""
    seen, body = recorder(delay=10.0)
    made: list[EphemeralLifespan] = []

    def make() -> EphemeralLifespan:
        made.append(ephemeral_lifespan(registry, shutdown_timeout=5))
        return made[-1]

    async def use(lifespan: EphemeralLifespan) -> None:
        for i in range(3):
            await lifespan.coordinators[0].enqueue(Item(i))
        await anyio.sleep(1)

    async with svcs.Registry() as registry:
        add_coordinator(registry, body, EphemeralOptions(max_concurrency=1), item_type=Item)
        await assert_lifecycle_faults(make, use)
    assert seen == []
    for lifespan in made[:2]:
        metrics = lifespan.coordinators[0].get_metrics()
        assert metrics.total_cancelled == 3 and metrics.is_drained


async def test_registry_close_stops_intake_and_the_lifespan_still_drains() -> None:
    """Closing the registry (on_registry_close) stops intake at once; what was accepted still runs."""
    seen, body = recorder(delay=1.0)
    registry = svcs.Registry()
    add_coordinator(registry, body, item_type=Item)
    unstarted = ephemeral_lifespan(registry)
    async with ephemeral_lifespan(registry) as lifespan:
        coordinator = lifespan.coordinators[0]
        await coordinator.enqueue(Item(1))
        await registry.aclose()
        assert coordinator.is_completed
        with pytest.raises(CoordinatorClosedError):
            await coordinator.enqueue(Item(2))
    assert [i.value for i in seen] == [1] and coordinator.is_drained
    with pytest.raises(CoordinatorClosedError, match="registry has been closed"):
        async with unstarted:
            pass


# -- arguments and packaging -----------------------------------------------------------------------


def test_bad_arguments_fail_at_registration() -> None:
    """Wrong arguments raise at the registering call, not later when the application starts."""
    _, body = recorder()
    with svcs.Registry() as registry:
        with pytest.raises(TypeError, match="body must be"):
            add_coordinator(registry, "not callable")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="options must be EphemeralOptions"):
            add_coordinator(registry, body, {"max_concurrency": 2})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="key_selector must be callable"):
            add_keyed_coordinator(registry, None, body)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name must be a string"):
            add_scoped_coordinator(registry, body, name=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"svcs\.Registry"):
            add_coordinator(object(), body)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="shutdown_timeout"):
            EphemeralLifespan(registry, shutdown_timeout=-1)


def test_aliases_are_the_short_helpers() -> None:
    """The seed's long names are the short helpers under another name."""
    assert add_ephemeral_work_coordinator is add_coordinator
    assert add_ephemeral_keyed_work_coordinator is add_keyed_coordinator
    assert add_scoped_ephemeral_work_coordinator is add_scoped_coordinator
    assert add_scoped_ephemeral_keyed_work_coordinator is add_scoped_keyed_coordinator


def test_core_imports_without_svcs() -> None:
    """`import ephemeral.core` never needs svcs: the DI module is imported only on request."""
    code = (
        "import sys; sys.modules['svcs'] = None; import ephemeral.core; "
        "assert 'ephemeral.core._di' not in sys.modules and 'ephemeral.core.di' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_di_without_svcs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without svcs, importing ephemeral.core.di raises an ImportError telling how to install the extra."""
    monkeypatch.setitem(sys.modules, "svcs", None)
    monkeypatch.delitem(sys.modules, "ephemeral.core.di")
    monkeypatch.delitem(sys.modules, "ephemeral.core._di")
    with pytest.raises(ImportError, match=r'pip install "ephemeral-core\[di\]"') as raised:
        importlib.import_module("ephemeral.core.di")
    assert raised.value.name == "svcs"


# -- any async context manager as a lifespan service ---------------------------------------------


class Tracker:
    """A service that records when it is entered and exited, and what it found in the container."""

    log: list[str]

    def __init__(self, label: str, log: list[str], dependency: object = None) -> None:
        self.label = label
        self.log = log
        self.dependency = dependency

    async def __aenter__(self) -> Tracker:
        await anyio.lowlevel.checkpoint()
        self.log.append(f"enter {self.label}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await anyio.sleep(0.5)  # a drain that takes (virtual) time
        kind = exc_info[0]
        self.log.append(f"exit {self.label} {kind.__name__ if isinstance(kind, type) else 'ok'}")


async def test_lifespan_services_start_and_drain_in_registration_order() -> None:
    async with svcs.Registry() as registry:
        log: list[str] = []
        registry.register_value(Other, Other())
        add_lifespan_service(registry, Tracker, lambda container: Tracker("first", log, container.get(Other)))

        async def build_second(container: svcs.Container) -> Tracker:
            await anyio.lowlevel.checkpoint()
            return Tracker("second", log)

        key = add_lifespan_service(registry, Tracker, build_second, name="second")
        assert key == Annotated[Tracker, "second"]
        _, body = recorder()
        add_coordinator(registry, body, item_type=Item)
        async with ephemeral_lifespan(registry) as lifespan:
            async with svcs.Container(registry) as container:
                first = await container.aget(Tracker)
                assert first.label == "first" and isinstance(first.dependency, Other)
                assert (await container.aget(Annotated[Tracker, "second"])).label == "second"
            assert [s.label for s in lifespan.services] == ["first", "second"]
            assert len(lifespan.coordinators) == 1
        assert log == ["enter first", "enter second", "exit second ok", "exit first ok"]
        async with svcs.Container(registry) as container:
            with pytest.raises(RuntimeError, match="not running yet"):
                await container.aget(Tracker)


async def test_lifespan_services_see_the_exception_and_refuse_bad_registrations() -> None:
    async with svcs.Registry() as registry:
        log: list[str] = []
        add_lifespan_service(registry, Tracker, lambda container: Tracker("only", log))
        with pytest.raises(ValueError, match="already registered"):
            add_lifespan_service(registry, Tracker, lambda container: Tracker("again", log))
        with pytest.raises(TypeError, match="factory"):
            add_lifespan_service(registry, Tracker, "not callable")  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            async with ephemeral_lifespan(registry):
                with pytest.raises(RuntimeError, match="lifespan is running"):
                    add_lifespan_service(registry, Tracker, lambda container: Tracker("late", log), name="late")
                raise KeyError("boom")
        assert log == ["enter only", "exit only KeyError"]
