"""The README example runs as written (in a temporary working directory)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.real_time
async def test_readme_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(README), "exec", dont_inherit=True), namespace)
    monkeypatch.chdir(tmp_path)
    await namespace["main"]()
    connection = sqlite3.connect(tmp_path / "orders.db")
    try:
        assert connection.execute("SELECT key FROM orders").fetchall() == [("order-123",)]
    finally:
        connection.close()
