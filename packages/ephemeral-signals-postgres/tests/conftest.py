"""A real PostgreSQL for the tests, and fleet nodes running as child processes.

The server is found as ``ephemeral.core.testing.postgres_test_dsn`` says; without one the database tests
are skipped, saying so.
"""

from __future__ import annotations

import functools
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import sniffio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from ephemeral.core.testing import postgres_test_dsn, postgres_test_tables, run_postgres_sql

NODE = Path(__file__).with_name("node.py")

Admin = Callable[[str, "tuple[Any, ...] | None"], "list[tuple[Any, ...]]"]


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, once it answered; skips (or fails when required) if it does not."""
    return postgres_test_dsn()


@pytest.fixture
def admin(postgres_dsn: str) -> Admin:
    """``admin(sql, params)``: SQL on the test server beside the bridges (call it through a thread)."""
    return functools.partial(run_postgres_sql, postgres_dsn)


@pytest.fixture
def tables(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """``tables()``: a new table name no other test uses; every one is dropped afterwards."""
    with postgres_test_tables(postgres_dsn, "sigpg") as new_table:
        yield new_table


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
    return f"sigpg_app_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def spawn(postgres_dsn: str, application_name: str) -> Callable[..., Any]:
    """``async with spawn(name, table, ..., dsn=None) as node``: a node process on this test's backend.

    ``dsn`` points it at another address of the server (a ``tcp_proxy``'s) instead of ``postgres_dsn``.
    """

    @asynccontextmanager
    async def start(name: str, *tables: str, dsn: str | None = None) -> AsyncIterator[Node]:
        backend = sniffio.current_async_library()
        dsn = postgres_dsn if dsn is None else dsn
        args = [sys.executable, str(NODE), backend, dsn, ",".join(tables), name, application_name]
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
