"""What a SqliteSingleWriter reports: a record of each finished write call, and its counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("SqliteSingleWriterStats", "SqliteWriteRecord")


@dataclass(frozen=True, slots=True)
class SqliteWriteRecord:
    """One finished write call, as kept by ``get_write_snapshot()``.

    Attributes:
        write_id: The call's number on this writer (1, 2, ...), in the order calls were accepted.
        kind: ``"write"``, ``"write.batch"``, ``"write.many"``, ``"write.transaction"`` or ``"write.script"``.
        rows: Rows changed (0 when the call failed).
        duration: Seconds the call spent in SQLite (its worker thread), waiting for its turn excluded.
        error: The exception class name when the call failed, else None (never its message).
    """

    write_id: int
    kind: str
    rows: int
    duration: float
    error: str | None

    @property
    def failed(self) -> bool:
        """Whether the call raised."""
        return self.error is not None


@dataclass(frozen=True, slots=True)
class SqliteSingleWriterStats:
    """Counters of a ``SqliteSingleWriter`` since it was created.

    Attributes:
        writes: Write calls that completed.
        write_errors: Write calls that raised (the writer carries on).
        rows_written: Rows changed by the completed write calls.
        pending_writes: Write calls accepted and not finished (waiting for their turn or running).
        reads: ``read()`` calls.
        read_errors: Reader runs (from ``read`` or ``query``) that raised.
        queries: ``query()`` calls.
        loads: Times a ``read()`` ran its reader (cache misses that were not waiting for another load).
        cache_hits: ``read()`` calls answered from the cache.
        cache_misses: ``read()`` calls that found no live entry (the ones that waited for a load included).
        cache_entries: Entries the cache holds now.
        read_connections: Read connections open now.
    """

    writes: int
    write_errors: int
    rows_written: int
    pending_writes: int
    reads: int
    read_errors: int
    queries: int
    loads: int
    cache_hits: int
    cache_misses: int
    cache_entries: int
    read_connections: int
