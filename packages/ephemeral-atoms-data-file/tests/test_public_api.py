"""The public surface of ephemeral.atoms.data_file."""

from __future__ import annotations

import ephemeral.atoms.data_file


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.data_file.__all__ == ("FileDataStorageAtom",)
    assert all(hasattr(ephemeral.atoms.data_file, name) for name in ephemeral.atoms.data_file.__all__)
