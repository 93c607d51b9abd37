"""The README example, as written (on this test's table and server), prints what the README shows."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from ephemeral.core.testing import python_blocks

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.real_time
async def test_readme_example_prints_what_it_shows(postgres_dsn: str, table: str) -> None:
    (example,) = python_blocks(README)
    code = example.code.replace('table="signals_demo"', f'table="{table}"')
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, str(README), "exec", dont_inherit=True), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        await namespace["main"](postgres_dsn)
    assert out.getvalue() == example.shown_output
