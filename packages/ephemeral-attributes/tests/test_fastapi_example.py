"""The FastAPI example (examples/fastapi_app.py) through a real ASGI client and lifespan: work and watcher jobs."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import anyio
import httpx
import pytest
import svcs
from asgi_lifespan import LifespanManager

from ephemeral.attributes import EphemeralSignalJobRunner
from ephemeral.core import EphemeralWorkCoordinator
from ephemeral.core.di import EphemeralCoordinatorFactory

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "fastapi_app.py"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of examples/fastapi_app.py (examples/ is not a package), its body recording items."""
    spec = importlib.util.spec_from_file_location("ephemeral_example_fastapi_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    processed: list[str] = []
    original = module.process

    async def process(item: Any) -> None:
        await original(item)
        processed.append(item.data)

    monkeypatch.setattr(module, "process", process)  # looked up when the lifespan registers it
    monkeypatch.setattr(module, "processed", processed, raising=False)
    return module


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (startup, then shutdown on exit) and talk to it over ASGI."""
    async with (
        LifespanManager(app, shutdown_timeout=None) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


def example_coordinator(example: ModuleType) -> EphemeralWorkCoordinator[Any]:
    key = cast(Any, EphemeralCoordinatorFactory)[example.WorkItem]
    with svcs.Container(example.lifespan.registry) as container:
        factory: EphemeralCoordinatorFactory[Any] = container.get(key)
        return factory.create_coordinator()


async def test_post_answers_202_and_the_item_is_processed(example: ModuleType) -> None:
    """POST / answers 202 Accepted with the operation id, the body processes the item, and /stats counts it."""
    async with serve(example.app) as client:
        response = await client.post("/", json={"data": "hello", "work_seconds": 0.5})
        assert response.status_code == 202
        assert isinstance(response.json()["operation_id"], int)
        await anyio.sleep(1)  # virtual time: the half-second body has run
        assert example.processed == ["hello"]
        stats = (await client.get("/stats")).json()
        assert stats["total_enqueued"] == 1 and stats["total_completed"] == 1 and stats["total_failed"] == 0


async def test_shutdown_drains_every_accepted_item(example: ModuleType) -> None:
    """Stopping the app completes and drains the coordinator: items accepted but not yet run are all processed."""
    async with serve(example.app) as client:
        for i in range(20):
            response = await client.post("/", json={"data": f"item-{i}", "work_seconds": 1.0})
            assert response.status_code == 202
        coordinator = example_coordinator(example)
        assert coordinator.pending_count + coordinator.active_count == 20 and not example.processed
    assert sorted(example.processed) == sorted(f"item-{i}" for i in range(20))
    metrics = coordinator.get_metrics()
    assert metrics.total_completed == 20 and metrics.total_cancelled == 0 and metrics.is_drained


async def test_post_once_intake_has_stopped_answers_503(example: ModuleType) -> None:
    """When the coordinator no longer accepts work (shutting down), POST / answers 503 instead of losing the item."""
    async with serve(example.app) as client:
        example_coordinator(example).complete()
        response = await client.post("/", json={"data": "late"})
        assert response.status_code == 503
    assert example.processed == []


async def test_invalid_item_answers_422(example: ModuleType) -> None:
    """A body that is not a WorkItem is refused by validation and never reaches the coordinator."""
    async with serve(example.app) as client:
        response = await client.post("/", json={"work_seconds": -1})
        assert response.status_code == 422
        assert (await client.get("/stats")).json()["total_enqueued"] == 0


async def test_the_app_starts_again_after_a_shutdown(example: ModuleType) -> None:
    """The same app object can run its lifespan twice (as in tests): each run registers and drains a new coordinator."""
    for run in range(2):
        async with serve(example.app) as client:
            assert (await client.post("/", json={"data": f"run-{run}", "work_seconds": 1})).status_code == 202
    assert example.processed == ["run-0", "run-1"]


async def test_error_reports_run_the_watcher_jobs(example: ModuleType) -> None:
    """POST /errors raises log.error.orders.dbfailure; escalate and notify run; shutdown drains the runner."""
    async with serve(example.app) as client:
        response = await client.post("/errors", json={"source": "orders", "event": "DbFailure"})
        assert response.status_code == 202 and response.json() == {"signal": "log.error.orders.dbfailure"}
        await anyio.sleep(1)
        assert (await client.get("/incidents")).json() == [
            "escalating log.error.orders.dbfailure for orders",
            "notified incident for orders",
            "notified incident for orders",
        ]
        with svcs.Container(example.lifespan.registry) as container:
            runner = await container.aget(EphemeralSignalJobRunner)
        assert runner.lanes == ["default", "hot"]
        assert (await client.post("/errors", json={"source": "billing", "event": "Timeout"})).status_code == 202
    assert runner.get_stats().completed == 6 and runner.active_count == 0
