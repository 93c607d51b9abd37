"""Argument checks shared by every package, with one rule: wrong type TypeError, out of range ValueError.

Each check returns the value (normalised where it says so) so options can validate and store in one
line, and names the argument in its message. Durations are checked by ``to_seconds``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Collection
from typing import Any, TypeVar

__all__ = (
    "check_async_callable",
    "check_callable",
    "check_choice",
    "check_float",
    "check_int",
    "check_optional_int",
    "is_async_callable",
)

C = TypeVar("C")


def check_int(value: object, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum`` (and at most ``maximum``).

    Raises:
        TypeError: ``value`` is not an int, naming ``name``.
        ValueError: ``value`` is out of range, naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_optional_int(value: object, name: str, minimum: int = 1) -> int | None:
    """``check_int`` that also accepts None (meaning "no limit")."""
    return None if value is None else check_int(value, name, minimum)


def check_float(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool) within the bounds.

    Args:
        value: The argument.
        name: Its name, for the messages.
        minimum: The lowest allowed value (None: unbounded).
        maximum: The highest allowed value (None: unbounded).
        exclusive_minimum: ``minimum`` itself is refused (``> minimum``).

    Raises:
        TypeError: ``value`` is not an int or float, naming ``name``.
        ValueError: ``value`` is NaN, infinite or out of range, naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (number <= minimum if exclusive_minimum else number < minimum):
        bound = f"> {minimum:g}" if exclusive_minimum else f">= {minimum:g}"
        if maximum is not None:
            bound = f"{bound} and <= {maximum:g}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    if maximum is not None and number > maximum:
        bound = f"<= {maximum:g}" if minimum is None else f"between {minimum:g} and {maximum:g}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return number


def check_choice(value: C, name: str, choices: Collection[C]) -> C:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        TypeError: ``value`` is not of the type of the choices (all of one type), naming ``name``.
        ValueError: ``value`` is not among them, naming ``name`` and listing them.
    """
    kinds = {type(choice) for choice in choices}
    if len(kinds) == 1 and not isinstance(value, tuple(kinds)):
        raise TypeError(f"{name} must be a {next(iter(kinds)).__name__}, got {value!r}")
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def check_callable(value: Any, name: str, what: str = "a callable", *, optional: bool = False) -> Any:
    """Return ``value`` if it is callable (or None when ``optional``).

    Raises:
        TypeError: ``value`` is not callable, naming ``name`` and saying ``what`` it should be.
    """
    if (value is None and optional) or callable(value):
        return value
    suffix = " or None" if optional else ""
    raise TypeError(f"{name} must be {what}{suffix}, got {value!r}")


def is_async_callable(value: object) -> bool:
    """Whether calling ``value`` returns a coroutine.

    True for ``async def`` functions and bound methods, ``functools.partial`` of them, and objects
    whose class defines ``async def __call__``.
    """
    while isinstance(value, functools.partial):
        value = value.func
    if inspect.iscoroutinefunction(value):
        return True
    return callable(value) and not inspect.isroutine(value) and inspect.iscoroutinefunction(type(value).__call__)


def check_async_callable(value: C, name: str, *, optional: bool = False) -> C:
    """Return ``value`` if calling it returns a coroutine (or None when ``optional``).

    A plain ``def`` given where an async function is awaited would fail every call at run time, far from
    the mistake; refusing it here names the argument instead.

    Raises:
        TypeError: ``value`` is not an async function (see ``is_async_callable``), naming ``name``.
    """
    if (value is None and optional) or is_async_callable(value):
        return value
    suffix = " or None" if optional else ""
    raise TypeError(f"{name} must be an async function (async def){suffix}, got {value!r}")
