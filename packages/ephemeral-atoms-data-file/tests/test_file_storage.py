"""FileDataStorageAtom against real files in a temporary directory (real clock: the I/O runs in threads)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pydantic
import pytest

from ephemeral.atoms.data import DataStorageConfig, IDataStorageAtom
from ephemeral.atoms.data_file import FileDataStorageAtom
from ephemeral.core import SignalSink

pytestmark = pytest.mark.real_time


@dataclass
class Order:
    id: str
    total: Decimal


class Customer(pydantic.BaseModel):
    name: str
    orders: list[str]


def files(directory: Path) -> list[str]:
    """The names in ``directory``, sorted (a sync helper: the tests read the disk between awaits)."""
    return sorted(p.name for p in directory.iterdir())


def orders_config() -> DataStorageConfig:
    return DataStorageConfig(
        database_name="orders",
        signal_prefix="save.data",
        load_signal_prefix="load.data",
        delete_signal_prefix="delete.data",
        max_concurrency=1,
    )


async def test_the_seed_example(tmp_path: Path) -> None:
    sink = SignalSink()
    directory = tmp_path / "orders"
    async with FileDataStorageAtom[str, Order](sink, orders_config(), directory, value_type=Order) as storage:
        assert isinstance(storage, IDataStorageAtom)
        storage.enqueue_save("order-123", Order(id="order-123", total=Decimal("42.00")))
        loaded = await storage.load("order-123")
        assert loaded == Order(id="order-123", total=Decimal("42.00"))
    assert json.loads((directory / "order-123.json").read_text()) == {"id": "order-123", "total": "42.00"}
    assert [(e.signal, e.key) for e in sink.sense("saved.data.orders")] == [("saved.data.orders", "order-123")]


async def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    async with FileDataStorageAtom[str, Any](None, orders_config(), tmp_path) as storage:
        await storage.save("k", {"v": 1})
        await storage.save("k", {"v": 2})
        assert await storage.load("k") == {"v": 2}
        assert files(tmp_path) == ["k.json"]


async def test_concurrent_saves_of_one_key_from_many_tasks_never_tear_a_file(tmp_path: Path) -> None:
    big = "x" * 100_000
    async with FileDataStorageAtom[str, Any](None, orders_config(), tmp_path) as storage:
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(storage.save, "hot", {"i": i, "pad": big})
        value = await storage.load("hot")
        assert value is not None
        assert value["pad"] == big and value["i"] in range(50)
    assert files(tmp_path) == ["hot.json"]


@pytest.mark.parametrize("key", ["../escape", "a/b", "..", ".", "/etc/passwd", "a\\b", "nul\x00byte", "x" * 300])
async def test_keys_that_would_escape_the_directory_or_cannot_be_files_are_refused(tmp_path: Path, key: str) -> None:
    inner = tmp_path / "inner"
    async with FileDataStorageAtom[str, Any](None, orders_config(), inner) as storage:
        with pytest.raises(ValueError, match=r"escape the directory|too long"):
            storage.enqueue_save(key, 1)
        with pytest.raises(ValueError, match=r"escape the directory|too long"):
            await storage.load(key)
        with pytest.raises(ValueError, match=r"escape the directory|too long"):
            await storage.delete(key)
    assert files(tmp_path) == ["inner"]
    assert files(inner) == []


async def test_unusual_keys_round_trip_and_never_collide(tmp_path: Path) -> None:
    keys = ["user:42", "a?b", "a_b", ".hidden", "100%", "%41", "é ñ", "tab\there", 'quote"d', "x.json", "<>|*"]
    async with FileDataStorageAtom[str, Any](None, orders_config(), tmp_path) as storage:
        for i, key in enumerate(keys):
            storage.enqueue_save(key, i)
        for i, key in enumerate(keys):
            assert await storage.load(key) == i
        assert await storage.list_keys() == sorted(keys)
        assert storage.path_for("user:42").name == "user%3A42.json"
    names = files(tmp_path)
    assert len(names) == len(keys) and not any(set(n) & set('<>:"|?*\t') for n in names)


async def test_exists_count_list_keys_and_clear(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a value file")
    async with FileDataStorageAtom[str, Any](None, orders_config(), tmp_path) as storage:
        assert not await storage.exists("a")
        await storage.save_many([("a", 1), ("b", 2), ("c", 3)])
        assert await storage.exists("a")
        assert await storage.count() == 3
        assert await storage.list_keys() == ["a", "b", "c"]
        assert await storage.clear() == 3
        assert await storage.count() == 0
    assert files(tmp_path) == ["notes.txt"]  # other files are left alone


async def test_accepted_saves_are_on_disk_after_close(tmp_path: Path) -> None:
    async with FileDataStorageAtom[str, Any](None, orders_config(), tmp_path, fsync=True) as storage:
        for i in range(100):
            storage.enqueue_save(str(i), i)
    assert len(files(tmp_path)) == 100


async def test_a_failing_save_is_reported_and_later_saves_carry_on(tmp_path: Path) -> None:
    sink = SignalSink()
    async with FileDataStorageAtom[str, Any](sink, orders_config(), tmp_path) as storage:
        (tmp_path / "blocked.json").mkdir()  # a directory where the file should go
        with pytest.raises(IsADirectoryError):
            await storage.save("blocked", 1)
        await storage.save("fine", 2)
        assert await storage.load("fine") == 2
    assert [(e.signal, e.key) for e in sink.sense("error.data.orders:*")] == [
        ("error.data.orders:IsADirectoryError", "blocked")
    ]


async def test_stale_temporary_files_from_a_crash_are_removed_on_entry(tmp_path: Path) -> None:
    stale = tmp_path / ".k.json.0123456789abcdef.tmp"
    stale.write_text('{"half')
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / ".j.json.fedcba9876543210.tmp"  # maybe another process's save in flight: kept
    fresh.write_text('{"hal')
    async with FileDataStorageAtom[str, Any](None, orders_config(), tmp_path) as storage:
        assert await storage.list_keys() == []
    assert files(tmp_path) == [fresh.name]


def test_constructor_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file_extension"):
        FileDataStorageAtom(None, orders_config(), tmp_path, file_extension="json")
    with pytest.raises(ValueError, match="file_extension"):
        FileDataStorageAtom(None, orders_config(), tmp_path, file_extension="./x")
    with pytest.raises(ValueError, match="directory"):
        FileDataStorageAtom(None, orders_config(), "")
    with pytest.raises(TypeError, match="directory"):
        FileDataStorageAtom(None, orders_config(), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fsync"):
        FileDataStorageAtom(None, orders_config(), tmp_path, fsync="yes")  # type: ignore[arg-type]


async def test_a_directory_that_is_a_file_fails_on_entry(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(FileExistsError):
        async with FileDataStorageAtom[str, Any](None, orders_config(), target):
            pass
    assert files(tmp_path) == ["file"]
