"""One version for every distribution: scripts/bump_version.py sets it everywhere and checks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = "scripts/bump_version.py"


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / SCRIPT), *args], capture_output=True, text=True)


def test_every_file_is_at_the_one_version() -> None:
    """``bump_version.py --check`` passes: pyprojects, sibling pins and __version__ agree with the root."""
    result = run(ROOT, "--check")
    assert result.returncode == 0, result.stderr


def test_a_bump_rewrites_versions_and_pins_and_nothing_else(tmp_path: Path) -> None:
    """On a copy of the version-carrying files: every one moves, formatting and other pins stay."""
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / SCRIPT, copy / SCRIPT)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for path in [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("packages/*/src/**/__init__.py")]:
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    old = run(copy).stdout.strip()
    retry = copy / "packages/ephemeral-atoms-retry/pyproject.toml"
    before = retry.read_text(encoding="utf-8")

    bumped = run(copy, "9.8.7rc1")
    assert bumped.returncode == 0, bumped.stderr
    assert run(copy).stdout.strip() == "9.8.7rc1"
    assert run(copy, "--check").returncode == 0
    after = retry.read_text(encoding="utf-8")
    assert 'version = "9.8.7rc1"' in after and '"ephemeral-core==9.8.7rc1"' in after
    assert after.replace("9.8.7rc1", old) == before  # only the versions changed
    assert '__version__ = "9.8.7rc1"' in (copy / "packages/ephemeral-core/src/ephemeral/core/__init__.py").read_text()

    retry.write_text(before, encoding="utf-8")  # one file left behind
    stale = run(copy, "--check")
    assert stale.returncode == 1 and "ephemeral-atoms-retry/pyproject.toml" in stale.stderr
    assert run(copy, "not-a-version").returncode == 2
