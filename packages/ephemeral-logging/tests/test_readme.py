"""The README example runs as written and prints what its comments say."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from ephemeral.core.testing import python_blocks, run_readme_examples

README = Path(__file__).parent.parent / "README.md"


def test_readme_example(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        printed = run_readme_examples(README).splitlines()
    finally:
        for name in ("orders", "audit"):
            logging.getLogger(name).handlers.clear()
    (example,) = python_blocks(README)
    lines = example.code.splitlines()
    assert printed == [line.split("# ", 1)[1] for line in lines if line.startswith("print(") and "# " in line]
    logged = capsys.readouterr().err.splitlines()  # the example's StreamHandler writes to stderr
    assert any(re.fullmatch(r"error\.db\.timeout \(op:\d+, key:order-42\)", line) for line in logged), logged
