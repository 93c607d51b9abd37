"""Argument checks shared by every package: an int with a lower bound."""

from __future__ import annotations

__all__ = ("check_int",)


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``.

    Raises:
        TypeError: ``value`` is not an int, naming ``name``.
        ValueError: ``value`` is below ``minimum``, naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
