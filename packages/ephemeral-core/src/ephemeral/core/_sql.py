"""SQL identifiers from configuration: validated, then quoted, so no configured name can change the SQL."""

from __future__ import annotations

import hashlib
import re

__all__ = ("derived_identifier", "quote_identifier", "table_identifier", "validate_identifier")

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


def table_identifier(table_name: object, database_name: object) -> str:
    """The table of a storage: ``table_name``, or ``config.database_name`` when it is None; validated.

    The error names what the user gave: ``table_name``, or ``config.database_name`` (saying it is the
    table name unless ``table_name=`` is given) when the table defaults to it.
    """
    if table_name is not None:
        return validate_identifier(table_name, "table_name")
    return validate_identifier(database_name, "config.database_name (the table name unless table_name= is given)")


def quote_identifier(value: str, name: str = "identifier") -> str:
    """``value`` validated (see ``validate_identifier``) and double-quoted for use in SQL."""
    return f'"{validate_identifier(value, name)}"'


def derived_identifier(prefix: str, name: str, suffix: str, *, max_length: int = 63) -> str:
    """``prefix + name + suffix`` (an index name from a table name, say), kept within ``max_length``.

    A name that would be longer is shortened and given a digest of the whole name, so two long names never
    derive the same identifier and the database never truncates one silently. The result is validated.
    """
    derived = f"{prefix}{name}{suffix}"
    if len(derived) > max_length:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        keep = max_length - len(prefix) - len(suffix) - len(digest) - 1
        derived = f"{prefix}{name[:keep]}_{digest}{suffix}"
    return validate_identifier(derived, f"the identifier derived from {name!r}", max_length=max_length)
