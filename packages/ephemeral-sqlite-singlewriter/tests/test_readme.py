"""The README example runs as written and prints what its comments say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


async def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example (its anyio.run replaced by an await) prints 3, 3, 2 and 2."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert code.rstrip().endswith("anyio.run(main)")
    namespace: dict[str, Any] = {}
    exec(compile(code.rstrip().removesuffix("anyio.run(main)"), "README.md", "exec"), namespace)
    await namespace["main"]()
    assert capsys.readouterr().out.splitlines() == ["3", "3", "2", "2"]
