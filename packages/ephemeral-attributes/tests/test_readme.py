"""The README example runs as written (on asyncio and trio, in virtual time) and prints what the README says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parent.parent / "README.md"


async def test_readme_example(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    expected = re.findall(r"```text\n(.*?)```", text, re.S)[0]
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(block.replace("anyio.run(main)", ""), str(README), "exec", dont_inherit=True), namespace)
    await namespace["main"]()
    assert capsys.readouterr().out == expected
