"""The README example runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path
from typing import Any

README = Path(__file__).parent.parent / "README.md"


def test_readme_example() -> None:
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    out = io.StringIO()
    namespace: dict[str, Any] = {}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(block, str(README), "exec", dont_inherit=True), namespace)
    finally:
        for name in ("orders", "audit"):
            logging.getLogger(name).handlers.clear()
    lines = out.getvalue().splitlines()
    expected = [line.split("# ", 1)[1] for line in block.splitlines() if line.startswith("print(") and "# " in line]
    printed = [line for line in lines if not line.startswith("error.db.timeout (op:")]
    assert printed == expected
    assert any(re.fullmatch(r"error\.db\.timeout \(op:\d+, key:order-42\)", line) for line in lines)
