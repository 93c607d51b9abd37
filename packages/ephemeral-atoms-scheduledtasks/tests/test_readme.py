"""The README's examples run, on asyncio and trio in virtual time, and print what the README shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephemeral.atoms.scheduledtasks import ScheduledTaskDefinition
from ephemeral.core.testing import arun_readme_examples, output_blocks

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.anyio
async def test_readme_examples_print_what_they_show(tmp_path: Path) -> None:
    assert await arun_readme_examples(README, cwd=tmp_path) == output_blocks(README)[0]


def test_readme_json_schedule_loads() -> None:
    json_block = README.read_text().split("```json\n", 1)[1].split("```", 1)[0]
    (daily,) = ScheduledTaskDefinition.from_json(json_block, source="README.md")
    assert (daily.name, daily.run_on_startup, daily.payload, daily.time_zone) == (
        "daily",
        True,
        {"type": "daily"},
        "Europe/London",
    )
