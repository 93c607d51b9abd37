"""The public surface of ephemeral.atoms.data_sqlite."""

from __future__ import annotations

import ephemeral.atoms.data_sqlite


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.data_sqlite.__all__ == ("SqliteDataStorageAtom",)
    assert all(hasattr(ephemeral.atoms.data_sqlite, name) for name in ephemeral.atoms.data_sqlite.__all__)
