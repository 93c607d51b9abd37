"""scripts/new_package.py starts a distribution with the layout, README sections and tests every package has."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def new_package(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/new_package.py"), *args, "--root", str(root)],
        capture_output=True,
        text=True,
    )


def test_a_new_package_has_everything_a_package_needs(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = new_package(tmp_path, "ephemeral-atoms-rate-limit", "Limits the rate of work")
    assert result.returncode == 0, result.stderr
    package = tmp_path / "packages/ephemeral-atoms-rate-limit"
    source = package / "src/ephemeral/atoms/rate_limit"
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "src/ephemeral/atoms/rate_limit/__init__.py",
        "src/ephemeral/atoms/rate_limit/_rate_limit.py",
        "src/ephemeral/atoms/rate_limit/py.typed",
        "tests/test_rate_limit.py",
    ]
    assert not (package / "src/ephemeral/__init__.py").exists()  # PEP 420 namespaces above the leaf
    root_version = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bump_version.py")], capture_output=True, text=True, check=True
    ).stdout.strip()
    pyproject = (package / "pyproject.toml").read_text().splitlines()
    for line in (
        'name = "ephemeral-atoms-rate-limit"',
        f'version = "{root_version}"',
        'description = "Limits the rate of work."',
        f'dependencies = ["ephemeral-core=={root_version}"]',
    ):
        assert line in pyproject
    readme = (package / "README.md").read_text()
    for section in ("```python", "## Signals", "Emitted:", "Listened to:", "## Differences from the original"):
        assert section in readme
    for path in package.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert '__all__ = ("RateLimit",)' in (source / "__init__.py").read_text()
    assert "arun_readme_examples" in (package / "tests/test_rate_limit.py").read_text()


def test_names_map_to_import_paths_and_bad_names_are_refused(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert new_package(tmp_path, "ephemeral-tracing", "Traces").returncode == 0
    assert (tmp_path / "packages/ephemeral-tracing/src/ephemeral/tracing/_tracing.py").exists()
    again = new_package(tmp_path, "ephemeral-tracing", "Traces")
    assert again.returncode == 2 and "exists already" in again.stderr
    for bad in ("atoms-foo", "ephemeral-Atoms-Foo", "ephemeral-"):
        refused = new_package(tmp_path, bad, "x")
        assert refused.returncode == 2 and "the name must look like" in refused.stderr
    assert new_package(tmp_path, "ephemeral-atoms-x", "  ").returncode == 2
