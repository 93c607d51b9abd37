"""The README example runs as written (on asyncio and trio, in virtual time) and prints what the README says."""

from __future__ import annotations

from pathlib import Path

from ephemeral.core.testing import arun_readme_examples, output_blocks

README = Path(__file__).parent.parent / "README.md"


async def test_readme_example() -> None:
    assert await arun_readme_examples(README) == output_blocks(README)[0]
