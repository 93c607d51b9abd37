"""SQLite single writer: every write through one connection in FIFO order; concurrent, cached reads; signals."""

from __future__ import annotations

from ._connection import SqliteConnection as SqliteConnection, SqliteCursor as SqliteCursor, SqlParams as SqlParams
from ._options import SqliteSingleWriterOptions as SqliteSingleWriterOptions
from ._repository import SqliteRepository as SqliteRepository
from ._writer import (
    SqliteSingleWriter as SqliteSingleWriter,
    SqliteSingleWriterStats as SqliteSingleWriterStats,
    SqliteWriteRecord as SqliteWriteRecord,
)

__version__ = "0.1.0"

__all__ = (
    "SqlParams",
    "SqliteConnection",
    "SqliteCursor",
    "SqliteRepository",
    "SqliteSingleWriter",
    "SqliteSingleWriterOptions",
    "SqliteSingleWriterStats",
    "SqliteWriteRecord",
)
