"""ephemeral.complete re-exports every package's public names, and its generated files are current."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import ephemeral.complete

ROOT = Path(__file__).resolve().parents[3]


def test_generated_files_are_current_and_names_unique() -> None:
    """scripts/gen_complete.py --check passes: dependencies and re-exports match the packages present."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_complete.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_dependency_is_reexported_as_the_same_object() -> None:
    """Each bundled package's __all__ is importable from ephemeral.complete, as the very same objects."""
    requirements = metadata.requires("ephemeral-complete") or []
    distributions = [requirement.split("==")[0] for requirement in requirements]
    assert "ephemeral-core" in distributions
    for distribution in distributions:
        leaf = next(
            str(file.parent).replace("/", ".") for file in metadata.files(distribution) or [] if file.name == "py.typed"
        )
        module = importlib.import_module(leaf)
        for name in module.__all__:
            assert getattr(ephemeral.complete, name) is getattr(module, name), f"{leaf}.{name}"


def test_all_names_are_unique() -> None:
    """ephemeral.complete.__all__ lists each name once."""
    names = list(ephemeral.complete.__all__)
    assert len(names) == len(set(names))


def test_the_demo_tells_its_story_and_accounts_for_every_item() -> None:
    """examples/demo.py (plain output) shows the reactions to an outage and ends with every item accounted for."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples/demo.py"), "--plain"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    reactions = ("log.error.payments.chargefailed", "circuit.opened", "backpressure.payments", "incident.created")
    for reaction in (*reactions, "circuit.closed", "incident.resolved", "incidents still open: 0"):
        assert reaction in result.stdout
    assert "retracted backpressure.payments" in result.stdout
    assert result.stdout.rstrip().endswith("all accounted for")
