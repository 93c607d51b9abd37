"""SQL identifiers built from configuration (table, schema and index names): validated, then quoted.

Used by every storage distribution, so a table name with a quote, semicolon, space, dash or dot
raises ``ValueError`` at construction, before any SQL runs or any connection opens.
"""

from __future__ import annotations

from ._sql import (
    derived_identifier as derived_identifier,
    quote_identifier as quote_identifier,
    table_identifier as table_identifier,
    validate_identifier as validate_identifier,
)

__all__ = ("derived_identifier", "quote_identifier", "table_identifier", "validate_identifier")
