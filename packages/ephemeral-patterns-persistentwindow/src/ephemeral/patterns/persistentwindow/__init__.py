"""A signal window kept in memory and written to SQLite in the background, restored on startup."""

from __future__ import annotations

from ._window import PersistentSignalWindow as PersistentSignalWindow, WindowStats as WindowStats

__version__ = "0.1.0"

__all__ = ("PersistentSignalWindow", "WindowStats")
