"""The README example runs as written (in a temporary working directory) and prints what its comment says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ephemeral.core.testing import arun_readme_examples

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.real_time
async def test_readme_example(tmp_path: Path) -> None:
    output = await arun_readme_examples(README, cwd=tmp_path)
    assert output == "Order(id='order-123', total=Decimal('42.00'))\n"
    connection = sqlite3.connect(tmp_path / "orders.db")
    try:
        assert connection.execute("SELECT key FROM orders").fetchall() == [("order-123",)]
    finally:
        connection.close()
