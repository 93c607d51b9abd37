"""Job runners on svcs: the implementation behind ``ephemeral.attributes.di`` (the ``di`` extra)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import svcs

from ephemeral.core import SignalEvent, SignalSink
from ephemeral.core.di import add_lifespan_service

from ._jobs import EphemeralJobDescriptor, EphemeralJobScanner
from ._runner import EphemeralJobRunnerOptions, EphemeralSignalJobRunner

__all__ = ("EphemeralScopedJobRunner", "add_ephemeral_scoped_job_runner", "add_ephemeral_signal_job_runner")


def _job_classes(targets: Iterable[type | ModuleType]) -> list[type]:
    """Classes given directly, and the classes with jobs defined in the modules given."""
    classes: list[type] = []
    for target in targets:
        if isinstance(target, ModuleType):
            classes.extend(
                value
                for value in vars(target).values()
                if isinstance(value, type) and value.__module__ == target.__name__ and EphemeralJobScanner.scan(value)
            )
        elif isinstance(target, type):
            classes.append(target)
        else:
            raise TypeError(f"job types must be classes or modules, got {target!r}")
    if not classes:
        raise ValueError("At least one job type must be provided (a class with @ephemeral_job methods, or a module)")
    return classes


async def _build(cls: type, container: svcs.Container) -> Any:
    """``cls`` from the container when registered, else ``cls(...)`` with its typed parameters resolved."""
    registry = container.registry
    if cls in registry:
        return await container.aget(cls)
    init: Any = cls.__init__  # type: ignore[misc]
    hints = typing.get_type_hints(init) if init is not object.__init__ else {}
    arguments: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        wanted = hints.get(name)
        if wanted is not None and isinstance(wanted, type) and wanted in registry:
            arguments[name] = await container.aget(wanted)
        elif parameter.default is inspect.Parameter.empty:
            raise TypeError(
                f"cannot build {cls.__qualname__}: parameter {name!r} has no default and its type "
                f"{wanted!r} is not registered in the registry"
            )
    return cls(**arguments)


class EphemeralScopedJobRunner(EphemeralSignalJobRunner):
    """A job runner that builds the job's object in a new ``svcs.Container`` for every invocation.

    The object is resolved from the container when its class is registered (``register_factory``),
    else built from the class with its typed ``__init__`` parameters resolved from the container. The
    container closes when the invocation ends, so per-invocation resources (a database session) are
    released by svcs. Everything else is as for ``EphemeralSignalJobRunner``.

    Args:
        registry: Where the job objects and their dependencies come from.
        sink: The sink whose signals trigger the jobs.
        job_types: Classes with ``@ephemeral_job`` methods.
        options: ``EphemeralJobRunnerOptions``.
    """

    def __init__(
        self,
        registry: svcs.Registry,
        sink: SignalSink,
        job_types: Iterable[type],
        options: EphemeralJobRunnerOptions | None = None,
    ) -> None:
        if not isinstance(registry, svcs.Registry):
            raise TypeError(f"registry must be an svcs.Registry, got {registry!r}")
        self._registry = registry
        super().__init__(sink, list(job_types), options)

    def _check_targets(self, targets: list[object]) -> list[object]:
        for target in targets:
            if not isinstance(target, type):
                raise TypeError(f"job_types must be classes, got {target!r}")
        return targets

    async def _invoke(self, descriptor: EphemeralJobDescriptor, event: SignalEvent[Any]) -> None:
        async with svcs.Container(self._registry) as container:
            target = await _build(descriptor.target, container)
            await descriptor.method(target, event)


def _prepare(
    registry: svcs.Registry, job_types: Iterable[type | ModuleType], signal_factory: Callable[[], SignalSink] | None
) -> list[type]:
    """The job classes, checked; registers a ``SignalSink`` when the registry has none."""
    classes = _job_classes(job_types)
    if SignalSink not in registry:
        sink = signal_factory() if signal_factory is not None else SignalSink()
        if not isinstance(sink, SignalSink):
            raise TypeError(f"signal_factory must return a SignalSink, got {sink!r}")
        registry.register_value(SignalSink, sink)
    return classes


def add_ephemeral_signal_job_runner(
    registry: svcs.Registry,
    *job_types: type | ModuleType,
    options: EphemeralJobRunnerOptions | None = None,
    signal_factory: Callable[[], SignalSink] | None = None,
    name: str | None = None,
) -> Any:
    """Register an ``EphemeralSignalJobRunner`` over ``job_types``, run by ``ephemeral_lifespan``.

    At startup one object of each class is resolved from the registry, or built with its typed
    ``__init__`` parameters resolved (``LogWatcherJobs(sink: SignalSink)`` gets the registry's sink).

    Args:
        registry: The application's ``svcs.Registry``.
        job_types: Classes with ``@ephemeral_job`` methods, or modules (their classes with jobs).
        options: The runner's options.
        signal_factory: Builds the ``SignalSink`` registered when the registry has none.
        name: Registers a named runner (``Annotated[EphemeralSignalJobRunner, name]``).

    Returns:
        The service type to resolve the running runner with (``await container.aget(...)``).

    Raises:
        ValueError: No job type was given (or a module holds none).
        TypeError: A job type is neither a class nor a module.
    """
    classes = _prepare(registry, job_types, signal_factory)

    async def build(container: svcs.Container) -> EphemeralSignalJobRunner:
        sink = await container.aget(SignalSink)
        targets = [await _build(cls, container) for cls in classes]
        return EphemeralSignalJobRunner(sink, targets, options)

    return add_lifespan_service(registry, EphemeralSignalJobRunner, build, name=name)


def add_ephemeral_scoped_job_runner(
    registry: svcs.Registry,
    *job_types: type | ModuleType,
    options: EphemeralJobRunnerOptions | None = None,
    signal_factory: Callable[[], SignalSink] | None = None,
    name: str | None = None,
) -> Any:
    """Register an ``EphemeralScopedJobRunner`` over ``job_types``, run by ``ephemeral_lifespan``.

    Each invocation gets a new container and a new object of its class (see the runner). Arguments,
    return value and errors are those of ``add_ephemeral_signal_job_runner``.
    """
    classes = _prepare(registry, job_types, signal_factory)

    async def build(container: svcs.Container) -> EphemeralScopedJobRunner:
        return EphemeralScopedJobRunner(registry, await container.aget(SignalSink), classes, options)

    return add_lifespan_service(registry, EphemeralScopedJobRunner, build, name=name)
