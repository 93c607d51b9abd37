"""Check the namespace layout of every ephemeral wheel in a directory.

Usage: python scripts/check_wheels.py dist

Every distribution is a PEP 420 portion of the ``ephemeral`` namespace, so a wheel must ship none
of the namespace ``__init__.py`` files (one would shadow every other distribution's portion), must
ship exactly one leaf package (``ephemeral/core``, ``ephemeral/atoms/retry``, ...) with a
``py.typed`` in it, and nothing outside ``ephemeral/`` but its ``.dist-info``.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path, PurePosixPath

NAMESPACES = ("ephemeral", "ephemeral/atoms", "ephemeral/patterns", "ephemeral/signals", "ephemeral/sqlite")


def leaf_of(path: PurePosixPath) -> str | None:
    """Return the leaf package directory a wheel member belongs to, or None outside one."""
    parts = path.parts
    depth = 3 if "/".join(parts[:2]) in NAMESPACES else 2
    if parts[0] != "ephemeral" or len(parts) <= depth:
        return None
    return "/".join(parts[:depth])


def check_wheel(wheel: Path) -> list[str]:
    """Return the problems found in one wheel (empty when it is fine)."""
    with zipfile.ZipFile(wheel) as archive:
        names = [PurePosixPath(n) for n in archive.namelist() if not n.endswith("/")]
    problems = [f"ships {name} in a namespace directory" for name in names if str(name.parent) in NAMESPACES]
    problems += [
        f"ships {name} outside the ephemeral namespace"
        for name in names
        if name.parts[0] != "ephemeral" and not name.parts[0].endswith(".dist-info")
    ]
    leaves = sorted({leaf for name in names if (leaf := leaf_of(name))})
    if len(leaves) != 1:
        problems.append(f"ships {len(leaves)} leaf packages {leaves}, expected exactly one")
    problems += [
        f"lacks {leaf}/{marker}"
        for leaf in leaves
        for marker in ("__init__.py", "py.typed")
        if PurePosixPath(leaf, marker) not in names
    ]
    print(f"{wheel.name}: leaf {', '.join(leaves) or '-'}; {len(names)} files; ", end="")
    print("; ".join(problems) if problems else "ok")
    return problems


def main(argv: list[str]) -> int:
    """Check every wheel in the directory given as the only argument; 1 on any problem."""
    if len(argv) != 1:
        print(__doc__)
        return 2
    wheels = sorted(Path(argv[0]).glob("*.whl"))
    if not wheels:
        print(f"no wheels in {argv[0]}")
        return 1
    print(f"checking {len(wheels)} wheels: no namespace __init__.py in {', '.join(NAMESPACES)};")
    print("exactly one leaf package, with __init__.py and py.typed; nothing else but .dist-info")
    failed = [wheel for wheel in wheels if check_wheel(wheel)]
    print(f"{len(wheels) - len(failed)} of {len(wheels)} wheels ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
