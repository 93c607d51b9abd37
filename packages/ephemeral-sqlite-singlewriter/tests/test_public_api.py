"""The public surface of ephemeral.sqlite.singlewriter."""

from __future__ import annotations

import ephemeral.sqlite.singlewriter


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.sqlite.singlewriter.__all__ == (
        "SqlParams",
        "SqliteConnection",
        "SqliteRepository",
        "SqliteSingleWriter",
        "SqliteSingleWriterOptions",
        "SqliteSingleWriterStats",
        "SqliteWriteRecord",
    )
    assert all(hasattr(ephemeral.sqlite.singlewriter, name) for name in ephemeral.sqlite.singlewriter.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules and the `annotations` future aside) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.sqlite.singlewriter).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(ephemeral.sqlite.singlewriter.__all__)


def test_namespace_packages_have_no_init() -> None:
    """ephemeral and ephemeral.sqlite are PEP 420 namespaces: this distribution ships no __init__.py for them."""
    import ephemeral
    import ephemeral.sqlite

    assert getattr(ephemeral, "__file__", None) is None
    assert getattr(ephemeral.sqlite, "__file__", None) is None
