"""The README example runs as written (in a temporary working directory) and prints what its comments say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parent.parent / "README.md"


async def test_readme_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs on one file: the second restores the first's signals and continues its row ids."""
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block.rstrip().endswith("anyio.run(main)")
    namespace: dict[str, Any] = {}
    exec(compile(block.rstrip().removesuffix("anyio.run(main)"), str(README), "exec", dont_inherit=True), namespace)
    monkeypatch.chdir(tmp_path)
    await namespace["main"]()
    assert capsys.readouterr().out.splitlines() == [
        "restored 0, orders 1, in memory 4",
        "last flushed id 2",
        "restored 2, orders 2, in memory 6",
        "last flushed id 4",
    ]
    assert (tmp_path / "signals.db").exists()
