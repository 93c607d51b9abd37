"""JsonSerializer round-trips; DataStorageConfig validation."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from ephemeral.atoms.data import (
    DataSerializer,
    DataStorageConfig,
    JsonSerializer,
)


class Status(enum.Enum):
    OPEN = "open"
    PAID = "paid"


@dataclass
class Line:
    sku: str
    quantity: int
    price: Decimal


@dataclass
class Order:
    id: str
    total: Decimal
    status: Status
    placed: datetime
    lines: list[Line] = field(default_factory=list)
    ref: uuid.UUID | None = None
    tags: dict[str, int] = field(default_factory=dict)
    due: date | None = None
    window: timedelta = timedelta(0)


class Customer(pydantic.BaseModel):
    name: str
    since: datetime
    orders: list[str] = []


def test_a_nested_dataclass_round_trips() -> None:
    order = Order(
        "order-123",
        Decimal("42.00"),
        Status.PAID,
        datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc),
        [Line("a", 2, Decimal("10.50")), Line("b", 1, Decimal("21.00"))],
        uuid.UUID(int=7),
        {"x": 1},
        date(2026, 12, 1),
        timedelta(minutes=5),
    )
    serializer: JsonSerializer[Order] = JsonSerializer(Order)
    text = serializer.dumps(order)
    assert '"total":"42.00"' in text and '"status":"paid"' in text
    assert serializer.loads(text) == order
    assert isinstance(serializer, DataSerializer)


def test_a_pydantic_model_round_trips() -> None:
    customer = Customer(name="Ada", since=datetime(2020, 1, 1, tzinfo=timezone.utc), orders=["o1"])
    serializer: JsonSerializer[Customer] = JsonSerializer(Customer)
    assert serializer.loads(serializer.dumps(customer)) == customer


def test_generic_containers_of_dataclasses_round_trip() -> None:
    serializer: JsonSerializer[list[Line]] = JsonSerializer(list[Line])
    lines = [Line("a", 1, Decimal("1.5"))]
    assert serializer.loads(serializer.dumps(lines)) == lines
    optional: JsonSerializer[Line | None] = JsonSerializer(Line | None)
    assert optional.loads("null") is None


def test_without_a_type_plain_json_comes_back() -> None:
    serializer: JsonSerializer[Any] = JsonSerializer()
    assert serializer.loads(serializer.dumps({"a": [1, "two", None]})) == {"a": [1, "two", None]}
    assert serializer.dumps({"a": "é"}) == '{"a":"é"}'  # compact, not ASCII-escaped
    indented: JsonSerializer[Any] = JsonSerializer(indent=2)
    assert indented.dumps({"a": 1}) == '{\n  "a": 1\n}'


def test_what_json_cannot_hold_is_refused_with_the_type_named() -> None:
    serializer: JsonSerializer[Any] = JsonSerializer()
    with pytest.raises(TypeError, match="a bytes cannot be stored as JSON"):
        serializer.dumps(b"raw")
    with pytest.raises(ValueError, match="cannot be stored as JSON"):
        serializer.dumps(float("inf"))
    custom: JsonSerializer[Any] = JsonSerializer(default=lambda v: v.hex() if isinstance(v, bytes) else str(v))
    assert custom.dumps({"a": 1}) == '{"a":1}'
    assert custom.dumps(b"\x01") == '"01"'
    with pytest.raises(TypeError, match="default must be callable"):
        JsonSerializer(default=3)  # type: ignore[arg-type]


def test_config_defaults_and_derived_names() -> None:
    config = DataStorageConfig(database_name="orders")
    assert (config.signal_prefix, config.load_signal_prefix, config.delete_signal_prefix) == (
        "save.data",
        "load.data",
        "delete.data",
    )
    assert config.max_concurrency == 1
    assert config.save_signal_pattern == "save.data.orders"
    assert config.load_signal_pattern == "load.data.orders"
    assert config.delete_signal_pattern == "delete.data.orders"
    assert (config.saved_signal, config.loaded_signal, config.deleted_signal) == (
        "saved.data.orders",
        "loaded.data.orders",
        "deleted.data.orders",
    )
    assert DataStorageConfig(batch_timeout=timedelta(milliseconds=5)).batch_timeout == 0.005


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"database_name": "my orders"}, ValueError, "database_name"),
        ({"database_name": "orders*"}, ValueError, "database_name"),
        ({"database_name": ""}, ValueError, "database_name"),
        ({"database_name": 3}, TypeError, "database_name"),
        ({"signal_prefix": "save:data"}, ValueError, "signal_prefix"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"batch_size": True}, TypeError, "batch_size"),  # wrong type: TypeError, as every check
        ({"max_pending_writes": -1}, ValueError, "max_pending_writes"),
        ({"batch_timeout": -1}, ValueError, "batch_timeout"),
        ({"write_retry_timeout": "30s"}, TypeError, "write_retry_timeout"),
        ({"enable_batching": 1}, TypeError, "enable_batching"),
    ],
)
def test_bad_config_is_refused_naming_the_field(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DataStorageConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"load_signal_prefix": "loaded.data"}, "load_signal_prefix"),
        ({"signal_prefix": "saved.data"}, "signal_prefix"),
        ({"delete_signal_prefix": "error.data"}, "delete_signal_prefix"),
        ({"signal_prefix": "saved", "database_name": "data"}, "signal_prefix"),
        ({"signal_prefix": "load.data"}, "must differ"),
    ],
)
def test_prefixes_under_which_the_atom_would_hear_itself_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DataStorageConfig(**kwargs)
