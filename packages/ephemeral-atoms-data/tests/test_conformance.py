"""check_storage_atom: the storage contract, passed by a dict store and failed by broken ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ephemeral.atoms.data import DataStorageConfig, WriteItem
from ephemeral.atoms.data.testing import DictStorageAtom, check_storage_atom
from ephemeral.core import SignalSink, TypedSignalSink


class DictStore(DictStorageAtom):
    """A ``DictStorageAtom`` that can forget deletes (a broken backend)."""

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None,
        config: DataStorageConfig,
        data: dict[str, str],
        *,
        forget_deletes: bool = False,
    ) -> None:
        super().__init__(sink, config, data)
        self.forget_deletes = forget_deletes

    async def _write(self, items: Sequence[WriteItem]) -> None:
        await super()._write([item for item in items if item[1] is not None or not self.forget_deletes])


async def test_a_dict_store_keeps_the_contract() -> None:
    data: dict[str, str] = {"left": "over"}  # the suite starts by emptying the store
    await check_storage_atom(lambda sink, config: DictStore(sink, config, data), database_name="dict")
    assert data == {}


async def test_a_store_that_loses_deletes_fails_naming_the_check() -> None:
    data: dict[str, str] = {}
    with pytest.raises(AssertionError, match="crud: save, load, exists, delete"):
        await check_storage_atom(lambda sink, config: DictStore(sink, config, data, forget_deletes=True))


async def test_make_atom_must_make_storage_atoms() -> None:
    with pytest.raises(AssertionError, match="make_atom must return a storage atom"):
        await check_storage_atom(lambda sink, config: object())  # type: ignore[arg-type, return-value]


async def test_the_dict_storage_atom_keeps_the_contract() -> None:
    data: dict[str, str] = {}
    await check_storage_atom(lambda sink, config: DictStorageAtom(sink, config, data), database_name="memory")
    assert data == {}
