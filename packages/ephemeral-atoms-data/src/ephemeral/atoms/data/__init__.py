"""Storage atoms: shared configuration, the storage protocol, signal conventions and the writer base.

``DataStorageConfig`` names a store and its signals; ``IDataStorageAtom`` is what every storage atom
offers (``enqueue_save``, ``save``, ``load``, ``delete``, ``exists``); ``DataStorageAtomBase`` is the
machinery the file, SQLite and PostgreSQL atoms share: one ordered writer storing the writes that wait
together in one transaction, reads that see accepted writes, retries across lost connections,
``saved``/``loaded``/``deleted.data.{database_name}`` signals, and saves, loads and deletes asked for by
signal.
"""

from ._base import DataStorageAtomBase, DataStorageStats, IDataStorageAtom, StorageFullError, WriteItem
from ._config import DataStorageConfig
from ._serializer import DataSerializer, JsonSerializer

__all__ = (
    "DataSerializer",
    "DataStorageAtomBase",
    "DataStorageConfig",
    "DataStorageStats",
    "IDataStorageAtom",
    "JsonSerializer",
    "StorageFullError",
    "WriteItem",
)
