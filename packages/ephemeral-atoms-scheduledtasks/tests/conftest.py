"""A real PostgreSQL for the tests: a DSN, a unique table per test (dropped afterwards), admin SQL.

The server is found through the environment variable ``EPHEMERAL_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When it cannot be reached the database tests are skipped,
saying so; with ``EPHEMERAL_REQUIRE_POSTGRES=1`` (as CI sets it) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

DSN_VARIABLE = "EPHEMERAL_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "EPHEMERAL_REQUIRE_POSTGRES"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class Admin:
    """Runs SQL on its own short-lived connection (call it through a thread from async tests)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def run(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, once it answered; skips (or fails when required) if it does not."""
    dsn = os.environ.get(DSN_VARIABLE, DEFAULT_DSN)
    try:
        Admin(dsn).run("SELECT 1")
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
def admin(postgres_dsn: str) -> Callable[[str, tuple[Any, ...] | None], list[tuple[Any, ...]]]:
    """``admin(sql, params)``: SQL on the test server, beside the atom under test; returns the rows."""
    return Admin(postgres_dsn).run


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    """A table name no other test (or concurrent test run) uses; the table is dropped afterwards."""
    name = f"scheduledtasks_{uuid.uuid4().hex[:20]}"
    yield name
    Admin(postgres_dsn).run(f'DROP TABLE IF EXISTS "public"."{name}"')
