"""PostgreSQL storage atom: values in a JSONB key/value table, written in ordered, batched transactions.

``PostgresDataStorageAtom(sink, config, conninfo)`` stores each value under its key in
``"{schema}"."{table}"`` (created on entry), through the ordered, batched writer every ephemeral storage atom
shares (``ephemeral.atoms.data``). psycopg's sync pool runs in worker threads, so it works on asyncio and
trio; lost connections are replaced and their batches retried.
"""

from ._storage import PostgresDataStorageAtom

__all__ = ("PostgresDataStorageAtom",)
