"""File storage atom: one file per key in a directory, written atomically, in order, batched under load."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio.to_thread

from ephemeral.atoms.data import DataSerializer, DataStorageAtomBase, DataStorageConfig, WriteItem
from ephemeral.core import SignalSink, TypedSignalSink

__all__ = ("FileDataStorageAtom",)

K = TypeVar("K")
V = TypeVar("V")

# Characters that some file system refuses or treats specially: percent-encoded, so file names are the
# same on every platform and never collide. A leading dot is encoded too (temporary files start with one).
_ENCODE = re.compile(r'[\x00-\x1f\x7f%<>:"|?*]|^\.')
_EXTENSION = re.compile(r"\.[A-Za-z0-9_\-]{1,16}")
_MAX_NAME_BYTES = 255
_STALE_TEMPORARY = 900.0  # seconds


def _encode(key: str) -> str:
    return _ENCODE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), key)


class FileDataStorageAtom(DataStorageAtomBase[K, V]):
    r"""Stores each value as one file, ``{directory}/{key}{file_extension}``, holding its serialized text.

    A save writes a uniquely named temporary file beside the target and renames it over the target, so a
    reader (or a crash) never sees a half-written file, and concurrent saves of one key cannot collide.
    Keys are file names: a key with ``/``, ``\\`` or NUL, or the key ``.`` or ``..``, is refused with
    ValueError (it would escape the directory); characters some platform refuses (``<>:"|?*``, control
    characters, ``%``, a leading dot) are percent-encoded, so distinct keys never share a file and
    ``list_keys`` returns the keys as given. Writes are ordered and batched as for every storage atom
    (``DataStorageAtomBase``); file I/O runs in worker threads, one hop per batch.

    Args:
        sink: Where signals go (and come from); see ``DataStorageAtomBase``.
        config: Names, signal prefixes and pacing.
        directory: The directory holding the files; created (with its parents) on entry.
        file_extension: The extension of every value file.
        fsync: Flush each file (and the directory) to disk before a save counts as done: survives a power
            loss, at a cost of milliseconds per batch. Without it a save survives a process crash.
        value_type: The type loads rebuild with the default JSON serializer.
        serializer: How values become text and back; JSON when None.
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None,
        config: DataStorageConfig,
        directory: str | os.PathLike[str],
        *,
        file_extension: str = ".json",
        fsync: bool = False,
        value_type: Any = None,
        serializer: DataSerializer[V] | None = None,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path (str or PathLike), got {directory!r}")
        if not os.fspath(directory):
            raise ValueError("directory must not be empty")
        if not isinstance(file_extension, str) or not _EXTENSION.fullmatch(file_extension):
            raise ValueError(
                f"file_extension must be a dot and 1-16 letters, digits, '_' or '-', got {file_extension!r}"
            )
        if not isinstance(fsync, bool):
            raise TypeError(f"fsync must be a bool, got {fsync!r}")
        super().__init__(sink, config, value_type=value_type, serializer=serializer)
        self._directory = Path(directory)
        self._extension = file_extension
        self._fsync = fsync

    @property
    def directory(self) -> Path:
        """The directory holding the value files."""
        return self._directory

    def path_for(self, key: K) -> Path:
        """The file that holds ``key``'s value (ValueError for a key that cannot be a file name)."""
        return self._directory / (_encode(self._key(key)) + self._extension)

    def _check_key(self, key: str) -> None:
        if "/" in key or "\\" in key or "\x00" in key or key in (".", ".."):
            raise ValueError(f"key {key!r} would escape the directory: '/', '\\\\', NUL, '.' and '..' are refused")
        size = len(_encode(key).encode()) + len(self._extension) + 24  # room for the temporary name
        if size > _MAX_NAME_BYTES:
            raise ValueError(f"key {key[:40]!r}... is too long for a file name ({size} > {_MAX_NAME_BYTES} bytes)")

    def _file(self, key: str) -> Path:
        return self._directory / (_encode(key) + self._extension)

    # -- hooks ------------------------------------------------------------------------------------

    async def _open(self) -> None:
        directory = self._directory

        def make() -> None:
            directory.mkdir(parents=True, exist_ok=True)
            # Temporary files left by a crash mid-save; recent ones may be another process's save in flight.
            cutoff = time.time() - _STALE_TEMPORARY
            for stale in directory.glob(f".*{self._extension}.*.tmp"):
                try:
                    if stale.stat().st_mtime < cutoff:
                        stale.unlink()
                except FileNotFoundError:
                    pass

        await anyio.to_thread.run_sync(make)

    async def _write(self, items: Sequence[WriteItem]) -> None:
        await anyio.to_thread.run_sync(self._write_sync, items)

    def _write_sync(self, items: Sequence[WriteItem]) -> None:
        for key, text in items:
            target = self._file(key)
            if text is None:
                target.unlink(missing_ok=True)
                continue
            temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
            try:
                with open(temporary, "w", encoding="utf-8") as file:
                    file.write(text)
                    if self._fsync:
                        file.flush()
                        os.fsync(file.fileno())
                os.replace(temporary, target)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        if self._fsync and items:
            fd = os.open(self._directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def _read(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self._read_sync, self._file(key))

    @staticmethod
    def _read_sync(path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    async def _contains(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._file(key).is_file)

    def _key_files(self) -> list[Path]:
        extension = self._extension
        return [
            path
            for path in self._directory.iterdir()
            if path.name.endswith(extension) and not path.name.startswith(".") and path.is_file()
        ]

    async def _count(self) -> int:
        return len(await anyio.to_thread.run_sync(self._key_files))

    async def _keys(self) -> list[str]:
        files = await anyio.to_thread.run_sync(self._key_files)
        return sorted(unquote(path.name[: -len(self._extension)]) for path in files)

    async def _clear(self) -> int:
        def clear() -> int:
            files = self._key_files()
            for path in files:
                path.unlink(missing_ok=True)
            return len(files)

        return await anyio.to_thread.run_sync(clear)
