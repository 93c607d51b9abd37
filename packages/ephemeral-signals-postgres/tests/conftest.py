"""A real PostgreSQL for the tests, and fleet nodes running as child processes.

The server is found through ``EPHEMERAL_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When it cannot be reached the database tests are skipped,
saying so; with ``EPHEMERAL_REQUIRE_POSTGRES=1`` (as CI sets it) they fail instead.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
import sniffio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

DSN_VARIABLE = "EPHEMERAL_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "EPHEMERAL_REQUIRE_POSTGRES"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
NODE = Path(__file__).with_name("node.py")

Admin = Callable[[str, "tuple[Any, ...] | None"], "list[tuple[Any, ...]]"]


def run_sql(dsn: str, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    """SQL on its own short-lived connection; returns the rows."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, once it answered; skips (or fails when required) if it does not."""
    dsn = os.environ.get(DSN_VARIABLE, DEFAULT_DSN)
    try:
        run_sql(dsn, "SELECT 1")
    except psycopg.Error as error:
        message = (
            f"no PostgreSQL server for the tests ({type(error).__name__}: {str(error).strip()}). "
            f"Start one, or point the tests at one with {DSN_VARIABLE}=postgresql://user@host:port/dbname"
        )
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{message} ({REQUIRE_VARIABLE}=1 requires these tests to run)", pytrace=False)
        pytest.skip(message)
    return dsn


@pytest.fixture
def admin(postgres_dsn: str) -> Admin:
    """``admin(sql, params)``: SQL on the test server beside the bridges (call it through a thread)."""

    def run(sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        return run_sql(postgres_dsn, sql, params)

    return run


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def tables(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """``tables()``: a new table name no other test uses; every one is dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(_unique("sigpg"))
        return made[-1]

    yield make
    for name in made:
        run_sql(postgres_dsn, f'DROP TABLE IF EXISTS "public"."{name}"')


@pytest.fixture
def table(tables: Callable[[], str]) -> str:
    """A table name no other test uses (dropped afterwards)."""
    return tables()


class Node:
    """A child process running ``node.py``: one sink with bridges, driven by JSON commands."""

    def __init__(self, process: Process, name: str) -> None:
        self.process = process
        self.name = name
        assert process.stdout is not None
        self._out = BufferedByteReceiveStream(process.stdout)

    async def read(self) -> Any:
        with anyio.fail_after(20):
            line = await self._out.receive_until(b"\n", 1 << 20)
        return json.loads(line)

    async def ask(self, *command: Any) -> Any:
        """Send ``command``; its answer."""
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps(command) + "\n").encode())
        return await self.read()


@pytest.fixture
def application_name() -> str:
    """The ``application_name`` of this test's bridges (to find their backends)."""
    return _unique("sigpg_app")


@pytest.fixture
def spawn(postgres_dsn: str, application_name: str) -> Callable[..., Any]:
    """``async with spawn(name, table, ...) as node``: a node process on this test's backend."""

    @asynccontextmanager
    async def start(name: str, *tables: str) -> AsyncIterator[Node]:
        backend = sniffio.current_async_library()
        args = [sys.executable, str(NODE), backend, postgres_dsn, ",".join(tables), name, application_name]
        process = await anyio.open_process(args, stderr=None)
        node = Node(process, name)
        try:
            assert await node.read() == "ready"
            yield node
            assert await node.ask("quit") == "bye"
            with anyio.fail_after(10):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()
            await process.aclose()

    return start
