"""A real PostgreSQL for the tests (see ``ephemeral.core.testing.postgres_test_dsn``): a DSN, a unique table
per test (dropped afterwards), admin SQL. Without a server the database tests are skipped, saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ephemeral.core.testing import postgres_test_dsn, postgres_test_tables, run_postgres_sql


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test server's DSN, once it answered; skips (or fails when required) if it does not."""
    return postgres_test_dsn()


@pytest.fixture
def admin(postgres_dsn: str) -> Callable[[str, tuple[Any, ...] | None], list[tuple[Any, ...]]]:
    """``admin(sql, params)``: SQL on the test server, beside the atom under test; returns the rows."""
    return functools.partial(run_postgres_sql, postgres_dsn)


@pytest.fixture
def table(postgres_dsn: str) -> Iterator[str]:
    """A table name no other test (or concurrent test run) uses; the table is dropped afterwards."""
    with postgres_test_tables(postgres_dsn, "t") as new_table:
        yield new_table()
