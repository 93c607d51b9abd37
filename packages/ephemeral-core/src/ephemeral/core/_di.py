"""Dependency injection on svcs: coordinators registered in an ``svcs.Registry``, run with the app's lifespan.

The public path is ``ephemeral.core.di`` (the ``di`` extra: ``pip install "ephemeral-core[di]"``).

How the pieces fit:

* ``add_coordinator`` (alias ``add_ephemeral_work_coordinator``) and ``add_keyed_coordinator`` record a
  *recipe* for one long-lived coordinator under an item type and a name, and register one
  ``EphemeralCoordinatorFactory[T]`` (or ``EphemeralKeyedCoordinatorFactory[T]``) value per item type.
* ``ephemeral_lifespan(registry)`` builds and enters every such coordinator when the application
  starts and, when it stops, completes and drains them in reverse registration order: every accepted
  item runs before the lifespan ends. Nothing is cancelled unless the lifespan exits with an
  exception (the coordinator rule: an exception in the block cancels, and the cancelled items are
  counted in ``total_cancelled``) or ``shutdown_timeout`` runs out.
* ``factory.create_coordinator(name)`` returns that running coordinator.
* ``add_lifespan_service`` registers any other long-lived service that is an async context manager
  (a job runner, a watcher, a responsibility manager): the same lifespan builds and enters it with
  the coordinators, in registration order, and exits it (which drains it) in reverse order.
* ``add_scoped_coordinator`` and ``add_scoped_keyed_coordinator`` register a svcs factory instead: each
  ``svcs.Container`` (one per request with ``svcs.fastapi``/``svcs.starlette``) gets its own
  coordinator from ``await container.aget(...)``, drained when the container closes.

Why an explicit lifespan rather than svcs alone: a coordinator is an async context manager that
owns an anyio task group, and a task group must be entered and exited by one task, in nesting order.
svcs enters context managers lazily, on the first ``aget`` in whichever container asks, so a
singleton entered by one request's container would be exited by that container. The ASGI lifespan
is the one task that lives as long as the application, so the coordinators are entered there, in an
``AsyncExitStack``. ``svcs`` still takes part: the registrations live in the registry, and an
``on_registry_close`` callback marks the factories closed and completes intake of any coordinator
still running (``complete()`` is synchronous and loses nothing: the lifespan's exit drains).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Generic, NamedTuple, TypeVar, cast

import anyio
import svcs

from ._checks import check_async_callable, check_callable
from ._clock import to_seconds
from ._coordinator import CoordinatorBase, CoordinatorClosedError, EphemeralWorkCoordinator
from ._keyed import EphemeralKeyedWorkCoordinator
from ._lifecycle import TaskGroupOwner
from ._options import EphemeralOptions

if TYPE_CHECKING:
    from typing_extensions import TypeForm  # PEP 747, as svcs types its service types

__all__ = (
    "EphemeralCoordinatorFactory",
    "EphemeralKeyedCoordinatorFactory",
    "EphemeralLifespan",
    "add_coordinator",
    "add_ephemeral_keyed_work_coordinator",
    "add_ephemeral_work_coordinator",
    "add_keyed_coordinator",
    "add_lifespan_service",
    "add_scoped_coordinator",
    "add_scoped_ephemeral_keyed_work_coordinator",
    "add_scoped_ephemeral_work_coordinator",
    "add_scoped_keyed_coordinator",
    "ephemeral_lifespan",
)

_log = logging.getLogger("ephemeral.core")

T = TypeVar("T")
C = TypeVar("C", bound="CoordinatorBase[Any, Any]")


def _check_name(name: str | None) -> str:
    if name is None:
        return ""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {name!r}")
    return name


def _type_label(item_type: object) -> str:
    if item_type is None:
        return "no item_type"
    return getattr(item_type, "__qualname__", None) or repr(item_type)


def _describe(name: str, item_type: object) -> str:
    who = "the default coordinator" if name == "" else f"coordinator {name!r}"
    return f"{who} ({_type_label(item_type)})"


def _key(cls: Any, item_type: object, name: str, arity: int) -> Any:
    """The svcs service type a coordinator (or factory) is registered under.

    ``cls`` alone without an item type; ``cls[item_type]`` (``cls[item_type, Any]`` for the keyed
    coordinator, generic in its key too) with one; ``Annotated[..., name]`` for a named one.
    """
    if item_type is None:
        key = cls
    elif arity == 1:
        key = cls[item_type]
    else:
        key = cls[item_type, Any]
    return key if name == "" else Annotated[key, name]


def _with_defaults(options: EphemeralOptions | None, name: str) -> EphemeralOptions:
    """Check ``options`` and give a named coordinator its name as ``coordinator_id`` unless it has one."""
    if options is None:
        options = EphemeralOptions()
    elif not isinstance(options, EphemeralOptions):
        raise TypeError(f"options must be EphemeralOptions or None, got {options!r}")
    if name and options.coordinator_id is None:
        options = dataclasses.replace(options, coordinator_id=name)
    return options


def _check_body(body: object) -> None:
    check_async_callable(body, "body")


class _CoordinatorFactory(Generic[C]):
    """What both factories share: recipes by name, the running coordinators, the closed flag."""

    _register_with = "add_coordinator"

    def __init__(self, item_type: object) -> None:
        self._item_type = item_type
        self._recipes: dict[str, Callable[[], C]] = {}
        self._current: dict[str, C] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} item_type={_type_label(self._item_type)} names={list(self._recipes)}>"

    @property
    def item_type(self) -> object:
        """The item type given at registration (None when registered without one)."""
        return self._item_type

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names in registration order; ``""`` is the default (unnamed) coordinator."""
        return tuple(self._recipes)

    def _recipe(self, name: str | None) -> tuple[str, Callable[[], C]]:
        key = _check_name(name)
        recipe = self._recipes.get(key)
        if recipe is None:
            registered = ", ".join(repr(n) for n in self._recipes) or "none"
            raise LookupError(
                f"No coordinator configuration found for name {key!r} ({_type_label(self._item_type)}; "
                f"registered: {registered}). Call {self._register_with}(registry, ..., name={key!r}) "
                "during registration."
            )
        return key, recipe

    def create_coordinator(self, name: str | None = None) -> C:
        """The application's coordinator registered under ``name`` (None or ``""``: the default one).

        It is the one long-lived coordinator of that registration, started by ``ephemeral_lifespan``;
        every call returns the same object while the application runs. Once the lifespan has ended it
        returns the drained coordinator, whose ``enqueue`` raises ``CoordinatorClosedError``.

        Raises:
            LookupError: Nothing is registered under ``name``.
            RuntimeError: The lifespan has not started yet.
            CoordinatorClosedError: The registry has been closed.
        """
        key, _ = self._recipe(name)
        if self._closed:
            raise CoordinatorClosedError(f"the registry of {_describe(key, self._item_type)} has been closed")
        coordinator = self._current.get(key)
        if coordinator is None:
            raise RuntimeError(
                f"{_describe(key, self._item_type)} is not running yet: start it with the application's "
                "lifespan, `async with ephemeral_lifespan(registry): ...`"
            )
        return coordinator

    def new_coordinator(self, name: str | None = None) -> C:
        """A new coordinator built from the registration ``name``, not entered and owned by the caller.

        Use it as ``async with factory.new_coordinator() as c:``; leaving the block drains it. The
        application's shared coordinator is ``create_coordinator``.

        Raises:
            LookupError: Nothing is registered under ``name``.
        """
        return self._recipe(name)[1]()


class EphemeralCoordinatorFactory(_CoordinatorFactory[EphemeralWorkCoordinator[T]], Generic[T]):
    """Hands out the application's work coordinators for item type ``T``, by name.

    The Python ``IEphemeralCoordinatorFactory<T>``. ``add_coordinator(registry, body, item_type=T)``
    registers one value of it under ``EphemeralCoordinatorFactory[T]`` (plain
    ``EphemeralCoordinatorFactory`` without ``item_type``); every name registered for ``T`` shares it.

    Example:
        >>> factory = await services.aget(EphemeralCoordinatorFactory[WorkItem])
        >>> await factory.create_coordinator().enqueue(item)
        >>> await factory.create_coordinator("priority").enqueue(urgent)
    """


class EphemeralKeyedCoordinatorFactory(_CoordinatorFactory[EphemeralKeyedWorkCoordinator[T, Any]], Generic[T]):
    """Hands out the application's keyed coordinators for item type ``T``, by name.

    Registered by ``add_keyed_coordinator`` under ``EphemeralKeyedCoordinatorFactory[T]``.
    """

    _register_with = "add_keyed_coordinator"


class _LifespanService:
    """A service registered with ``add_lifespan_service``: its recipe and, while the lifespan runs, the instance."""

    def __init__(self, description: str, factory: Callable[[svcs.Container], Any]) -> None:
        self.description = description
        self.factory = factory
        self.current: Any = None

    def get(self) -> Any:
        if self.current is None:
            raise RuntimeError(
                f"{self.description} is not running yet: start it with the application's lifespan, "
                "`async with ephemeral_lifespan(registry): ...`"
            )
        return self.current


class _Services:
    """Per-registry bookkeeping, stored in the registry itself as a value."""

    def __init__(self) -> None:
        self.factories: dict[Any, _CoordinatorFactory[Any]] = {}
        # What the lifespan starts, in registration order: (coordinator factory, name) or a service.
        self.singletons: list[tuple[_CoordinatorFactory[Any], str] | _LifespanService] = []
        self.keys: dict[Any, str] = {}  # coordinator service type -> "singleton" | "scoped"
        self.running: list[CoordinatorBase[Any, Any]] | None = None
        self.closed = False

    def close(self) -> None:
        """``on_registry_close``: no new coordinators; running ones stop taking work (the lifespan drains)."""
        self.closed = True
        for factory in self.factories.values():
            factory._closed = True
        for coordinator in self.running or ():
            coordinator.complete()


def _services_of(registry: svcs.Registry) -> _Services:
    if not isinstance(registry, svcs.Registry):
        raise TypeError(f"registry must be an svcs.Registry, got {registry!r}")
    if _Services in registry:
        found = registry.get_registered_service_for(_Services).factory()
        if isinstance(found, _Services):
            return found
    services = _Services()
    registry.register_value(_Services, services, on_registry_close=services.close)
    return services


def _claim(registry: svcs.Registry, services: _Services, key: Any, what: str, description: str) -> None:
    """Reserve a coordinator service type, refusing a second registration of the same name."""
    earlier = services.keys.get(key)
    if earlier is not None:
        raise ValueError(
            f"{description} is already registered (as a {earlier} coordinator); "
            "give the new registration another name= or register it in another registry"
        )
    if key in registry:
        raise ValueError(f"{description}: the registry already has a service registered under {key!r}")
    services.keys[key] = what


class _Kind(NamedTuple):
    """A coordinator class as registered: its class, how many type parameters, its factory class."""

    coordinator_cls: Any
    arity: int
    factory_cls: type[_CoordinatorFactory[Any]]


_WORK = _Kind(EphemeralWorkCoordinator, 1, EphemeralCoordinatorFactory)
_KEYED = _Kind(EphemeralKeyedWorkCoordinator, 2, EphemeralKeyedCoordinatorFactory)


def _register(
    registry: svcs.Registry,
    kind: _Kind,
    args: tuple[Any, ...],
    options: EphemeralOptions | None,
    name: str | None,
    item_type: object,
    *,
    scoped: bool,
) -> type[Any]:
    """Register a coordinator ``kind.coordinator_cls(*args, options)``; the service type to resolve.

    A singleton is run by the lifespan and resolved through its factory (whose service type is
    returned); a scoped one is built and entered by each container that asks.
    """
    key_name = _check_name(name)
    services = _services_of(registry)
    if not scoped and services.running is not None:
        raise RuntimeError(
            "coordinators are registered before the application starts; this registry's lifespan is running"
        )
    options = _with_defaults(options, key_name)
    coordinator_key = _key(kind.coordinator_cls, item_type, key_name, kind.arity)
    _claim(registry, services, coordinator_key, "scoped" if scoped else "singleton", _describe(key_name, item_type))
    if scoped:

        def scoped_coordinator() -> CoordinatorBase[Any, Any]:
            # svcs enters the returned async context manager on `aget` and exits it (without the
            # request's exception) when the container closes: the coordinator drains then.
            return cast("CoordinatorBase[Any, Any]", kind.coordinator_cls(*args, options))

        registry.register_factory(coordinator_key, scoped_coordinator)
        return cast("type[Any]", coordinator_key)
    factory_key = _key(kind.factory_cls, item_type, "", 1)
    factory = services.factories.get(factory_key)
    if factory is None:
        factory = services.factories[factory_key] = kind.factory_cls(item_type)
        registry.register_value(factory_key, factory)
    factory._recipes[key_name] = lambda: kind.coordinator_cls(*args, options)
    services.singletons.append((factory, key_name))
    # The running coordinator is also resolvable directly; svcs must not enter it (the lifespan does).
    registry.register_factory(coordinator_key, lambda: factory.create_coordinator(key_name), enter=False)
    return cast("type[Any]", factory_key)


def add_coordinator(
    registry: svcs.Registry,
    body: Callable[[T], Awaitable[Any]],
    options: EphemeralOptions | None = None,
    *,
    name: str | None = None,
    item_type: TypeForm[T] | None = None,
) -> type[EphemeralCoordinatorFactory[T]]:
    """Register one long-lived ``EphemeralWorkCoordinator`` for the application (``AddCoordinator<T>``).

    The coordinator is built and entered by ``ephemeral_lifespan(registry)`` when the application
    starts, and completed and drained when it stops, so no accepted item is lost. Resolve
    ``EphemeralCoordinatorFactory[item_type]`` from a container and call ``create_coordinator(name)``;
    the running coordinator is also registered directly, under ``EphemeralWorkCoordinator[item_type]``
    (``Annotated[EphemeralWorkCoordinator[item_type], name]`` for a named one).

    Args:
        registry: The application's ``svcs.Registry``.
        body: ``async def body(item)``.
        options: The coordinator's options; a named coordinator gets ``coordinator_id=name`` unless set.
        name: Registers a named coordinator (``create_coordinator(name)``); several names may share an
            item type. None is the default coordinator.
        item_type: The item type ``T``, which keys the factory: ``EphemeralCoordinatorFactory[T]``.
            Without it the factory is registered as plain ``EphemeralCoordinatorFactory``.

    Returns:
        The service type of the factory, for ``container.aget(...)``.

    Raises:
        ValueError: A coordinator with this item type and name is already registered (a second
            registration never replaces or silently loses to the first).
        RuntimeError: The registry's lifespan is already running.
        TypeError: ``body`` is not callable or ``options`` is not ``EphemeralOptions``.

    Example:
        >>> add_coordinator(registry, process, EphemeralOptions(max_concurrency=8), item_type=WorkItem)
        >>> add_coordinator(registry, process_priority, name="priority", item_type=WorkItem)
    """
    _check_body(body)
    return _register(registry, _WORK, (body,), options, name, item_type, scoped=False)


def add_keyed_coordinator(
    registry: svcs.Registry,
    key_selector: Callable[[T], Hashable],
    body: Callable[[T], Awaitable[Any]],
    options: EphemeralOptions | None = None,
    *,
    name: str | None = None,
    item_type: TypeForm[T] | None = None,
) -> type[EphemeralKeyedCoordinatorFactory[T]]:
    """Register one long-lived ``EphemeralKeyedWorkCoordinator`` for the application (``AddKeyedCoordinator``).

    As ``add_coordinator``, with per-key ordering: resolve ``EphemeralKeyedCoordinatorFactory[item_type]``
    and call ``create_coordinator(name)``. The coordinator itself is also registered under
    ``EphemeralKeyedWorkCoordinator[item_type, Any]`` (``Annotated[..., name]`` when named).

    Args:
        registry: The application's ``svcs.Registry``.
        key_selector: Maps an item to its key.
        body: ``async def body(item)``.
        options: The coordinator's options (``max_concurrency_per_key``, fair scheduling, ...).
        name: Registers a named coordinator; None is the default one.
        item_type: The item type ``T``, which keys the factory.

    Returns:
        The service type of the factory, for ``container.aget(...)``.

    Raises:
        ValueError: A keyed coordinator with this item type and name is already registered.
        RuntimeError: The registry's lifespan is already running.
        TypeError: ``key_selector`` or ``body`` is not callable, or ``options`` is not ``EphemeralOptions``.
    """
    check_callable(key_selector, "key_selector", "callable")
    _check_body(body)
    return _register(registry, _KEYED, (key_selector, body), options, name, item_type, scoped=False)


def add_scoped_coordinator(
    registry: svcs.Registry,
    body: Callable[[T], Awaitable[Any]],
    options: EphemeralOptions | None = None,
    *,
    name: str | None = None,
    item_type: TypeForm[T] | None = None,
) -> type[EphemeralWorkCoordinator[T]]:
    """Register a work coordinator per ``svcs.Container`` (per request), drained when the container closes.

    ``coordinator = await container.aget(EphemeralWorkCoordinator[item_type])`` builds and enters a new
    coordinator the first time a container asks (the same one afterwards); closing the container
    (the end of the request with ``svcs.fastapi.DepContainer``) completes and drains it, so the work
    of a request is finished when the request is. Use ``aget``: the coordinator is an async context
    manager, which svcs's synchronous ``get`` refuses. The container must be closed by the task that
    resolved the coordinator (as svcs's FastAPI and Starlette integrations do).

    Args:
        registry: The application's ``svcs.Registry``.
        body: ``async def body(item)``.
        options: The coordinator's options; a named coordinator gets ``coordinator_id=name`` unless set.
        name: Registers under ``Annotated[EphemeralWorkCoordinator[item_type], name]``.
        item_type: The item type ``T``; without it the service type is plain ``EphemeralWorkCoordinator``.

    Returns:
        The service type to resolve.

    Raises:
        ValueError: A coordinator with this item type and name is already registered.
        TypeError: ``body`` is not callable or ``options`` is not ``EphemeralOptions``.
    """
    _check_body(body)
    return _register(registry, _WORK, (body,), options, name, item_type, scoped=True)


def add_scoped_keyed_coordinator(
    registry: svcs.Registry,
    key_selector: Callable[[T], Hashable],
    body: Callable[[T], Awaitable[Any]],
    options: EphemeralOptions | None = None,
    *,
    name: str | None = None,
    item_type: TypeForm[T] | None = None,
) -> type[EphemeralKeyedWorkCoordinator[T, Any]]:
    """Register a keyed coordinator per ``svcs.Container``, as ``add_scoped_coordinator``.

    Resolve it with ``await container.aget(EphemeralKeyedWorkCoordinator[item_type, Any])``
    (``Annotated[..., name]`` when named).

    Returns:
        The service type to resolve.

    Raises:
        ValueError: A keyed coordinator with this item type and name is already registered.
        TypeError: ``key_selector`` or ``body`` is not callable, or ``options`` is not ``EphemeralOptions``.
    """
    check_callable(key_selector, "key_selector", "callable")
    _check_body(body)
    return _register(registry, _KEYED, (key_selector, body), options, name, item_type, scoped=True)


S = TypeVar("S", bound=AbstractAsyncContextManager[Any])


def add_lifespan_service(
    registry: svcs.Registry,
    service_type: TypeForm[S],
    factory: Callable[[svcs.Container], S | Awaitable[S]],
    *,
    name: str | None = None,
) -> Any:
    """Register a long-lived service that is an async context manager, run by ``ephemeral_lifespan``.

    When the lifespan starts, ``factory(container)`` builds the service (``container`` is an
    ``svcs.Container`` on the registry, open for the whole lifespan, to resolve what the service
    needs; the factory may be async) and the lifespan enters it, in registration order among the
    coordinators. At shutdown it is exited in reverse order, which for ephemeral's services drains
    them; an exception leaving the lifespan is passed to its exit, which cancels. While running, the
    service resolves from any container as ``service_type`` (``Annotated[service_type, name]`` when
    named) with ``await container.aget(...)`` (svcs's sync ``get`` refuses async context managers);
    svcs never enters it itself. Packages built on ephemeral use this for their runners (the
    job runner of ``ephemeral.attributes.di``, for one).

    Args:
        registry: The application's ``svcs.Registry``.
        service_type: The type the service is resolved as.
        factory: ``factory(container) -> service`` (or an awaitable of it); the service must be an
            async context manager.
        name: Registers a named service of that type; None is the default one.

    Returns:
        The service type to resolve.

    Raises:
        ValueError: A service of this type and name is already registered.
        RuntimeError: The registry's lifespan is already running.
        TypeError: ``factory`` is not callable.

    Example:
        >>> add_lifespan_service(registry, JobRunner, lambda container: JobRunner(container.get(SignalSink)))
        >>> async with ephemeral_lifespan(registry):
        ...     runner = await container.aget(JobRunner)
    """
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {factory!r}")
    key_name = _check_name(name)
    services = _services_of(registry)
    if services.running is not None:
        raise RuntimeError("services are registered before the application starts; this registry's lifespan is running")
    key: Any = service_type if key_name == "" else Annotated[service_type, key_name]
    label = getattr(service_type, "__qualname__", None) or repr(service_type)
    description = f"service {label}" + ("" if key_name == "" else f" named {key_name!r}")
    _claim(registry, services, key, "lifespan", description)
    entry = _LifespanService(description, factory)
    services.singletons.append(entry)
    registry.register_factory(key, entry.get, enter=False)
    return key


#: The seed's longer names (``AddEphemeralWorkCoordinator<T>`` and friends).
add_ephemeral_work_coordinator = add_coordinator
add_ephemeral_keyed_work_coordinator = add_keyed_coordinator
add_scoped_ephemeral_work_coordinator = add_scoped_coordinator
add_scoped_ephemeral_keyed_work_coordinator = add_scoped_keyed_coordinator


class EphemeralLifespan(TaskGroupOwner):
    """Runs a registry's long-lived coordinators for as long as the application: its lifespan.

    Entering builds every coordinator registered with ``add_coordinator``/``add_keyed_coordinator``
    and enters it, in registration order, in an ``AsyncExitStack``. Leaving completes and drains them
    in reverse order, so a coordinator whose body feeds another should be registered after the one
    it feeds: it drains first, while its downstream still accepts work. Every accepted item has run
    when the block ends. An exception leaving the block cancels instead (waiting items are counted
    in ``total_cancelled``), as for any coordinator.

    Enter it in the application's lifespan, inside ``svcs.fastapi.lifespan`` or
    ``svcs.starlette.lifespan`` or any ASGI lifespan, so that the task that starts the coordinators
    is the one that drains them::

        @svcs.fastapi.lifespan
        async def lifespan(app: FastAPI, registry: svcs.Registry) -> AsyncGenerator[dict[str, object], None]:
            add_coordinator(registry, process, item_type=WorkItem)
            async with ephemeral_lifespan(registry):
                yield {}

    Args:
        registry: The registry the coordinators were registered in.
        shutdown_timeout: Seconds (or a timedelta) the whole drain may take; when it runs out, what
            has not finished is cancelled (counted in ``total_cancelled``, with a warning logged).
            Lifespan services with ``await drain()`` and ``cancel()`` (a job runner) drain within the
            same time. None (the default) waits for all of it.
    """

    def __init__(self, registry: svcs.Registry, *, shutdown_timeout: float | timedelta | None = None) -> None:
        self._services = _services_of(registry)
        self._timeout = None if shutdown_timeout is None else to_seconds(shutdown_timeout, "shutdown_timeout")
        self._coordinators: list[CoordinatorBase[Any, Any]] = []
        self._started_services: list[Any] = []
        self._registry = registry

    @property
    def coordinators(self) -> tuple[CoordinatorBase[Any, Any], ...]:
        """The coordinators this lifespan started, in start order."""
        return tuple(self._coordinators)

    @property
    def services(self) -> tuple[Any, ...]:
        """The services registered with ``add_lifespan_service`` that this lifespan started, in start order."""
        return tuple(self._started_services)

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        services = self._services
        if services.closed:
            raise CoordinatorClosedError("the registry has been closed; its coordinators cannot start again")
        if services.running is not None:
            raise RuntimeError("this registry's coordinators are already running")
        services.running = self._coordinators
        try:
            async with AsyncExitStack() as stack:
                container: svcs.Container | None = None
                for entry in list(services.singletons):
                    if isinstance(entry, _LifespanService):
                        if container is None:
                            container = await stack.enter_async_context(svcs.Container(self._registry))
                        service = entry.factory(container)
                        if inspect.isawaitable(service):
                            service = await service
                        stack.callback(setattr, entry, "current", None)  # after its exit: resolvable while draining
                        await stack.enter_async_context(service)
                        entry.current = service
                        self._started_services.append(service)
                        continue
                    factory, name = entry
                    coordinator = factory._recipes[name]()
                    await stack.enter_async_context(coordinator)
                    factory._current[name] = coordinator
                    self._coordinators.append(coordinator)
                yield
        finally:
            services.running = None

    async def _on_clean_exit(self) -> None:
        """With a ``shutdown_timeout``, drain within it and cancel what is left.

        Each coordinator's own exit drains next (on an exception, it cancels instead).
        """
        if self._timeout is None:
            return
        stoppable = [service for service in self._started_services if _stoppable(service)]
        with anyio.move_on_after(self._timeout) as scope:
            for coordinator in reversed(self._coordinators):
                await coordinator.drain()
            for service in reversed(stoppable):
                await service.drain()
        if scope.cancelled_caught:
            for service in stoppable:
                _log.warning("shutdown_timeout (%ss) ran out: cancelling what %r still runs", self._timeout, service)
                service.cancel()
        for coordinator in self._coordinators:
            if not coordinator.is_drained:
                _log.warning(
                    "shutdown_timeout (%ss) ran out: cancelling %s waiting and %s running items of %r",
                    self._timeout,
                    coordinator.pending_count,
                    coordinator.active_count,
                    coordinator.coordinator_id or type(coordinator).__name__,
                )
                coordinator.cancel()


def _stoppable(service: object) -> Any:
    """Whether a lifespan service can be drained (``await drain()``) and cancelled (``cancel()``) like a coordinator."""
    return callable(getattr(service, "drain", None)) and callable(getattr(service, "cancel", None))


def ephemeral_lifespan(
    registry: svcs.Registry, *, shutdown_timeout: float | timedelta | None = None
) -> EphemeralLifespan:
    """Start the registry's coordinators for the block and drain them at its end: ``EphemeralLifespan``.

    Example:
        >>> async with ephemeral_lifespan(registry, shutdown_timeout=30):
        ...     yield {}
    """
    return EphemeralLifespan(registry, shutdown_timeout=shutdown_timeout)
