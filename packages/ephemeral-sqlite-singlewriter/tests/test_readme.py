"""The README example runs as written and prints what its comments say."""

from __future__ import annotations

from pathlib import Path

from ephemeral.core.testing import arun_readme_examples


async def test_readme_example_runs() -> None:
    """The README's example (its anyio.run replaced by an await) prints 3, 3, 2 and 2."""
    output = await arun_readme_examples(Path(__file__).parent.parent / "README.md")
    assert output.splitlines() == ["3", "3", "2", "2"]
