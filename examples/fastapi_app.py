"""The seed's web example as a FastAPI app: ``POST /`` enqueues a work item and answers 202 Accepted.

The .NET original registers ``services.AddCoordinator<WorkItem>(...)`` and enqueues through
``IEphemeralCoordinatorFactory<WorkItem>``; here ``add_coordinator`` registers the coordinator in the
app's svcs registry, ``ephemeral_lifespan`` runs it for as long as the app, and the view resolves
``EphemeralCoordinatorFactory[WorkItem]`` from the request's svcs container. Stopping the server
drains the coordinator: every accepted item is processed before the process exits.

Beside it runs the original README's ``LogWatcherJobs``, registered with ``add_ephemeral_signal_job_runner``
(``AddEphemeralSignalJobRunner<LogWatcherJobs>()``): ``POST /errors`` raises a watcher-friendly
``log.error.{source}.{event}`` signal on the app's sink, ``escalate`` turns it into
``incident.created``, ``notify`` reacts to that, and ``GET /incidents`` shows what they did. The same
lifespan starts the job runner and drains it at shutdown.

Run it from the repository root::

    pip install "ephemeral-core[di]" "ephemeral-attributes[di]" fastapi uvicorn
    uvicorn examples.fastapi_app:app

    curl -i -X POST localhost:8000/ -H 'content-type: application/json' -d '{"data": "hello", "work_seconds": 2}'
    curl localhost:8000/stats
    curl -i -X POST localhost:8000/errors -H 'content-type: application/json' \\
        -d '{"source": "orders", "event": "DbFailure"}'
    curl localhost:8000/incidents
"""

import logging
from collections.abc import AsyncGenerator

import anyio
import svcs
from fastapi import FastAPI, HTTPException, status
from pydantic import BaseModel, Field

from ephemeral.attributes import ephemeral_job
from ephemeral.attributes.di import add_ephemeral_signal_job_runner
from ephemeral.core import CoordinatorClosedError, EphemeralOptions, SignalEvent, SignalSink
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


class ErrorReport(BaseModel):
    """An error another service wants the watchers to know about."""

    source: str = Field(min_length=1, max_length=100)
    event: str = Field(min_length=1, max_length=100)


class LogWatcherJobs:
    """The original README's log watcher: ``log.error.*`` signals escalate into incidents, incidents notify."""

    def __init__(self, sink: SignalSink) -> None:
        self._sink = sink
        self.incidents: list[str] = []

    @ephemeral_job("log.error.*", priority=1, max_concurrency=2, lane="hot:4", emit_on_complete=["incident.created"])
    async def escalate(self, signal: SignalEvent[object]) -> None:
        """Escalate an error signal: raise ``incident.created`` with its key."""
        self.incidents.append(f"escalating {signal.signal} for {signal.key}")
        self._sink.emit("incident.created", key=signal.key)

    @ephemeral_job("incident.created", emit_on_start=["incident.monitor.start"])
    async def notify(self, signal: SignalEvent[object]) -> None:
        """Notify about an incident (here: record it)."""
        self.incidents.append(f"notified incident for {signal.key}")


@svcs.fastapi.lifespan
async def lifespan(app: FastAPI, registry: svcs.Registry) -> AsyncGenerator[dict[str, object], None]:
    """Register the coordinator and the job runner, start them with the app, and drain them when it stops."""
    sink = SignalSink()
    registry.register_value(SignalSink, sink)
    registry.register_value(LogWatcherJobs, LogWatcherJobs(sink))  # the runner's jobs; /incidents reads them
    add_ephemeral_signal_job_runner(registry, LogWatcherJobs)
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


@app.post("/errors", status_code=status.HTTP_202_ACCEPTED)
async def report_error(report: ErrorReport, services: svcs.fastapi.DepContainer) -> dict[str, str]:
    """Raise ``log.error.{source}.{event}`` (key: the source) on the app's sink for the watchers."""
    signal = f"log.error.{report.source.lower()}.{report.event.lower()}"
    (await services.aget(SignalSink)).emit(signal, key=report.source)
    return {"signal": signal}


@app.get("/incidents")
async def incidents(services: svcs.fastapi.DepContainer) -> list[str]:
    """What the watcher jobs did so far."""
    return (await services.aget(LogWatcherJobs)).incidents
