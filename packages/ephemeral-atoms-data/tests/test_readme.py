"""The README example runs as written."""

from __future__ import annotations

from pathlib import Path

from ephemeral.core.testing import run_readme_examples


def test_readme_example() -> None:
    assert run_readme_examples(Path(__file__).parent.parent / "README.md") == ""
