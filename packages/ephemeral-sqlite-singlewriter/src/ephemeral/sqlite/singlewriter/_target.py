"""Where a writer's database lives: a file path, ``":memory:"`` or a ``"Data Source=...;..."`` string."""

from __future__ import annotations

import itertools
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ("DatabaseTarget", "resolve_target")

MEMORY = ":memory:"

#: Connection-string keys that name the database (Microsoft.Data.Sqlite spells it several ways).
_SOURCE_KEYS = frozenset({"data source", "datasource", "filename"})
#: Keys accepted and ignored: pooling and caching are ours, the pragmas come from the options.
_IGNORED_KEYS = frozenset(
    {"cache", "pooling", "default timeout", "command timeout", "foreign keys", "recursive triggers"}
)
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
    database = f"file:{name}?mode=memory&cache=shared"
    return DatabaseTarget(database, True, MEMORY if unique else f"memory:{name}", True)


def _file(path: str, must_exist: bool) -> DatabaseTarget:
    resolved = Path(path).expanduser().resolve()
    if must_exist:
        return DatabaseTarget(f"{resolved.as_uri()}?mode=rw", True, str(resolved), False)
    return DatabaseTarget(str(resolved), False, str(resolved), False)


def _parse_connection_string(text: str) -> DatabaseTarget:
    source: str | None = None
    mode = "readwritecreate"
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        key = " ".join(name.split()).lower()
        value = value.strip()
        if not sep:
            raise ValueError(f"path: connection string part {part.strip()!r} is not key=value")
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
            raise ValueError(f"path: unknown connection string key {name.strip()!r}")
    if not source:
        raise ValueError("path: the connection string has no Data Source")
    if mode == "memory":
        return _memory(None if source == MEMORY else source)
    if source == MEMORY:
        return _memory(None)
    return _file(source, must_exist=mode == "readwrite")


def _is_connection_string(text: str) -> bool:
    key = " ".join(text.split(";", 1)[0].partition("=")[0].split()).lower()
    return "=" in text and (key in _SOURCE_KEYS or key == "mode")


_URI = re.compile(r"^file:", re.IGNORECASE)


def resolve_target(path: str | os.PathLike[str]) -> DatabaseTarget:
    """Resolve what a writer was given into what ``sqlite3.connect`` needs.

    Accepts a file path (``str`` or ``PathLike``), ``":memory:"`` (a private in-memory database that
    the writer and its read connections share), or a Microsoft.Data.Sqlite connection string such as
    ``"Data Source=app.db;Cache=Shared"``: ``Data Source`` (or ``DataSource``, ``Filename``) names the
    file, ``Mode`` is ``ReadWriteCreate`` (the default), ``ReadWrite`` (the file must exist) or
    ``Memory``; ``Cache``, ``Pooling``, ``Default Timeout``, ``Command Timeout``, ``Foreign Keys`` and
    ``Recursive Triggers`` are accepted and ignored (the options set the pragmas).

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
