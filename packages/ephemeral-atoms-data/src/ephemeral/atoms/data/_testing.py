"""The storage contract behind ``ephemeral.atoms.data.testing``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from ephemeral.core import SignalEvent, SignalSink, TypedSignalSink
from ephemeral.core.testing import assert_lifecycle_faults

from ._base import DataStorageAtomBase, IDataStorageAtom, WriteItem
from ._config import DataStorageConfig

__all__ = ("DictStorageAtom", "MakeStorageAtom", "check_storage_atom")


class DictStorageAtom(DataStorageAtomBase[str, Any]):
    """A storage atom over a dict of key to stored text: the in-memory backend for tests.

    Give the same ``data`` to several atoms and they share one store (a reopened atom sees what an
    earlier one wrote), as ``check_storage_atom`` requires; without it each atom has its own. Subclass
    it to add delays or failures (override ``_write``, calling ``super()._write``).

    Args:
        sink: Where its signals go (None: a private sink).
        config: The storage configuration (default: database ``"memory"``).
        data: The dict to store in.
        **options: ``value_type`` or ``serializer``, as for ``DataStorageAtomBase``.
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None = None,
        config: DataStorageConfig | None = None,
        data: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(sink, config or DataStorageConfig(database_name="memory"), **options)
        self.data: dict[str, str] = {} if data is None else data

    async def _write(self, items: Sequence[WriteItem]) -> None:
        for key, text in items:
            if text is None:
                self.data.pop(key, None)
            else:
                self.data[key] = text

    async def _read(self, key: str) -> str | None:
        return self.data.get(key)

    async def _contains(self, key: str) -> bool:
        return key in self.data

    async def _count(self) -> int:
        return len(self.data)

    async def _keys(self) -> list[str]:
        return sorted(self.data)

    async def _clear(self) -> int:
        removed = len(self.data)
        self.data.clear()
        return removed


#: ``make_atom(sink, config)``: a new, not yet entered atom on the backend's one store. Every call
#: must reach the same store (the same directory, database file or table): the suite reopens it.
MakeStorageAtom = Callable[[SignalSink | TypedSignalSink[Any] | None, DataStorageConfig], DataStorageAtomBase[str, Any]]

#: Keys a store must keep apart and give back as they were.
UNUSUAL_KEYS = ("user:42", "a?b", "a_b", ".hidden", "100%", "%41", "é ñ", "tab\there", 'quote"d', "x.json")


class _Check:
    """Runs the checks one by one, naming the failing one."""

    def __init__(self, make_atom: MakeStorageAtom, database_name: str) -> None:
        self.make_atom = make_atom
        self.database_name = database_name

    def config(self, **changes: Any) -> DataStorageConfig:
        return DataStorageConfig(database_name=self.database_name, **changes)

    def atom(
        self, sink: SignalSink | TypedSignalSink[Any] | None = None, **changes: Any
    ) -> DataStorageAtomBase[str, Any]:
        atom = self.make_atom(sink, self.config(**changes))
        assert isinstance(atom, DataStorageAtomBase), f"make_atom must return a storage atom, got {atom!r}"
        return atom

    async def empty(self) -> None:
        async with self.atom() as atom:
            await atom.clear()


async def _crud(check: _Check) -> None:
    """save, load, exists, delete, count, list_keys and clear; a save replaces the value."""
    async with check.atom() as atom:
        assert isinstance(atom, IDataStorageAtom)
        assert await atom.load("a") is None and not await atom.exists("a")
        await atom.save("a", {"n": 1, "tags": ["x"], "nested": {"ok": True}})
        assert await atom.load("a") == {"n": 1, "tags": ["x"], "nested": {"ok": True}}
        await atom.save("a", [1, 2.5, "three", None])
        assert await atom.load("a") == [1, 2.5, "three", None]
        await atom.save_many([("b", 2), ("c", "three")])
        assert await atom.exists("b")
        assert await atom.count() == 3
        assert sorted(await atom.list_keys()) == ["a", "b", "c"]
        await atom.delete("b")
        await atom.delete("never-saved")  # deleting a missing key is no error
        assert await atom.load("b") is None and not await atom.exists("b")
        assert await atom.clear() == 2
        assert await atom.count() == 0 and await atom.list_keys() == []


async def _reads_see_accepted_writes(check: _Check) -> None:
    """A read sees every write accepted before it, stored or not yet."""
    async with check.atom() as atom:
        atom.enqueue_save("k", 1)
        assert await atom.load("k") == 1
        atom.enqueue_delete("k")
        assert await atom.load("k") is None
        atom.enqueue_save("k", 2)
        assert await atom.clear() == 1
        atom.enqueue_save("after-clear", 3)
        assert await atom.list_keys() == ["after-clear"]
        await atom.clear()


async def _last_write_wins_under_load(check: _Check) -> None:
    """Many writes queued at once are stored in batches, in order: each key keeps its last value."""
    async with check.atom() as atom:
        for i in range(300):
            atom.enqueue_save(f"k{i % 10}", i)
        await atom.flush()
        stats = atom.storage_stats()
        assert stats.written == 300 and stats.pending_writes == 0 and stats.failed_writes == 0
        assert stats.batches < 60, f"queued writes must share batches, got {stats.batches} for 300 writes"
        assert [await atom.load(f"k{j}") for j in range(10)] == [290 + j for j in range(10)]
        assert atom.stats().completed == 300
        await atom.clear()


async def _concurrent_saves_of_one_key(check: _Check) -> None:
    """Saves of one key from many tasks leave one of their values, whole."""
    pad = "x" * 10_000
    async with check.atom() as atom:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(atom.save, "hot", {"i": i, "pad": pad})
        value = await atom.load("hot")
        assert value is not None and value["pad"] == pad and value["i"] in range(20)
        await atom.clear()


async def _unusual_keys(check: _Check) -> None:
    """Keys with punctuation, spaces and non-ASCII letters round-trip and never collide."""
    async with check.atom() as atom:
        for i, key in enumerate(UNUSUAL_KEYS):
            atom.enqueue_save(key, i)
        for i, key in enumerate(UNUSUAL_KEYS):
            assert await atom.load(key) == i, key
        assert sorted(await atom.list_keys()) == sorted(UNUSUAL_KEYS)
        await atom.clear()


async def _durable_across_restarts(check: _Check) -> None:
    """Writes accepted before leaving ``async with`` are stored; a new atom on the store reads them."""
    async with check.atom() as first:
        for i in range(50):
            first.enqueue_save(f"c{i}", {"n": i})
        first.enqueue_delete("c3")
    async with check.atom() as second:
        assert await second.load("c7") == {"n": 7}
        assert await second.load("c3") is None
        assert await second.count() == 49
        await second.clear()


async def _completion_signals(check: _Check) -> None:
    """``initialized``, then ``saved``/``loaded``/``deleted.data.{database_name}`` carrying the key."""
    sink = SignalSink()
    name = check.database_name
    async with check.atom(sink) as atom:
        await atom.save("s", 1)
        await atom.load("s")
        await atom.delete("s")
    emitted = [(e.signal, e.key) for e in sink.sense(f"*.data.{name}")]
    assert emitted == [
        (f"initialized.data.{name}", None),
        (f"saved.data.{name}", "s"),
        (f"loaded.data.{name}", "s"),
        (f"deleted.data.{name}", "s"),
    ], emitted
    async with check.atom(sink, emit_completion_signals=False) as quiet:
        await quiet.save("q", 1)
    assert [(e.signal, e.key) for e in sink.sense(f"saved.data.{name}")] == [(f"saved.data.{name}", "s")]


async def _requests_by_signal(check: _Check) -> None:
    """``save``/``load``/``delete.data.{database_name}`` signals on a typed sink ask for the same work."""
    typed: TypedSignalSink[Any] = TypedSignalSink()
    name = check.database_name
    loaded = anyio.Event()
    payloads: list[Any] = []

    def on_loaded(event: SignalEvent[Any]) -> None:
        if event.signal == f"loaded.data.{name}":
            payloads.append(event.payload)
            loaded.set()

    async with check.atom(typed) as atom:
        with typed.subscribe(on_loaded):
            typed.emit(f"save.data.{name}", {"total": 5}, key="o-1")
            await atom.flush()
            assert await atom.load("o-1") == {"total": 5}
            assert typed.untyped.detect(f"saved.data.{name}")
            payloads.clear()
            loaded = anyio.Event()
            typed.emit(f"load.data.{name}", None, key="o-1")
            with anyio.fail_after(10):
                await loaded.wait()
            typed.emit(f"delete.data.{name}", None, key="o-1")
            await atom.flush()
            assert await atom.load("o-1") is None
            typed.emit(f"save.data.{name}", None, key="o-2")  # no value: refused, reported
            await atom.flush()
        assert await atom.load("o-2") is None
    assert [e.key for e in typed.untyped.sense(f"error.data.{name}:MissingPayload")] == ["o-2"]


async def _refuses_work_when_closed(check: _Check) -> None:
    """Calls before entering or after leaving ``async with`` fail clearly; nothing is written."""
    atom = check.atom()
    calls: tuple[Callable[[], Awaitable[object]], ...] = (lambda: atom.load("k"), lambda: atom.save("k", 1))
    for call in calls:
        try:
            await call()
        except RuntimeError:
            pass
        else:  # pragma: no cover - the failure path
            raise AssertionError("a storage atom must refuse work before it is entered")
    async with atom:
        pass
    try:
        atom.enqueue_save("k", 1)
    except RuntimeError:
        pass
    else:  # pragma: no cover - the failure path
        raise AssertionError("a closed storage atom must refuse enqueue_save")


async def _lifecycle_faults(check: _Check) -> None:
    """An error or an outer deadline in ``async with`` stores the accepted writes, leaves no task; entered once."""

    async def use(atom: DataStorageAtomBase[str, Any]) -> None:
        for i in range(20):
            atom.enqueue_save(f"f{i}", i)
        await anyio.lowlevel.checkpoint()

    await assert_lifecycle_faults(check.atom, use)
    async with check.atom() as atom:
        assert sorted(await atom.list_keys()) == sorted(f"f{i}" for i in range(20))
        assert await atom.load("f19") == 19
        await atom.clear()


_CHECKS: tuple[Callable[[_Check], Awaitable[None]], ...] = (
    _crud,
    _reads_see_accepted_writes,
    _last_write_wins_under_load,
    _concurrent_saves_of_one_key,
    _unusual_keys,
    _durable_across_restarts,
    _completion_signals,
    _requests_by_signal,
    _refuses_work_when_closed,
    _lifecycle_faults,
)


async def check_storage_atom(make_atom: MakeStorageAtom, *, database_name: str = "conformance") -> None:
    """Check that the atoms ``make_atom`` builds keep the storage contract.

    The store is emptied first (``clear``) and after each check. The checks: save/load/exists/delete/
    count/list_keys/clear; reads see accepted writes; queued writes are batched and the last write to a
    key wins; concurrent saves of one key leave one whole value; unusual keys round-trip; accepted
    writes survive leaving ``async with``; completion signals carry the key; save/load/delete requested
    by signal; work refused before entering and after leaving; an exception or an outer deadline in
    the block stores the accepted writes and leaves no task behind, and an atom is entered once.

    Args:
        make_atom: ``make_atom(sink, config)`` returns a new atom on the backend's one store.
        database_name: The ``DataStorageConfig.database_name`` of every atom made (a valid table name
            for SQL backends; make it unique when stores are shared).

    Raises:
        AssertionError: The backend broke the contract; the message starts with the check's name.
    """
    check = _Check(make_atom, database_name)
    await check.empty()
    for run in _CHECKS:
        try:
            await run(check)
        except AssertionError as error:
            raise AssertionError(f"{run.__name__.strip('_')}: {run.__doc__}\n{error}") from error
        await check.empty()
