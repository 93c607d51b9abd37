"""Set the one version every ephemeral distribution shares, everywhere it is written.

    python scripts/bump_version.py            # print the version
    python scripts/bump_version.py 0.2.0      # set it
    python scripts/bump_version.py --check    # exit 1 when a file disagrees with it

The distributions are released in lockstep. The version's one source is the root ``pyproject.toml``
(``[project] version``); this script copies it into every ``packages/*/pyproject.toml`` (its
``version`` and the exact ``ephemeral-*==`` pins of its siblings, extras included) and every
``__version__ = "..."`` under ``packages/*/src``. Files are edited in place, their formatting kept.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "pyproject.toml"

#: A release version: 1.2.3, optionally with a pre-release, post or dev part (PEP 440 public versions).
_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$")
#: The first ``version = "..."`` line: the ``[project]`` table's (it comes first in every pyproject here).
_PROJECT_VERSION = re.compile(r'^(version\s*=\s*")([^"]*)(")', re.M)
#: An exact pin of a sibling: ``ephemeral-core==0.1.0``, ``ephemeral-core[di]==0.1.0``.
_PIN = re.compile(r"(\"ephemeral-[a-z0-9-]+(?:\[[a-z0-9,-]+\])?==)([^\"';,\s]+)")
_DUNDER = re.compile(r'^(__version__\s*=\s*")([^"]*)(")', re.M)


def current() -> str:
    """The version in the root pyproject.toml."""
    match = _PROJECT_VERSION.search(SOURCE.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"{SOURCE}: no version line")
    return match.group(2)


def targets() -> list[Path]:
    """Every file that carries the version, the source first."""
    pyprojects = sorted((ROOT / "packages").glob("*/pyproject.toml"))
    modules = sorted(p for p in (ROOT / "packages").glob("*/src/**/*.py") if _DUNDER.search(p.read_text("utf-8")))
    return [SOURCE, *pyprojects, *modules]


def rewrite(text: str, version: str, path: Path) -> str:
    """``text`` with every version written in it set to ``version``."""
    if path.suffix == ".toml":
        text = _PROJECT_VERSION.sub(lambda m: m.group(1) + version + m.group(3), text, count=1)
        return _PIN.sub(lambda m: m.group(1) + version, text)
    return _DUNDER.sub(lambda m: m.group(1) + version + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", help="the new version (default: print the current one)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file disagrees with the source")
    args = parser.parse_args(argv)
    if args.version is not None and args.check:
        parser.error("give a version or --check, not both")
    if args.version is None and not args.check:
        print(current())
        return 0
    version = current() if args.check else args.version
    if not _VERSION.match(version):
        parser.error(f"not a release version (like 1.2.3 or 1.2.3rc1): {version!r}")
    stale = []
    for path in targets():
        text = path.read_text(encoding="utf-8")
        updated = rewrite(text, version, path)
        if updated != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(updated, encoding="utf-8")
    if args.check:
        for path in stale:
            print(f"{path}: not at version {version} (run scripts/bump_version.py {version})", file=sys.stderr)
        return 1 if stale else 0
    print(f"{version}: {len(stale)} file(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
