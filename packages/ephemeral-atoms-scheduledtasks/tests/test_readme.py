"""The README's example runs, on asyncio and trio in virtual time, and prints what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.anyio
README = Path(__file__).parent.parent / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


async def test_readme_example_prints_what_it_shows() -> None:
    code, expected = blocks("python")[0], blocks("text")[0]
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        await namespace["main"]()
    assert output.getvalue() == expected


def test_readme_json_schedule_loads() -> None:
    from ephemeral.atoms.scheduledtasks import ScheduledTaskDefinition

    (daily,) = ScheduledTaskDefinition.from_json(blocks("json")[0], source="README.md")
    assert (daily.name, daily.run_on_startup, daily.payload, daily.time_zone) == (
        "daily",
        True,
        {"type": "daily"},
        "Europe/London",
    )
