"""The public surface of ephemeral.atoms.data."""

from __future__ import annotations

import ephemeral.atoms.data


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.data.__all__ == (
        "DataSerializer",
        "DataStorageAtomBase",
        "DataStorageConfig",
        "DataStorageStats",
        "IDataStorageAtom",
        "JsonSerializer",
        "StorageFullError",
        "WriteItem",
    )
    assert all(hasattr(ephemeral.atoms.data, name) for name in ephemeral.atoms.data.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules aside) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.atoms.data).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(ephemeral.atoms.data.__all__)
