"""Configuration shared by every storage atom."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from ephemeral.core.lowlevel import check_int, to_seconds

__all__ = ("DataStorageConfig",)

_SIGNAL_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")


def _signal_part(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not _SIGNAL_SEGMENT.fullmatch(value):
        raise ValueError(
            f"{name} must be dot-separated segments of letters, digits, '_' or '-' "
            f"(no spaces, ':' or glob characters); got {value!r}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class DataStorageConfig:
    """How a storage atom is named, signalled and paced.

    Args:
        database_name: The store's name: part of every signal (``saved.data.{database_name}``) and the
            default table name of the SQL atoms.
        signal_prefix: Signals ``{signal_prefix}.{database_name}`` (typed, with the value as payload and
            the key as key) ask the atom to save.
        load_signal_prefix: Signals ``{load_signal_prefix}.{database_name}`` ask it to load the key; the
            result is announced as ``loaded.data.{database_name}`` (with the value as payload on a typed sink).
        delete_signal_prefix: Signals ``{delete_signal_prefix}.{database_name}`` ask it to delete the key.
        max_concurrency: The most reads (load, exists, count, list_keys) running at once. Writes always go
            through one writer, in order.
        emit_completion_signals: Emit ``saved``/``deleted``/``loaded.data.{database_name}`` (key = the key).
        enable_batching: Group the saves and deletes waiting while the writer is busy into one transaction
            (up to ``batch_size``). Off: one transaction per write.
        batch_size: The most writes in one transaction.
        batch_timeout: How long an idle writer waits for a batch to fill before writing it (0: write at
            once; batches then form only under load, which costs no latency).
        max_pending_writes: The most writes accepted and not yet written. Beyond it ``enqueue_save``
            raises and ``save`` waits for room.
        write_retry_timeout: How long a batch that failed with a transient error (a lost connection) is
            retried, with backoff, before its writes fail; every batch queued behind it then fails at once.
    """

    database_name: str = "default"
    signal_prefix: str = "save.data"
    load_signal_prefix: str = "load.data"
    delete_signal_prefix: str = "delete.data"
    max_concurrency: int = 1
    emit_completion_signals: bool = True
    enable_batching: bool = True
    batch_size: int = 100
    batch_timeout: float | timedelta = 0.0
    max_pending_writes: int = 10_000
    write_retry_timeout: float | timedelta = 30.0

    def __post_init__(self) -> None:
        _signal_part(self.database_name, "database_name")
        _signal_part(self.signal_prefix, "signal_prefix")
        _signal_part(self.load_signal_prefix, "load_signal_prefix")
        _signal_part(self.delete_signal_prefix, "delete_signal_prefix")
        for name in ("max_concurrency", "batch_size", "max_pending_writes"):
            check_int(getattr(self, name), name)
        for name in ("emit_completion_signals", "enable_batching"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        self._check_signal_loops()
        object.__setattr__(self, "batch_timeout", to_seconds(self.batch_timeout, "batch_timeout", allow_zero=True))
        object.__setattr__(
            self, "write_retry_timeout", to_seconds(self.write_retry_timeout, "write_retry_timeout", allow_zero=True)
        )

    def _check_signal_loops(self) -> None:
        """Refuse prefixes under which a storage atom would hear its own signals (and loop) or mix requests."""
        db = self.database_name
        emitted = [f"{kind}.data.{db}" for kind in ("saved", "loaded", "deleted", "error", "retrying", "initialized")]
        listened = {
            "signal_prefix": self.save_signal_pattern,
            "load_signal_prefix": self.load_signal_pattern,
            "delete_signal_prefix": self.delete_signal_pattern,
        }
        for field_name, pattern in listened.items():
            for name in emitted:
                if name == pattern or name.startswith(pattern + "."):
                    raise ValueError(
                        f"{field_name} {getattr(self, field_name)!r}: the atom would hear its own {name!r} signals"
                    )
        if len(set(listened.values())) < 3:
            raise ValueError(
                "signal_prefix, load_signal_prefix and delete_signal_prefix must differ, got "
                f"{self.signal_prefix!r}, {self.load_signal_prefix!r}, {self.delete_signal_prefix!r}"
            )

    @property
    def save_signal_pattern(self) -> str:
        """``{signal_prefix}.{database_name}``: the signal that asks for a save."""
        return f"{self.signal_prefix}.{self.database_name}"

    @property
    def load_signal_pattern(self) -> str:
        """``{load_signal_prefix}.{database_name}``: the signal that asks for a load."""
        return f"{self.load_signal_prefix}.{self.database_name}"

    @property
    def delete_signal_pattern(self) -> str:
        """``{delete_signal_prefix}.{database_name}``: the signal that asks for a delete."""
        return f"{self.delete_signal_prefix}.{self.database_name}"

    @property
    def saved_signal(self) -> str:
        """``saved.data.{database_name}``, emitted after each save."""
        return f"saved.data.{self.database_name}"

    @property
    def loaded_signal(self) -> str:
        """``loaded.data.{database_name}``, emitted after each load."""
        return f"loaded.data.{self.database_name}"

    @property
    def deleted_signal(self) -> str:
        """``deleted.data.{database_name}``, emitted after each delete."""
        return f"deleted.data.{self.database_name}"

    @property
    def error_signal(self) -> str:
        """``error.data.{database_name}``; emitted as ``error.data.{db}:{ExceptionType}`` on a failure."""
        return f"error.data.{self.database_name}"
