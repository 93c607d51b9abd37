"""The public surface of ephemeral.atoms.batching."""

from __future__ import annotations

import ephemeral.atoms.batching


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.batching.__all__ == ("BatchingAtom", "BatchingStats")
    assert all(hasattr(ephemeral.atoms.batching, name) for name in ephemeral.atoms.batching.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules and the `annotations` future aside) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.atoms.batching).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(ephemeral.atoms.batching.__all__)
