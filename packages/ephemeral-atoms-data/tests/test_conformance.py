"""check_storage_atom: the storage contract, passed by a dict store and failed by broken ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from ephemeral.atoms.data import DataStorageAtomBase, DataStorageConfig, WriteItem
from ephemeral.atoms.data.testing import check_storage_atom
from ephemeral.core import SignalSink, TypedSignalSink


class DictStore(DataStorageAtomBase[str, Any]):
    """A backend over a dict shared by every atom made on it (so reopening sees earlier writes)."""

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None,
        config: DataStorageConfig,
        data: dict[str, str],
        *,
        forget_deletes: bool = False,
    ) -> None:
        super().__init__(sink, config)
        self.data = data
        self.forget_deletes = forget_deletes

    async def _write(self, items: Sequence[WriteItem]) -> None:
        for key, text in items:
            if text is not None:
                self.data[key] = text
            elif not self.forget_deletes:
                self.data.pop(key, None)

    async def _read(self, key: str) -> str | None:
        return self.data.get(key)

    async def _contains(self, key: str) -> bool:
        return key in self.data

    async def _count(self) -> int:
        return len(self.data)

    async def _keys(self) -> list[str]:
        return sorted(self.data)

    async def _clear(self) -> int:
        removed = len(self.data)
        self.data.clear()
        return removed


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
