"""Every README of the repository runs as written and prints what it shows.

Each package's own tests also run its README in virtual time; this runs them all once more as a reader
would, in real time and in a fresh directory, with every distribution installed, together with the root
README and the getting-started page of the documentation.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ephemeral.core.testing import python_blocks, run_readme_examples

ROOT = Path(__file__).resolve().parents[3]
READMES = [
    path
    for path in [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md")), *sorted(ROOT.glob("packages/*/README.md"))]
    if python_blocks(path)
]
POSTGRES = {"ephemeral-atoms-data-postgres", "ephemeral-atoms-scheduledtasks", "ephemeral-signals-postgres"}


def needs_postgres(readme: Path) -> bool:
    return readme.parent.name in POSTGRES and "postgresql://" in readme.read_text()


def postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(
            os.environ.get("EPHEMERAL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError:
        return False
    return True


def test_the_readmes_are_found() -> None:
    """The root README, the getting-started page and the package READMEs all have examples."""
    names = {path.relative_to(ROOT).as_posix() for path in READMES}
    assert {"README.md", "docs/getting-started.md", "packages/ephemeral-core/README.md"} <= names
    assert len(names) >= 30


@pytest.mark.parametrize("readme", READMES, ids=[p.relative_to(ROOT).as_posix() for p in READMES])
def test_readme_examples_run_and_print_what_they_promise(readme: Path, tmp_path: Path) -> None:
    """Every ```python block runs in order; a block that prints (or shows output) printed something."""
    if needs_postgres(readme) and not postgres_reachable():
        if os.environ.get("EPHEMERAL_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required (EPHEMERAL_REQUIRE_POSTGRES=1) but unreachable")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is unreachable")
    run_readme_examples(readme, cwd=tmp_path)
