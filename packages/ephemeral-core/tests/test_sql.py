"""SQL identifiers from configuration are validated and quoted."""

from __future__ import annotations

import pytest

from ephemeral.core.sql import derived_identifier, quote_identifier, validate_identifier


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


def test_derived_identifiers_stay_within_the_limit_and_unique() -> None:
    assert derived_identifier("idx_", "orders", "_updated") == "idx_orders_updated"
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    first, second = derived_identifier("idx_", long_a, "_updated"), derived_identifier("idx_", long_b, "_updated")
    assert len(first) == len(second) == 63 and first != second
    assert first.startswith("idx_aaa") and first.endswith("_updated")


def test_check_int_names_the_argument() -> None:
    from ephemeral.core.lowlevel import check_int

    assert check_int(3, "size") == 3
    assert check_int(0, "retries", 0) == 0
    with pytest.raises(TypeError, match="size must be an int"):
        check_int(True, "size")
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        check_int(0, "size")
