"""The ``signals`` table: its schema, and the statements a window runs on the database.

Timestamps are REAL Unix epoch seconds (UTC), so every comparison on them is numeric: the original stored
ISO-8601 text and compared it as strings, which is only right while every offset is the same.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ("LOAD_SQL", "Row", "StoredRow", "create_schema", "insert_rows")

#: A signal as written: (operation id, name, key, epoch seconds).
Row = tuple[int, str, "str | None", float]
#: A signal as read back: (row id, operation id, name, key, epoch seconds).
StoredRow = tuple[int, int, str, "str | None", float]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS signals (
        id INTEGER PRIMARY KEY,
        operation_id INTEGER NOT NULL,
        signal TEXT NOT NULL,
        "key" TEXT,
        "timestamp" REAL NOT NULL,
        created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
    )""",
    'CREATE INDEX IF NOT EXISTS idx_signals_timestamp ON signals("timestamp")',
    "CREATE INDEX IF NOT EXISTS idx_signals_signal ON signals(signal)",
)

_INSERT = 'INSERT INTO signals (operation_id, signal, "key", "timestamp") VALUES (?, ?, ?, ?)'

#: The newest rows stored before the window opened (``id <= ?``) and not older than a cutoff, newest first.
LOAD_SQL = (
    'SELECT id, operation_id, signal, "key", "timestamp" FROM signals '
    'WHERE id <= ? AND "timestamp" >= ? ORDER BY id DESC LIMIT ?'
)


def _scalar(connection: sqlite3.Connection, sql: str) -> Any:
    cursor = connection.execute(sql)
    try:
        return cursor.fetchone()[0]
    finally:
        cursor.close()


def create_schema(connection: sqlite3.Connection) -> int:
    """Create the table and its indexes if missing (run inside a transaction).

    Returns:
        The highest row id stored so far (0 for none): the rows up to it come from earlier runs.
    """
    for statement in _SCHEMA:
        connection.execute(statement).close()
    return int(_scalar(connection, "SELECT COALESCE(MAX(id), 0) FROM signals"))


def insert_rows(rows: list[Row], connection: sqlite3.Connection) -> int:
    """Insert ``rows`` in order with one ``executemany`` (run inside a transaction).

    Returns:
        The row id of the last row inserted.
    """
    connection.executemany(_INSERT, rows).close()
    return int(_scalar(connection, "SELECT last_insert_rowid()"))
