"""The README example runs as written (in a temporary working directory) and prints what its comment says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ephemeral.core.testing import arun_readme_examples

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.real_time
async def test_readme_example(tmp_path: Path) -> None:
    output = await arun_readme_examples(README, cwd=tmp_path)
    assert output == "Order(id='order-123', total=Decimal('42.00'))\n"
    stored = json.loads((tmp_path / "orders" / "order-123.json").read_text())
    assert stored == {"id": "order-123", "total": "42.00"}
