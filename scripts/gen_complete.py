"""Generate what follows from the packages present: ephemeral-complete and the root README's package table.

    python scripts/gen_complete.py          # rewrite packages/ephemeral-complete and the README table
    python scripts/gen_complete.py --check  # exit 1 when they are stale or two packages export one name

Every distribution under packages/ (but ephemeral-complete itself) is a dependency pinned to the
lockstep version, and every name in its leaf package's ``__all__`` is re-exported from
``ephemeral.complete``. ``__all__`` is read from the source, so nothing is imported. The README's
table lists every distribution present (its pyproject description, status available) and the ones
still planned.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
COMPLETE = PACKAGES / "ephemeral-complete"
INIT = COMPLETE / "src/ephemeral/complete/__init__.py"
PYPROJECT = COMPLETE / "pyproject.toml"
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- packages:start -->", "<!-- packages:end -->"

# Distributions of the family not built yet: name -> (import path, what it will be).
PLANNED: dict[str, tuple[str, str]] = {
    "ephemeral-attributes": ("ephemeral.attributes", "`@ephemeral_job` methods that react to signals"),
    "ephemeral-logging": ("ephemeral.logging", "stdlib logging and structlog to signals and back"),
    "ephemeral-atoms-scheduledtasks": ("ephemeral.atoms.scheduledtasks", "cron and JSON schedules, durable tasks"),
    **{
        f"ephemeral-patterns-{leaf}": (f"ephemeral.patterns.{leaf}", what)
        for leaf, what in {
            "backpressure": "defer work while a backpressure signal is live",
            "controlledfanout": "global and per-key limits without head-of-line blocking",
            "adaptiverate": "slow down on rate-limit hints, then recover",
            "dynamicconcurrency": "scale concurrency up and down on signals",
            "keyedpriorityfanout": "per-key order with a priority lane",
            "reactivefanout": "a two-stage pipeline whose first stage throttles on the second's backlog",
            "anomalydetector": "too many matching signals in a window",
            "signalcoordinatedreads": "readers that wait for updates without a lock",
            "signalinghttp": "httpx downloads with progress signals",
            "signallogwatcher": "call back on matching signals",
            "telemetry": "signals to OpenTelemetry",
            "longwindowdemo": "a long window with bounded memory",
            "signalreactionshowcase": "the ways to react to a signal, side by side",
        }.items()
    },
    "ephemeral-signals-postgres": ("ephemeral.signals.postgres", "one signal window across processes, on PostgreSQL"),
}


def leaf_module(package: Path) -> tuple[str, Path]:
    """The dotted name and ``__init__.py`` of a distribution's leaf package (the one holding py.typed)."""
    marks = sorted((package / "src").glob("ephemeral/**/py.typed"))
    if len(marks) != 1:
        raise SystemExit(f"{package.name}: expected one leaf package with py.typed, found {len(marks)}")
    leaf = marks[0].parent
    return ".".join(leaf.relative_to(package / "src").parts), leaf / "__init__.py"


def exported_names(init: Path) -> list[str]:
    """The names in a module's literal ``__all__``."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
            return sorted(value, key=isort_key)
    raise SystemExit(f"{init}: no literal __all__")


def render_table() -> str:
    """The README's package table: every distribution present, then the planned ones."""
    rows = []
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml"), key=lambda p: table_order(p.parent.name)):
        project = tomllib.loads(pyproject.read_text())["project"]
        module, _ = leaf_module(pyproject.parent)
        rows.append((project["name"], module, project["description"], "available"))
    present = {row[0] for row in rows}
    rows += [(name, module, what, "planned") for name, (module, what) in PLANNED.items() if name not in present]
    lines = ["| distribution | import path | what it is | status |", "|---|---|---|---|"]
    lines += [f"| {name} | `{module}` | {what} | {status} |" for name, module, what, status in rows]
    return "\n".join(lines)


def table_order(name: str) -> tuple[int, str]:
    """Core first, the bundle last, the groups in between."""
    groups = ["ephemeral-core", "ephemeral-attributes", "ephemeral-logging", "ephemeral-sqlite", "ephemeral-atoms"]
    groups += ["ephemeral-patterns", "ephemeral-signals", "ephemeral-complete"]
    return next(i for i, g in enumerate([*groups, ""]) if name.startswith(g)), name


def rendered_readme() -> str:
    text = README.read_text()
    start = text.index(TABLE_START) + len(TABLE_START)
    end = text.index(TABLE_END)
    return text[:start] + "\n" + render_table() + "\n" + text[end:]


def members() -> list[tuple[str, str, list[str]]]:
    """(distribution, module, names) for every package but ephemeral-complete, by name."""
    found = []
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        package = pyproject.parent
        if package == COMPLETE:
            continue
        distribution = tomllib.loads(pyproject.read_text())["project"]["name"]
        module, init = leaf_module(package)
        found.append((distribution, module, exported_names(init)))
    return found


def collisions(found: list[tuple[str, str, list[str]]]) -> dict[str, list[str]]:
    """Names exported by more than one package, with the packages."""
    owners: dict[str, list[str]] = {}
    for distribution, _, names in found:
        for name in names:
            owners.setdefault(name, []).append(distribution)
    return {name: owner for name, owner in owners.items() if len(owner) > 1}


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def render_init(found: list[tuple[str, str, list[str]]]) -> str:
    lines = [
        '"""Every ephemeral distribution in one import: each public name, flat.',
        "",
        "Generated by scripts/gen_complete.py from the packages present; do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    for _, module, names in found:
        lines.append(f"from {module} import (")
        lines.extend(f"    {name} as {name}," for name in names)
        lines.append(")")
    everything = sorted((name for _, _, names in found for name in names), key=isort_key)
    lines += ["", "__all__ = ("]
    lines.extend(f'    "{name}",' for name in everything)
    lines += [")", ""]
    return "\n".join(lines)


def render_dependencies(found: list[tuple[str, str, list[str]]], version: str) -> str:
    body = "".join(f'  "{distribution}=={version}",\n' for distribution, _, _ in found)
    return f"dependencies = [\n{body}]"


def rendered_pyproject(found: list[tuple[str, str, list[str]]]) -> str:
    text = PYPROJECT.read_text()
    version = tomllib.loads(text)["project"]["version"]
    start = text.index("dependencies = [")
    end = text.index("]", start) + 1
    return text[:start] + render_dependencies(found, version) + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the generated files are stale")
    args = parser.parse_args(argv)
    found = members()
    clashes = collisions(found)
    if clashes:
        for name, owners in sorted(clashes.items()):
            print(f"{name} is exported by {', '.join(owners)}", file=sys.stderr)
        return 1
    expected = {INIT: render_init(found), PYPROJECT: rendered_pyproject(found), README: rendered_readme()}
    stale = [path for path, text in expected.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python scripts/gen_complete.py", file=sys.stderr)
        if not stale:
            names = sum(len(names) for _, _, names in found)
            print(f"ephemeral-complete is up to date: {len(found)} packages, {names} names")
        return 1 if stale else 0
    for path in stale:
        path.write_text(expected[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
