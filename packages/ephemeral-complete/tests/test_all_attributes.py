"""The public surface of every ephemeral package, walked in one place (as anyio's test_all_attributes).

ephemeral-complete installs every distribution, so this test sees them all: each public module (a
leaf package such as ``ephemeral.atoms.retry``, and core's ``lowlevel``, ``sql``, ``testing`` and
``di``) lists in ``__all__`` exactly the public names it has, each once and each importable; the
namespaces above the leaves stay PEP 420 namespaces; core's layers do not overlap; and no package
imports another package's private modules. A new package is checked without editing this file.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

import ephemeral

#: Modules whose ``__all__`` is pinned here (a change to it must be deliberate).
PINNED: dict[str, tuple[str, ...]] = {
    "ephemeral.atoms.batching": ("BatchingAtom", "BatchingStats"),
    "ephemeral.atoms.data": (
        "DataSerializer",
        "DataStorageAtomBase",
        "DataStorageConfig",
        "DataStorageStats",
        "IDataStorageAtom",
        "JsonSerializer",
        "StorageFullError",
        "WriteItem",
    ),
    "ephemeral.atoms.data.testing": ("DictStorageAtom", "MakeStorageAtom", "check_storage_atom"),
    "ephemeral.atoms.data_file": ("FileDataStorageAtom",),
    "ephemeral.atoms.data_postgres": ("PostgresDataStorageAtom",),
    "ephemeral.atoms.data_sqlite": ("SqliteDataStorageAtom",),
    "ephemeral.atoms.echo": (
        "OperationEchoAtom",
        "OperationEchoCapture",
        "OperationEchoEntry",
        "OperationEchoMaker",
        "OperationEchoMakerOptions",
        "OperationFinalizer",
        "enable_operation_echoing",
    ),
    "ephemeral.atoms.retry": ("ATTEMPT_STATE", "RetryAtom"),
    "ephemeral.atoms.scheduledtasks": (
        "CronFormat",
        "DurableTask",
        "DurableTaskAtom",
        "InMemoryTaskStore",
        "PostgresTaskStore",
        "ScheduledTaskDefinition",
        "ScheduledTasksAtom",
        "ScheduledTasksOptions",
        "SqliteTaskStore",
        "StoredTask",
        "TaskStore",
    ),
    "ephemeral.atoms.slidingcache": ("SlidingCacheAtom", "SlidingCacheStats"),
    "ephemeral.patterns.persistentwindow": ("PersistentSignalWindow", "WindowStats"),
    "ephemeral.signals.postgres": ("BridgeStats", "PostgresSignalBridge"),
    "ephemeral.sqlite.singlewriter": (
        "SqlParams",
        "SqliteConnection",
        "SqliteCursor",
        "SqliteRepository",
        "SqliteSingleWriter",
        "SqliteSingleWriterOptions",
        "SqliteSingleWriterStats",
        "SqliteWriteRecord",
    ),
}

#: Modules whose implementation still lives in the package's ``__init__.py`` (so its imports look public);
#: only their ``__all__`` is checked until the code moves into a private module.
IMPLEMENTED_IN_INIT = {"ephemeral.atoms.data_file", "ephemeral.atoms.data_sqlite"}

#: Core's layers: application names, building blocks, SQL helpers, the test kit.
CORE_LAYERS = ("ephemeral.core", "ephemeral.core.lowlevel", "ephemeral.core.sql", "ephemeral.core.testing")


def _public_modules() -> list[str]:
    """Every ``ephemeral.*`` module with no private (``_``) part in its name, namespaces aside.

    Walked on the file system: ``pkgutil`` does not descend into PEP 420 namespace packages.
    """
    names = set()
    for root in ephemeral.__path__:
        for source in Path(root).rglob("*.py"):
            parts = ["ephemeral", *source.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            if not any(part.startswith("_") for part in parts):
                names.add(".".join(parts))
    return sorted(names)


MODULES = _public_modules()


def _public_attributes(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }


def test_every_distribution_is_walked() -> None:
    """The walk finds core's layers and a leaf of each group."""
    assert set(CORE_LAYERS) <= set(MODULES)
    for group in ("ephemeral.atoms.", "ephemeral.patterns.", "ephemeral.sqlite."):
        assert any(name.startswith(group) for name in MODULES), group


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    """``__all__`` is a tuple of distinct names, each importable; no public attribute is left out of it."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, tuple), f"{name}.__all__ must be a tuple"
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    assert [n for n in exported if not hasattr(module, n)] == [], f"{name}.__all__ names what it lacks"
    if name not in IMPLEMENTED_IN_INIT:
        assert _public_attributes(module) <= set(exported), f"{name} has public names missing from __all__"


@pytest.mark.parametrize("name", MODULES)
def test_exported_names_are_ephemerals_own(name: str) -> None:
    """Each exported class or function is defined in an ephemeral module (no third-party re-export)."""
    module = importlib.import_module(name)
    foreign = [
        n
        for n in module.__all__
        if isinstance(getattr(module, n), (type, types.FunctionType))
        and not isinstance(getattr(module, n), types.GenericAlias)  # a type alias (a class on Python 3.10)
        and not getattr(module, n).__module__.startswith("ephemeral.")
    ]
    assert foreign == []


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_all(name: str) -> None:
    """The pinned modules export exactly their pinned names, in order."""
    assert importlib.import_module(name).__all__ == PINNED[name]


def test_core_layers_do_not_overlap() -> None:
    """A name lives in one of core's layers only."""
    seen: dict[str, str] = {}
    for layer in CORE_LAYERS:
        for exported in importlib.import_module(layer).__all__:
            assert exported not in seen, f"{exported} is in {seen.get(exported)} and {layer}"
            seen[exported] = layer


def test_namespaces_above_the_leaves_ship_no_init() -> None:
    """``ephemeral`` and its groups stay PEP 420 namespaces, so distributions install side by side."""
    for namespace in ("ephemeral", "ephemeral.atoms", "ephemeral.patterns", "ephemeral.signals", "ephemeral.sqlite"):
        assert getattr(importlib.import_module(namespace), "__file__", None) is None, namespace


_PRIVATE_IMPORT = re.compile(r"^\s*(?:from|import)\s+(ephemeral(?:\.\w+)+)", re.M)


@pytest.mark.parametrize("name", [n for n in MODULES if n != "ephemeral.complete"])
def test_no_package_imports_another_packages_private_modules(name: str) -> None:
    """A package imports other packages only through their public modules."""
    module = importlib.import_module(name)
    if not hasattr(module, "__path__"):
        return  # a public module of core (lowlevel, sql, ...): its package is checked below
    own = name + "."
    offending = []
    for source in Path(next(iter(module.__path__))).rglob("*.py"):
        for imported in _PRIVATE_IMPORT.findall(source.read_text(encoding="utf-8")):
            private = any(part.startswith("_") for part in imported.split("."))
            if private and not imported.startswith(own):
                offending.append(f"{source.name}: {imported}")
    assert offending == []
