"""A conformance suite for storage atoms, as ``trio.testing.check_one_way_stream`` is for streams.

Every storage backend (files, SQLite, PostgreSQL, yours) must behave the same way as seen through
``DataStorageAtomBase``: ``check_storage_atom(make_atom)`` runs that contract against the atoms
``make_atom`` builds, so a backend's own tests keep only what is specific to it::

    async def test_conforms_to_the_storage_contract(tmp_path):
        await check_storage_atom(lambda sink, config: FileDataStorageAtom(sink, config, tmp_path))

``DictStorageAtom`` is the in-memory backend, for tests of code that uses a storage atom.

The suite raises ``AssertionError`` (naming the check) at the first difference. Backends doing I/O in
worker threads run it on the real clock (mark the test ``real_time``).
"""

from ._testing import (
    DictStorageAtom as DictStorageAtom,
    MakeStorageAtom as MakeStorageAtom,
    check_storage_atom as check_storage_atom,
)

__all__ = ("DictStorageAtom", "MakeStorageAtom", "check_storage_atom")
