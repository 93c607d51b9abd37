"""The seed's web example as a FastAPI app: ``POST /`` enqueues a work item and answers 202 Accepted.

The .NET original registers ``services.AddCoordinator<WorkItem>(...)`` and enqueues through
``IEphemeralCoordinatorFactory<WorkItem>``; here ``add_coordinator`` registers the coordinator in the
app's svcs registry, ``ephemeral_lifespan`` runs it for as long as the app, and the view resolves
``EphemeralCoordinatorFactory[WorkItem]`` from the request's svcs container. Stopping the server
drains the coordinator: every accepted item is processed before the process exits.

Run it from the repository root::

    pip install "ephemeral-core[di]" fastapi uvicorn
    uvicorn examples.fastapi_app:app

    curl -i -X POST localhost:8000/ -H 'content-type: application/json' -d '{"data": "hello", "work_seconds": 2}'
    curl localhost:8000/stats
"""

import logging
from collections.abc import AsyncGenerator

import anyio
import svcs
from fastapi import FastAPI, HTTPException, status
from pydantic import BaseModel, Field

from ephemeral.core import CoordinatorClosedError, EphemeralOptions
from ephemeral.core.di import EphemeralCoordinatorFactory, add_coordinator, ephemeral_lifespan

log = logging.getLogger("examples.fastapi_app")


class WorkItem(BaseModel):
    """One unit of work posted by a client."""

    data: str
    work_seconds: float = Field(default=0.0, ge=0.0, le=60.0, description="simulated processing time")


class Accepted(BaseModel):
    """The answer to an accepted item: the id its operation has in the coordinator."""

    operation_id: int


async def process(item: WorkItem) -> None:
    """The coordinator's body: the seed's ``ProcessAsync``."""
    await anyio.sleep(item.work_seconds)
    log.info("processed %r", item.data)


@svcs.fastapi.lifespan
async def lifespan(app: FastAPI, registry: svcs.Registry) -> AsyncGenerator[dict[str, object], None]:
    """Register the coordinator, start it with the app, and drain it when the app stops."""
    add_coordinator(
        registry,
        process,
        EphemeralOptions(max_concurrency=8, max_tracked_operations=128),
        item_type=WorkItem,
    )
    async with ephemeral_lifespan(registry):
        yield {}


app = FastAPI(title="ephemeral work queue", lifespan=lifespan)


async def _coordinator_factory(services: svcs.Container) -> EphemeralCoordinatorFactory[WorkItem]:
    return await services.aget(EphemeralCoordinatorFactory[WorkItem])


@app.post("/", status_code=status.HTTP_202_ACCEPTED)
async def enqueue(item: WorkItem, services: svcs.fastapi.DepContainer) -> Accepted:
    """Accept the item for background processing (waits while the coordinator's window is full)."""
    coordinator = (await _coordinator_factory(services)).create_coordinator()
    try:
        operation_id = await coordinator.enqueue(item)
    except CoordinatorClosedError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "shutting down; not accepting work") from None
    return Accepted(operation_id=operation_id)


@app.get("/stats")
async def stats(services: svcs.fastapi.DepContainer) -> dict[str, int | bool]:
    """The coordinator's counters: pending, active, enqueued, completed, failed, ..."""
    coordinator = (await _coordinator_factory(services)).create_coordinator()
    return coordinator.get_metrics()._asdict()
