"""SQL identifiers from configuration: validated, then quoted, so no configured name can change the SQL."""

from __future__ import annotations

import re

__all__ = ("quote_identifier", "validate_identifier")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_identifier(value: object, name: str, *, max_length: int = 63) -> str:
    """Return ``value`` if it is a plain SQL identifier, else raise ValueError naming ``name``.

    A plain identifier is a letter or underscore followed by letters, digits and underscores (at most
    ``max_length`` characters, PostgreSQL's limit). Quotes, semicolons, spaces, dots and dashes are
    refused, so no configuration string can change the SQL built from it.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not _IDENTIFIER.fullmatch(value) or len(value) > max_length:
        raise ValueError(
            f"{name} must be a SQL identifier: a letter or '_' then letters, digits or '_', "
            f"at most {max_length} characters; got {value!r}"
        )
    return value


def quote_identifier(value: str, name: str = "identifier") -> str:
    """``value`` validated (see ``validate_identifier``) and double-quoted for use in SQL."""
    return f'"{validate_identifier(value, name)}"'
