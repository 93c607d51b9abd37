"""PostgresDataStorageAtom keeps the storage contract (ephemeral.atoms.data.testing), on a real server."""

from __future__ import annotations

import pytest

from ephemeral.atoms.data.testing import check_storage_atom
from ephemeral.atoms.data_postgres import PostgresDataStorageAtom


@pytest.mark.real_time
async def test_conforms_to_the_storage_contract(postgres_dsn: str, table: str) -> None:
    await check_storage_atom(
        lambda sink, config: PostgresDataStorageAtom(sink, config, postgres_dsn), database_name=table
    )
