"""Start a new ephemeral distribution with the layout, README sections and tests every package has.

    python scripts/new_package.py ephemeral-patterns-ratelimit "Describe what it is for, in one line."

creates ``packages/ephemeral-patterns-ratelimit/`` with:

- ``pyproject.toml``: hatchling, the lockstep version (see ``scripts/bump_version.py``), an exact pin
  of ``ephemeral-core``, the PEP 735 ``test`` dependency group;
- ``README.md``: a paragraph on what it is for, one runnable example that prints what it shows,
  "Signals" (emitted and listened to) and "Differences from the original";
- ``src/ephemeral/patterns/ratelimit/``: ``__init__.py`` with ``__all__``, one private module, ``py.typed``,
  and no ``__init__.py`` above the leaf (PEP 420 namespaces);
- ``tests/``: the README example run on asyncio and trio in virtual time, and the pinned ``__all__``.

The generated package passes ruff, mypy --strict and its tests as it is; replace the placeholder class
and fill in the README. Then ``uv pip install -e packages/<name>``, ``python scripts/gen_complete.py``,
and a ``changelog.d/<name>.md`` entry. ``--root`` writes under another checkout (the tests use it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Group names that form a namespace level: ephemeral-atoms-x -> ephemeral.atoms.x.
GROUPS = ("atoms", "patterns", "sqlite", "signals")
_NAME = re.compile(r"^ephemeral(?:-[a-z][a-z0-9]*)+$")


def import_path(distribution: str) -> str:
    """The import path of a distribution.

    ``ephemeral-atoms-data-file`` -> ``ephemeral.atoms.data_file``; ``ephemeral-logging`` -> ``ephemeral.logging``.
    """
    parts = distribution.split("-")[1:]
    if parts[0] in GROUPS and len(parts) > 1:
        return f"ephemeral.{parts[0]}.{'_'.join(parts[1:])}"
    return f"ephemeral.{'_'.join(parts)}"


def class_name(leaf: str) -> str:
    """``data_file`` -> ``DataFile``."""
    return "".join(part.capitalize() for part in leaf.split("_"))


def version(root: Path) -> str:
    """The lockstep version: the root pyproject's."""
    match = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit("the root pyproject.toml has no version")
    return match.group(1)


PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "{distribution}"
version = "{version}"
description = "{description}"
readme = "README.md"
license = "Unlicense"
requires-python = ">=3.10"
authors = [{{ name = "ephemeral developers" }}]
classifiers = [
  "Programming Language :: Python :: 3.10",
  "Programming Language :: Python :: 3.11",
  "Programming Language :: Python :: 3.12",
  "Programming Language :: Python :: 3.13",
  "Framework :: AnyIO",
  "Framework :: Trio",
  "Typing :: Typed",
]
dependencies = ["ephemeral-core=={version}"]

[dependency-groups]
test = [
  "pytest>=9",
  "anyio[trio]>=4.11",
  "trio>=0.27",
  "looptime>=0.7",  # 0.8+ needs Python 3.11; 0.7 has the same new_event_loop
]

[tool.hatch.build.targets.wheel]
packages = ["src/ephemeral"]

[tool.hatch.build.targets.sdist]
include = ["/src", "/tests", "/README.md"]
"""

README = """\
# {distribution}

{description} One paragraph: what it is for, what it does with the signal window, what it bounds and how
it compares with the Python library people use for this today. (Written by `scripts/new_package.py`:
replace this paragraph, the example and the sections below.)

```python
import anyio
from ephemeral.core import SignalSink
from {module} import {cls}


async def main() -> None:
    sink = SignalSink()
    thing = {cls}(sink)
    thing.touch("order-1")
    print(sink.count("{signal_prefix}.touched"))  # 1


anyio.run(main)
```

## Install

The distributions are not on PyPI yet. From a clone of the repository, build every wheel once into one
folder, then install this one (pip brings the sibling distributions and third-party libraries it needs):

```
python -m nox -s wheelhouse
python -m pip install --find-links wheelhouse {distribution}
```

## Signals
Emitted: `{signal_prefix}.touched` (key: the key touched). Listened to: none.

## Differences from the original
What differs from the .NET original, and why.
"""

INIT = """\
\"\"\"{description}\"\"\"

from __future__ import annotations

from ._{leaf} import {cls} as {cls}

__all__ = ("{cls}",)
"""

MODULE = """\
\"\"\"{cls}: replace this placeholder with the package's code.\"\"\"

from __future__ import annotations

from ephemeral.core import SignalSink

__all__ = ("{cls}",)


class {cls}:
    \"\"\"A placeholder: emits ``{signal_prefix}.touched`` for each key touched.

    Args:
        sink: The sink to emit on.

    Raises:
        TypeError: ``sink`` is not a ``SignalSink``.
    \"\"\"

    def __init__(self, sink: SignalSink) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {{sink!r}}")
        self._sink = sink

    def touch(self, key: str) -> None:
        \"\"\"Emit ``{signal_prefix}.touched`` with ``key``.\"\"\"
        self._sink.emit("{signal_prefix}.touched", key=key)
"""

TESTS = """\
\"\"\"{cls}: behaviour, bad input, the public names and the README example.\"\"\"

from __future__ import annotations

from pathlib import Path

import pytest

import {module}
from ephemeral.core import SignalSink
from ephemeral.core.testing import arun_readme_examples
from {module} import {cls}


def test_touch_emits_one_signal_per_key() -> None:
    sink = SignalSink()
    {cls}(sink).touch("k")
    assert [(event.signal, event.key) for event in sink.sense()] == [("{signal_prefix}.touched", "k")]


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(TypeError, match="sink"):
        {cls}(None)  # type: ignore[arg-type]


def test_public_names_are_pinned() -> None:
    assert {module}.__all__ == ("{cls}",)


async def test_readme_example_runs() -> None:
    output = await arun_readme_examples(Path(__file__).parent.parent / "README.md")
    assert output.splitlines() == ["1"]
"""


def create(distribution: str, description: str, root: Path = ROOT) -> Path:
    """Write the new package under ``root/packages`` and return its directory.

    Raises:
        ValueError: ``distribution`` is not ``ephemeral-...`` in lowercase, or the description is empty.
        FileExistsError: The package exists already.
    """
    if not _NAME.match(distribution):
        raise ValueError(f"the name must look like ephemeral-atoms-foo or ephemeral-patterns-foo, got {distribution!r}")
    description = " ".join(description.split())
    if not description:
        raise ValueError("give a one-line description")
    if not description.endswith("."):
        description += "."
    module = import_path(distribution)
    leaf = module.rsplit(".", 1)[1]
    fields = {
        "distribution": distribution,
        "description": description.replace('"', "'"),
        "version": version(root),
        "module": module,
        "leaf": leaf,
        "cls": class_name(leaf),
        "signal_prefix": leaf.replace("_", "."),
    }
    package = root / "packages" / distribution
    if package.exists():
        raise FileExistsError(f"{package} exists already")
    source = package / "src" / Path(*module.split("."))
    files = {
        package / "pyproject.toml": PYPROJECT,
        package / "README.md": README,
        source / "__init__.py": INIT,
        source / f"_{leaf}.py": MODULE,
        source / "py.typed": "",
        package / "tests" / f"test_{leaf}.py": TESTS,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields), encoding="utf-8")
    return package


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("distribution", help="the distribution name, e.g. ephemeral-patterns-ratelimit")
    parser.add_argument("description", help="one line: what it is for")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to write in (default: this one)")
    args = parser.parse_args(argv)
    try:
        package = create(args.distribution, args.description, args.root)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    relative = package.relative_to(args.root.resolve()) if package.is_relative_to(args.root.resolve()) else package
    print(f"created {relative}; next:")
    print(f"  uv pip install -e {relative}")
    print("  python scripts/gen_complete.py")
    print(f"  python -m pytest -q {relative}/tests")
    print(f"  add changelog.d/{args.distribution}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
