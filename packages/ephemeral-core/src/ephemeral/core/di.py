"""Dependency injection for coordinators on svcs: the ``di`` extra, ``pip install "ephemeral-core[di]"``.

The Python edition of ``services.AddCoordinator<T>(...)`` and ``IEphemeralCoordinatorFactory<T>``.
Register coordinators in an ``svcs.Registry``, run them with the application's lifespan, and resolve
them per request::

    import svcs
    from ephemeral.core import EphemeralOptions
    from ephemeral.core.di import EphemeralCoordinatorFactory, add_coordinator, ephemeral_lifespan

    @svcs.fastapi.lifespan
    async def lifespan(app: FastAPI, registry: svcs.Registry) -> AsyncGenerator[dict[str, object], None]:
        add_coordinator(registry, process, EphemeralOptions(max_concurrency=8), item_type=WorkItem)
        async with ephemeral_lifespan(registry):  # starts the coordinators; drains them at shutdown
            yield {}

    @app.post("/", status_code=202)
    async def enqueue(item: WorkItem, services: svcs.fastapi.DepContainer) -> None:
        factory = await services.aget(EphemeralCoordinatorFactory[WorkItem])
        await factory.create_coordinator().enqueue(item)

``import ephemeral.core`` never needs svcs; only this module does.
"""

from __future__ import annotations

try:
    from ._di import (
        EphemeralCoordinatorFactory as EphemeralCoordinatorFactory,
        EphemeralKeyedCoordinatorFactory as EphemeralKeyedCoordinatorFactory,
        EphemeralLifespan as EphemeralLifespan,
        add_coordinator as add_coordinator,
        add_ephemeral_keyed_work_coordinator as add_ephemeral_keyed_work_coordinator,
        add_ephemeral_work_coordinator as add_ephemeral_work_coordinator,
        add_keyed_coordinator as add_keyed_coordinator,
        add_lifespan_service as add_lifespan_service,
        add_scoped_coordinator as add_scoped_coordinator,
        add_scoped_ephemeral_keyed_work_coordinator as add_scoped_ephemeral_keyed_work_coordinator,
        add_scoped_ephemeral_work_coordinator as add_scoped_ephemeral_work_coordinator,
        add_scoped_keyed_coordinator as add_scoped_keyed_coordinator,
        ephemeral_lifespan as ephemeral_lifespan,
    )
except ImportError as error:
    if error.name is None or error.name.partition(".")[0] != "svcs":
        raise
    raise ImportError(
        'ephemeral.core.di needs svcs, which is not installed: pip install "ephemeral-core[di]"',
        name=error.name,
    ) from error

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
