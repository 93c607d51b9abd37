"""FileDataStorageAtom keeps the storage contract (ephemeral.atoms.data.testing), on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephemeral.atoms.data.testing import check_storage_atom
from ephemeral.atoms.data_file import FileDataStorageAtom


@pytest.mark.real_time
async def test_conforms_to_the_storage_contract(tmp_path: Path) -> None:
    await check_storage_atom(lambda sink, config: FileDataStorageAtom(sink, config, tmp_path / "store"))
