"""The public surface of ephemeral.patterns.persistentwindow."""

from __future__ import annotations

from ephemeral.patterns import persistentwindow


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert persistentwindow.__all__ == ("PersistentSignalWindow", "WindowStats")
    assert all(hasattr(persistentwindow, name) for name in persistentwindow.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules and the `annotations` future aside) is in __all__."""
    public = {
        name
        for name, value in vars(persistentwindow).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(persistentwindow.__all__)


def test_no_namespace_init_files() -> None:
    """ephemeral and ephemeral.patterns stay PEP 420 namespaces (no __init__.py shipped here)."""
    import ephemeral
    import ephemeral.patterns

    assert getattr(ephemeral, "__file__", None) is None
    assert getattr(ephemeral.patterns, "__file__", None) is None
