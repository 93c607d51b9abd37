"""Turning stored values into text and back: JSON by default, anything else by a serializer."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar, cast, runtime_checkable

__all__ = ("DataSerializer", "JsonSerializer")

V = TypeVar("V")


@runtime_checkable
class DataSerializer(Protocol[V]):
    """Turns a value into text for storage, and stored text back into a value."""

    def dumps(self, value: V) -> str:
        """The text stored for ``value``; raise TypeError or ValueError when it cannot be stored."""
        ...

    def loads(self, text: str) -> V:
        """The value ``text`` was made from."""
        ...


def _to_jsonable(value: Any) -> Any:
    """``json.dumps``'s ``default``: the JSON form of what json does not know."""
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):  # a pydantic model
        return model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(
        f"a {type(value).__name__} cannot be stored as JSON; pass a serializer "
        "(anything with dumps(value) -> str and loads(text) -> value)"
    )


def _from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` from its JSON form (the inverse of ``_to_jsonable``)."""
    if tp is Any or tp is object or data is None:
        return data
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _from_jsonable(arg, data)
            except (TypeError, ValueError):
                continue
        return data
    if origin in (list, set, frozenset, tuple) or tp in (list, set, frozenset, tuple):
        container = origin or tp
        if container is tuple and args and args[-1] is not Ellipsis:
            return tuple(_from_jsonable(a, d) for a, d in zip(args, data, strict=False))
        item = args[0] if args else Any
        return container(_from_jsonable(item, d) for d in data)
    if origin in (dict, Mapping) or tp is dict:
        value_type = args[1] if len(args) == 2 else Any
        return {k: _from_jsonable(value_type, v) for k, v in data.items()}
    if origin is typing.Literal:
        return data
    if not isinstance(tp, type):
        return data
    model_validate = getattr(tp, "model_validate", None)
    if callable(model_validate):  # a pydantic model
        return model_validate(data)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _from_jsonable(hints.get(f.name, Any), data[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in data
        }
        return tp(**kwargs)
    if issubclass(tp, datetime):
        return tp.fromisoformat(data)
    if issubclass(tp, date):
        return tp.fromisoformat(data)
    if issubclass(tp, time):
        return tp.fromisoformat(data)
    if issubclass(tp, timedelta):
        return tp(seconds=data)
    if issubclass(tp, (Decimal, uuid.UUID, enum.Enum)):
        return tp(data)
    if tp is float and isinstance(data, int):
        return float(data)
    return data


class JsonSerializer(Generic[V]):
    """JSON text, with dataclasses, pydantic models, datetimes, decimals, UUIDs and enums round-tripping.

    Args:
        value_type: The type ``loads`` rebuilds (a dataclass, a pydantic model, ``list[Order]``, ...).
            None: plain JSON values (dicts, lists, strings, numbers) come back.
        default: Converts what JSON and the types above do not cover (as ``json.dumps``'s ``default``).
        indent: Indentation of the stored text (None: compact).
    """

    def __init__(
        self,
        value_type: Any = None,
        *,
        default: Callable[[Any], Any] | None = None,
        indent: int | None = None,
    ) -> None:
        if default is not None and not callable(default):
            raise TypeError(f"default must be callable, got {default!r}")
        self.value_type = value_type
        self._indent = indent
        self._separators = (",", ":") if indent is None else None
        self._default = _to_jsonable if default is None else self._chain(default)

    @staticmethod
    def _chain(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def convert(value: Any) -> Any:
            try:
                return _to_jsonable(value)
            except TypeError:
                return default(value)

        return convert

    def dumps(self, value: V) -> str:
        """``value`` as JSON text; TypeError naming the type when it cannot be."""
        try:
            return json.dumps(
                value,
                default=self._default,
                ensure_ascii=False,
                allow_nan=False,
                indent=self._indent,
                separators=self._separators,
            )
        except ValueError as error:  # NaN or infinity, or a circular reference
            raise ValueError(f"value cannot be stored as JSON: {error}") from None

    def loads(self, text: str) -> V:
        """The value stored as ``text``, rebuilt as ``value_type`` when one was given."""
        data = json.loads(text)
        return cast(V, data if self.value_type is None else _from_jsonable(self.value_type, data))
