"""SQL identifiers from configuration are validated and quoted."""

from __future__ import annotations

import pytest

from ephemeral.core import quote_identifier, validate_identifier


@pytest.mark.parametrize(
    "name", ['orders"; DROP TABLE x; --', "my orders", "a;b", "a'b", "1st", "a.b", "a-b", "", "x" * 64]
)
def test_bad_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="table_name must be a SQL identifier"):
        validate_identifier(name, "table_name")


def test_good_identifiers_are_quoted() -> None:
    assert quote_identifier("orders_2026") == '"orders_2026"'
    assert quote_identifier("_x", "schema") == '"_x"'
    with pytest.raises(TypeError, match="schema must be a str"):
        quote_identifier(None, "schema")  # type: ignore[arg-type]
