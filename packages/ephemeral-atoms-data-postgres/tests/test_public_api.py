"""The public surface of ephemeral.atoms.data_postgres."""

from __future__ import annotations

import ephemeral.atoms.data_postgres


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.data_postgres.__all__ == ("PostgresDataStorageAtom",)
    assert all(hasattr(ephemeral.atoms.data_postgres, name) for name in ephemeral.atoms.data_postgres.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules aside) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.atoms.data_postgres).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(ephemeral.atoms.data_postgres.__all__)
