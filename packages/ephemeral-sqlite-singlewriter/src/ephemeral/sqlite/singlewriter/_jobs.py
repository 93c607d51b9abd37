"""The statements a writer runs in its worker thread, one call per write: single, batch, many, transaction."""

from __future__ import annotations

import inspect
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

__all__ = (
    "ASYNC_WORK",
    "BATCH",
    "MANY",
    "SCRIPT",
    "TRANSACTION",
    "WRITE",
    "Bound",
    "check_sql",
    "script",
    "timed",
    "transaction",
    "write_batch",
    "write_many",
    "write_one",
)

T = TypeVar("T")
#: Parameters once checked by ``bind_params``.
Bound: TypeAlias = Sequence[Any] | dict[str, Any]

#: The kinds of write, as they appear in signal names and in ``SqliteWriteRecord.kind``.
WRITE, BATCH, MANY, TRANSACTION, SCRIPT = "write", "write.batch", "write.many", "write.transaction", "write.script"

ASYNC_WORK = "work must be a plain function of the connection, not an async one (it runs in a thread)"


def timed(
    job: Callable[[sqlite3.Connection], tuple[T, int]], connection: sqlite3.Connection
) -> tuple[T | None, int, float, Exception | None]:
    """Run ``job`` and time it; an exception is returned, to be raised in the caller's task."""
    start = time.perf_counter()
    try:
        result, rows = job(connection)
    except Exception as error:
        return None, 0, time.perf_counter() - start, error
    return result, rows, time.perf_counter() - start, None


def _rollback_open(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the original error matters more; SQLite has already rolled back if it cannot


def _in_transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
        if connection.in_transaction:  # ``work`` may have committed itself
            connection.execute("COMMIT")
    except BaseException:
        _rollback_open(connection)
        raise
    return result


def _changed(cursor: sqlite3.Cursor) -> int:
    try:
        if cursor.description is not None:
            # A statement that returns rows (``... RETURNING``, or a SELECT) has only taken its first
            # step: ``rowcount`` is counted as its rows are stepped through, so step through them all
            # (one at a time, nothing kept). SQLite made every change at the first step.
            for _ in cursor:
                pass
        rows = cursor.rowcount
    finally:
        cursor.close()
    return rows if rows > 0 else 0  # -1 for statements that change no rows (DDL, SELECT)


def write_one(sql: str, params: Bound, connection: sqlite3.Connection) -> tuple[int, int]:
    try:
        rows = _changed(connection.execute(sql, params))
    except BaseException:
        _rollback_open(connection)
        raise
    if connection.in_transaction:
        connection.execute("ROLLBACK")
        raise sqlite3.ProgrammingError(
            "the statement left a transaction open and was rolled back; use execute_in_transaction or write_batch"
        )
    return rows, rows


def write_batch(items: list[tuple[str, Bound]], transactional: bool, connection: sqlite3.Connection) -> tuple[int, int]:
    if transactional:
        rows = _in_transaction(connection, lambda c: sum(_changed(c.execute(sql, p)) for sql, p in items))
        return rows, rows
    total = 0
    for sql, params in items:
        total += write_one(sql, params, connection)[0]  # each item commits on its own
    return total, total


def write_many(sql: str, rows_params: list[Bound], connection: sqlite3.Connection) -> tuple[int, int]:
    rows = _in_transaction(connection, lambda c: _changed(c.executemany(sql, rows_params)))
    return rows, rows


def transaction(work: Callable[[sqlite3.Connection], T], connection: sqlite3.Connection) -> tuple[T, int]:
    def checked(connection: sqlite3.Connection) -> T:
        result = work(connection)
        if inspect.isawaitable(result):  # raised before COMMIT, so the transaction rolls back
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(ASYNC_WORK)
        return result

    before = connection.total_changes
    result = _in_transaction(connection, checked)
    return result, connection.total_changes - before


def script(sql: str, transactional: bool, connection: sqlite3.Connection) -> tuple[int, int]:
    # The transaction is part of the script: executescript commits a transaction opened before it.
    text = f"BEGIN IMMEDIATE;\n{sql}\n;\nCOMMIT;" if transactional else sql
    before = connection.total_changes
    try:
        connection.executescript(text)
    except BaseException:
        _rollback_open(connection)
        raise
    if connection.in_transaction:
        connection.execute("ROLLBACK")
        raise sqlite3.ProgrammingError("the script left a transaction open and was rolled back; end it with COMMIT")
    rows = connection.total_changes - before
    return rows, rows


def check_sql(sql: object, name: str = "sql") -> None:
    if not isinstance(sql, str):
        raise TypeError(f"{name} must be a str, got {sql!r}")
    if not sql.strip():
        raise ValueError(f"{name} must not be empty")
