"""The README example runs as written (in a temporary working directory) and prints what its comments say."""

from __future__ import annotations

from pathlib import Path

from ephemeral.core.testing import arun_readme_examples

README = Path(__file__).parent.parent / "README.md"


async def test_readme_example(tmp_path: Path) -> None:
    """Two runs on one file: the second restores the first's signals and continues its row ids."""
    output = await arun_readme_examples(README, cwd=tmp_path)
    assert output.splitlines() == [
        "restored 0, orders 1, in memory 4",
        "last flushed id 2",
        "restored 2, orders 2, in memory 6",
        "last flushed id 4",
    ]
    assert (tmp_path / "signals.db").exists()
