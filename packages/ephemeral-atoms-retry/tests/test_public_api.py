"""The public surface of ephemeral.atoms.retry."""

from __future__ import annotations

import ephemeral.atoms.retry


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.retry.__all__ == ("ATTEMPT_STATE", "RetryAtom")
    assert all(hasattr(ephemeral.atoms.retry, name) for name in ephemeral.atoms.retry.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules and the `annotations` future aside) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.atoms.retry).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(ephemeral.atoms.retry.__all__)
