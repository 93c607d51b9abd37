"""Where a writer's database lives: a file path, ``":memory:"`` or a ``"Data Source=...;..."`` string."""

from __future__ import annotations

import itertools
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = ("DatabaseTarget", "resolve_target")

MEMORY = ":memory:"

#: Connection-string keys that name the database (Microsoft.Data.Sqlite spells it several ways).
_SOURCE_KEYS = frozenset({"data source", "datasource", "filename"})
#: Keys accepted and ignored: pooling and caching are ours, the pragmas come from the options.
_IGNORED_KEYS = frozenset(
    {"cache", "pooling", "default timeout", "command timeout", "foreign keys", "recursive triggers"}
)
#: Every key a connection string may have; a str with one of them as a ``key=value`` part is one.
_KNOWN_KEYS = _SOURCE_KEYS | _IGNORED_KEYS | {"mode", "password"}
_MODES = ("readwritecreate", "readwrite", "memory")
_memory_names = itertools.count(1)
_process_tag = uuid.uuid4().hex


@dataclass(frozen=True)
class DatabaseTarget:
    """What ``sqlite3.connect`` is given, and the identity ``get_or_create`` shares instances by.

    Attributes:
        database: The first argument of ``sqlite3.connect``.
        uri: Whether ``database`` is a ``file:`` URI.
        identity: The resolved absolute path, or a name for an in-memory database.
        is_memory: Whether the database lives in memory (then only as long as the writer's connection).
    """

    database: str
    uri: bool
    identity: str
    is_memory: bool


def _memory(name: str | None) -> DatabaseTarget:
    # A named shared-cache memory database is one database for every connection of this process that
    # opens the same URI, so the writer and its readers share it (a plain ":memory:" would give each
    # connection its own). An unnamed one gets a name no other writer uses.
    unique = name is None
    if name is None:
        name = f"ephemeral-{_process_tag}-{next(_memory_names)}"
    # Percent-encode the name: a '#' or '?' in it would otherwise end the URI's path, and SQLite would
    # open a file named by what came before it.
    database = f"file:{quote(name, safe='')}?mode=memory&cache=shared"
    return DatabaseTarget(database, True, MEMORY if unique else f"memory:{name}", True)


def _file(path: str, must_exist: bool) -> DatabaseTarget:
    resolved = Path(path).expanduser().resolve()
    if must_exist:
        return DatabaseTarget(f"{resolved.as_uri()}?mode=rw", True, str(resolved), False)
    return DatabaseTarget(str(resolved), False, str(resolved), False)


def _normalise_key(name: str) -> str:
    return " ".join(name.split()).lower()


def _split_connection_string(text: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of a connection string, as ``DbConnectionStringBuilder`` reads them.

    Parts are separated by ``;``. Spaces around keys and values are trimmed. A value may be quoted
    with ``"`` or ``'`` (then it may hold ``;``, ``=`` and spaces); inside, the quote doubled stands
    for itself (``"a ""b"" c"`` is ``a "b" c``).

    Raises:
        ValueError: A part is not ``key=value``, or a quoted value is not closed.
    """
    pairs: list[tuple[str, str]] = []
    index, length = 0, len(text)
    while index < length:
        end = text.find("=", index)
        semicolon = text.find(";", index)
        if end < 0 or 0 <= semicolon < end:
            part = text[index : semicolon if semicolon >= 0 else length].strip()
            if part:
                raise ValueError(f"path: connection string part {part!r} is not key=value")
            index = semicolon + 1 if semicolon >= 0 else length
            continue
        name = text[index:end].strip()
        if not name:
            raise ValueError("path: connection string part with no key before '='")
        index = end + 1
        while index < length and text[index].isspace():
            index += 1
        if index < length and text[index] in "\"'":
            quote_char = text[index]
            index += 1
            chars: list[str] = []
            while True:
                close = text.find(quote_char, index)
                if close < 0:
                    raise ValueError(f"path: the value of {name!r} has no closing {quote_char}")
                chars.append(text[index:close])
                if close + 1 < length and text[close + 1] == quote_char:  # doubled: the quote itself
                    chars.append(quote_char)
                    index = close + 2
                    continue
                index = close + 1
                break
            value = "".join(chars)
            semicolon = text.find(";", index)
            rest = text[index : semicolon if semicolon >= 0 else length]
            if rest.strip():
                raise ValueError(f"path: unexpected {rest.strip()!r} after the quoted value of {name!r}")
        else:
            semicolon = text.find(";", index)
            value = text[index : semicolon if semicolon >= 0 else length].strip()
        pairs.append((name, value))
        index = semicolon + 1 if semicolon >= 0 else length
    return pairs


def _parse_connection_string(text: str) -> DatabaseTarget:
    source: str | None = None
    mode = "readwritecreate"
    for name, value in _split_connection_string(text):
        key = _normalise_key(name)
        if key in _SOURCE_KEYS:
            source = value
        elif key == "mode":
            mode = value.lower()
            if mode == "readonly":
                raise ValueError("path: Mode=ReadOnly cannot be used by a writer")
            if mode not in _MODES:
                raise ValueError(f"path: unknown Mode={value!r} (ReadWriteCreate, ReadWrite or Memory)")
        elif key == "password":
            raise ValueError("path: Password (SQLCipher encryption) is not supported by the sqlite3 module")
        elif key not in _IGNORED_KEYS:
            raise ValueError(f"path: unknown connection string key {name!r}")
    if not source:
        raise ValueError("path: the connection string has no Data Source")
    if mode == "memory":
        return _memory(None if source == MEMORY else source)
    if source == MEMORY:
        return _memory(None)
    return _file(source, must_exist=mode == "readwrite")


def _is_connection_string(text: str) -> bool:
    """Whether any ``;``-separated part of ``text`` is ``key=value`` with a connection-string key."""
    for part in text.split(";"):
        name, sep, _ = part.partition("=")
        if sep and _normalise_key(name) in _KNOWN_KEYS:
            return True
    return False


_URI = re.compile(r"^file:", re.IGNORECASE)


def resolve_target(path: str | os.PathLike[str]) -> DatabaseTarget:
    """Resolve what a writer was given into what ``sqlite3.connect`` needs.

    Accepts a file path (``str`` or ``PathLike``), ``":memory:"`` (a private in-memory database that
    the writer and its read connections share), or a Microsoft.Data.Sqlite connection string such as
    ``"Data Source=app.db;Cache=Shared"``: ``Data Source`` (or ``DataSource``, ``Filename``) names the
    file, ``Mode`` is ``ReadWriteCreate`` (the default), ``ReadWrite`` (the file must exist) or
    ``Memory``; ``Cache``, ``Pooling``, ``Default Timeout``, ``Command Timeout``, ``Foreign Keys`` and
    ``Recursive Triggers`` are accepted and ignored (the options set the pragmas). A str is taken as a
    connection string when any of its ``;``-separated parts is ``key=value`` with one of those keys (in
    any case and order); keys and values are trimmed, and a value may be quoted with ``"`` or ``'``
    (a doubled quote inside stands for itself), as Microsoft.Data.Sqlite reads them.

    Raises:
        TypeError: ``path`` is not a str or PathLike.
        ValueError: ``path`` is empty, a ``file:`` URI, or a connection string with an unknown key,
            no Data Source, ``Mode=ReadOnly`` or a ``Password``.
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or a PathLike, got {path!r}")
    if not path.strip():
        raise ValueError("path must not be empty")
    if path == MEMORY:
        return _memory(None)
    if _URI.match(path):
        raise ValueError("path: give a file path or a Data Source string, not a file: URI")
    if _is_connection_string(path):
        return _parse_connection_string(path)
    return _file(path, must_exist=False)
