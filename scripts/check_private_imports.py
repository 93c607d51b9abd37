"""Fail when a module imports another module's private name (``from ._x import _name``).

A module's underscore names are its own: another module that needs one should get a public name for
it (public within the package: no underscore, listed in the module's ``__all__``). This also covers
absolute imports of ``ephemeral.*`` modules. Dunder names (``__version__``) are allowed.

    python scripts/check_private_imports.py [PATH ...]   # default: packages/*/src

Exit status 1 lists every offending import as ``path:line: from module import name``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(path: Path) -> Iterator[tuple[int, str, str]]:
    """``(line, module, name)`` for each private name ``path`` imports from another module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.module is None:
            continue  # ``from . import _jobs``: a private submodule of the same package, not a name
        module = "." * node.level + node.module
        if node.level == 0 and not module.startswith("ephemeral."):
            continue  # third-party and stdlib imports are their own business
        for alias in node.names:
            if _is_private(alias.name):
                yield node.lineno, module, alias.name


def main(argv: list[str]) -> int:
    roots = [Path(arg) for arg in argv] or sorted(ROOT.glob("packages/*/src"))
    problems: list[str] = []
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            posix = path.as_posix()
            for line, module, name in private_imports(path):
                problems.append(f"{posix}:{line}: from {module} import {name}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import(s) of another module's private name; give the name a public spelling")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
