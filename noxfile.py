"""CI sessions for the ephemeral monorepo: tests, lint, typecheck, build, demo, bench.

`nox -s tests` runs every package's tests on Python 3.10 to 3.13, each package installed on its own
(non-editable) with only the sibling distributions it declares; `nox -s lint typecheck build` runs
the checks. A new directory under packages/ is picked up without editing this file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nox.needs_version = ">=2026.8.10"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.download_python = "never"  # only installed interpreters; nothing can be downloaded
nox.options.error_on_missing_interpreters = "CI" in os.environ

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


# packages/<distribution>/pyproject.toml -> {distribution: its pyproject table}.
PYPROJECTS: dict[str, dict[str, Any]] = {
    path.parent.name: nox.project.load_toml(path) for path in sorted(ROOT.glob("packages/*/pyproject.toml"))
}
PACKAGES = list(PYPROJECTS)
IDS = [name.removeprefix("ephemeral-").replace("-", "_") for name in PACKAGES]


def _add_pyenv_interpreters() -> None:
    """Let nox find every pyenv-installed CPython, not only those pyenv has activated.

    pyenv shims run only the active versions, so python3.12 on PATH fails when pyenv's global
    version is 3.11. The installed versions' bin directories go at the end of PATH, after anything
    the user put first.
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    bins = [str(d / "bin") for d in sorted(versions.glob("3.*")) if (d / "bin").is_dir()]
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *bins])


_add_pyenv_interpreters()


def _with_siblings(package: str) -> list[str]:
    """Local paths of `package` and, transitively, of every ephemeral sibling it declares."""
    todo = [package]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dependency in PYPROJECTS[name]["project"].get("dependencies", []):
            sibling = canonicalize_name(Requirement(dependency).name)
            if sibling in PYPROJECTS:
                todo.append(sibling)
    return [f"packages/{name}" for name in sorted(seen)]


def _test_group(package: str) -> list[str]:
    """The package's PEP 735 `test` dependency group; sibling distributions in it come from their folders."""
    group: list[str] = []
    for requirement in nox.project.dependency_groups(PYPROJECTS[package], "test"):
        name = canonicalize_name(Requirement(requirement).name)
        group.extend(_with_siblings(name) if name in PYPROJECTS else [requirement])
    return group


def _all_packages() -> list[str]:
    """Every local package path plus every package's test group (one resolver call)."""
    groups = {req for package in PACKAGES for req in _test_group(package)}
    return [*(f"packages/{p}" for p in PACKAGES), *sorted(groups)]


@nox.session(python=PYTHONS, allow_parallel=True)  # nox -j auto -s tests
@nox.parametrize("package", PACKAGES, ids=IDS)
def tests(session: nox.Session, package: str) -> None:
    """Test one package, installed non-editable with only its declared siblings."""
    position = PYTHONS.index(str(session.python)) * len(PACKAGES) + PACKAGES.index(package) + 1
    session.log(f"tests {position}/{len(PACKAGES) * len(PYTHONS)}: {package} on Python {session.python}")
    session.install(*_with_siblings(package), *_test_group(package))
    # From the repo root, so the root pyproject.toml (pytest config) and conftest.py apply. pytest
    # exit code 5 (no tests collected) fails the session like any other non-zero exit.
    session.run("python", "-m", "pytest", f"packages/{package}/tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check lint and formatting with ruff."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "scripts/check_private_imports.py")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on each package's src and tests, and on the root scripts."""
    session.install("mypy", "nox", *_all_packages())
    # Every src dir is on MYPYPATH so the whole `ephemeral` namespace comes from the tree, and the
    # package dir too so its tests/ resolve as `tests.*`. Test dirs share basenames across
    # packages, hence one run per package.
    src_dirs = [f"packages/{p}/src" for p in PACKAGES]
    failed = []
    for package in PACKAGES:
        path = f"packages/{package}"
        env = {"MYPYPATH": os.pathsep.join([*src_dirs, path])}
        targets = [d for d in (f"{path}/src", f"{path}/tests") if (ROOT / d).is_dir()]
        try:
            session.run("mypy", *targets, env=env)
        except nox.command.CommandFailed:
            failed.append(package)  # go on, so one run reports every package
    session.run("mypy", "noxfile.py", "conftest.py", "scripts")
    if failed:
        session.error(f"mypy found errors in {', '.join(failed)}")


@nox.session
def build(session: nox.Session) -> None:
    """Build every sdist and wheel into dist/ and check the wheels' namespace layout."""
    session.install("uv")
    shutil.rmtree(ROOT / "dist", ignore_errors=True)
    for package in PACKAGES:
        session.run("uv", "build", "--quiet", "--out-dir", "dist", f"packages/{package}")
    session.run("python", "scripts/check_wheels.py", "dist")
    session.install("twine")
    session.run("twine", "check", "--strict", *(str(p) for p in sorted((ROOT / "dist").glob("ephemeral*"))))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with mkdocs --strict (any warning fails)."""
    session.install(*(f"packages/{p}" for p in PACKAGES), "-r", "docs/requirements.txt")
    quiet = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}  # a banner about a future mkdocs
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env=quiet)


@nox.session
def wheelhouse(session: nox.Session) -> None:
    """Build every distribution's wheel into wheelhouse/, then install one atom alone from it to prove it works.

    Afterwards any subset installs from the folder: pip install --find-links wheelhouse ephemeral-atoms-batching
    """
    session.install("uv")
    house = ROOT / "wheelhouse"
    shutil.rmtree(house, ignore_errors=True)
    for package in PACKAGES:
        session.run("uv", "build", "--quiet", "--wheel", "--out-dir", str(house), f"packages/{package}")
    session.install("--find-links", str(house), "ephemeral-atoms-batching")
    session.run("python", "-c", "import ephemeral.atoms.batching as b; print('installed alone:', b.__name__)")
    session.log(f"{len(PACKAGES)} wheels in {house}: pip install --find-links {house} <distribution>")


@nox.session
def demo(session: nox.Session) -> None:
    """Run examples/demo.py against every package, installed non-editable."""
    session.install(*(f"packages/{p}" for p in PACKAGES), "rich")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run benchmarks/run.py: ephemeral-core against aiometer, cachetools, ... on asyncio and trio."""
    session.install("packages/ephemeral-core", "aiometer", "trio", "cachetools", "async-lru")
    if (ROOT / "benchmarks/requirements.txt").is_file():
        session.install("-r", "benchmarks/requirements.txt")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(default=False)
def bench_storage(session: nox.Session) -> None:
    """Saves per second into SQLite and PostgreSQL: the storage atoms against aiosqlite and psycopg."""
    session.install(
        *_with_siblings("ephemeral-atoms-data-sqlite"),
        *_with_siblings("ephemeral-atoms-data-postgres"),
        "trio",
        "aiosqlite",
    )
    session.run("python", "benchmarks/storage_sqlite.py", *session.posargs)
    session.run("python", "benchmarks/storage_postgres.py", *session.posargs)
