"""DataStorageAtomBase: ordered batched writes, reads that see accepted writes, retries, signals, shutdown.

The backend here is a dict behind the base's hooks, with a virtual-time write delay and injectable
failures, so the writer's own logic (batching, ordering, retry budget, accounting) is tested exactly.
The file, SQLite and PostgreSQL atoms run the same machinery against real stores in their own tests.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.atoms.data import (
    DataStorageConfig,
    DataStorageStats,
    IDataStorageAtom,
    StorageFullError,
    WriteItem,
)
from ephemeral.atoms.data.testing import DictStorageAtom
from ephemeral.core import AtomStats, CoordinatorClosedError, SignalSink, TypedSignalSink


class MemoryStorage(DictStorageAtom):
    """A dict store: writes take ``delay`` (virtual) seconds; keys in ``bad_keys`` fail their transaction;
    ``outage`` transient failures (ConnectionError) come first."""

    def __init__(
        self, sink: SignalSink | TypedSignalSink[Any] | None = None, config: DataStorageConfig | None = None, **kw: Any
    ) -> None:
        self.delay = kw.pop("delay", 0.0)
        super().__init__(sink, config or DataStorageConfig(database_name="mem"), **kw)
        self.batches: list[list[WriteItem]] = []
        self.bad_keys: set[str] = set()
        self.outage = 0
        self.attempt_times: list[float] = []
        self.opened = self.closed = 0

    async def _open(self) -> None:
        self.opened += 1

    async def _close(self) -> None:
        self.closed += 1

    async def _write(self, items: Sequence[WriteItem]) -> None:
        self.attempt_times.append(anyio.current_time())
        if self.delay:
            await anyio.sleep(self.delay)
        if self.outage:
            self.outage -= 1
            raise ConnectionError("connection lost")
        if any(key in self.bad_keys for key, _ in items):
            raise ValueError("constraint violated")
        self.batches.append(list(items))
        await super()._write(items)

    def _is_transient(self, error: BaseException) -> bool:
        return isinstance(error, ConnectionError)


def names(sink: SignalSink, pattern: str = "*") -> list[tuple[str, str | None]]:
    return [(e.signal, e.key) for e in sink.sense(pattern)]


async def test_save_load_exists_delete_round_trip_with_signals() -> None:
    sink = SignalSink()
    async with MemoryStorage(sink) as storage:
        assert isinstance(storage, IDataStorageAtom)
        assert await storage.load("a") is None
        assert not await storage.exists("a")
        await storage.save("a", {"total": 42})
        assert storage.data == {"a": '{"total":42}'}
        assert await storage.exists("a")
        assert await storage.load("a") == {"total": 42}
        await storage.delete("a")
        await storage.delete("never-there")  # no error
        assert not await storage.exists("a")
    assert names(sink, "*.data.mem*") == [
        ("initialized.data.mem", None),
        ("loaded.data.mem", "a"),
        ("saved.data.mem", "a"),
        ("loaded.data.mem", "a"),
        ("deleted.data.mem", "a"),
        ("deleted.data.mem", "never-there"),
    ]
    assert storage.opened == storage.closed == 1


async def test_completion_signals_can_be_turned_off() -> None:
    sink = SignalSink()
    async with MemoryStorage(sink, DataStorageConfig(database_name="mem", emit_completion_signals=False)) as s:
        await s.save("a", 1)
        await s.load("a")
    assert names(sink, "*.data.mem") == [("initialized.data.mem", None)]


async def test_non_str_keys_are_stored_by_their_text() -> None:
    async with MemoryStorage() as storage:
        await storage.save(42, "x")  # type: ignore[arg-type]
        assert await storage.load("42") == "x"
        assert await storage.load(42) == "x"  # type: ignore[arg-type]


async def test_a_load_sees_a_write_accepted_but_not_yet_stored() -> None:
    async with MemoryStorage(delay=1.0) as storage:
        storage.enqueue_save("order-123", {"total": 42})
        assert storage.data == {}
        assert await storage.load("order-123") == {"total": 42}
        assert await storage.exists("order-123")
        storage.enqueue_delete("order-123")
        assert await storage.load("order-123") is None
        assert not await storage.exists("order-123")
    assert storage.data == {}


async def test_writes_waiting_while_the_writer_is_busy_share_one_transaction_in_order() -> None:
    async with MemoryStorage(delay=0.01) as storage:
        for i in range(250):
            storage.enqueue_save(f"k{i % 7}", i)
        await storage.flush()
        sizes = [len(b) for b in storage.batches]
        assert sum(sizes) == 250 and max(sizes) <= 100
        assert sizes == [100, 100, 50]  # what waits for the writer is stored together
        flat = [int(text) for batch in storage.batches for _, text in batch if text is not None]
        assert flat == list(range(250))  # acceptance order, across and within batches
        assert {k: int(v) for k, v in storage.data.items()} == {f"k{j}": max(range(j, 250, 7)) for j in range(7)}
        assert storage.storage_stats() == DataStorageStats(0, 250, 0, 3, 100, 0, 0)


async def test_without_batching_every_write_is_its_own_transaction() -> None:
    async with MemoryStorage(config=DataStorageConfig(database_name="mem", enable_batching=False), delay=0.01) as s:
        for i in range(20):
            s.enqueue_save(str(i), i)
    assert [len(b) for b in s.batches] == [1] * 20


async def test_batch_timeout_lets_an_idle_writer_wait_for_a_batch_to_fill() -> None:
    config = DataStorageConfig(database_name="mem", batch_timeout=0.5, batch_size=10)
    async with MemoryStorage(config=config) as storage:
        start = anyio.current_time()
        storage.enqueue_save("a", 1)
        await anyio.sleep(0.2)
        storage.enqueue_save("b", 2)
        assert storage.batches == []
        await storage.flush()
        assert anyio.current_time() - start == pytest.approx(0.5)
        assert [len(b) for b in storage.batches] == [2]
        for i in range(10):  # a full batch does not wait
            storage.enqueue_save(str(i), i)
        before = anyio.current_time()
        await storage.flush()
        assert anyio.current_time() == pytest.approx(before)


async def test_one_bad_write_fails_alone_and_the_rest_of_its_batch_is_stored(caplog: pytest.LogCaptureFixture) -> None:
    sink = SignalSink()
    async with MemoryStorage(sink, delay=0.01) as storage:
        storage.bad_keys.add("bad")
        storage.enqueue_save("first", 0)  # keeps the writer busy so the next three share a batch
        storage.enqueue_save("a", 1)
        storage.enqueue_save("bad", 2)
        storage.enqueue_save("b", 3)
        with pytest.raises(ValueError, match="constraint violated"):
            await storage.save("bad", 4)
        await storage.flush()
        assert storage.data == {"first": "0", "a": "1", "b": "3"}
        assert storage.stats() == AtomStats(0, 0, 3, 2)
    assert ("error.data.mem:ValueError", "bad") in names(sink)
    assert names(sink, "saved.data.mem") == [("saved.data.mem", k) for k in ("first", "a", "b")]
    # The fire-and-forget write that failed is logged (the awaited one raised to its caller instead).
    assert any("nobody was waiting" in r.getMessage() and "'bad'" in r.getMessage() for r in caplog.records)


async def test_transient_errors_are_retried_with_backoff_and_nothing_is_lost() -> None:
    sink = SignalSink()
    async with MemoryStorage(sink) as storage:
        storage.outage = 3
        start = anyio.current_time()
        await storage.save("a", 1)
        assert storage.data == {"a": "1"}
        gaps = [round(t - start, 3) for t in storage.attempt_times]
        assert gaps == [0.0, 0.05, 0.15, 0.35]  # 50 ms, then doubling
    assert names(sink, "retrying.data.mem:*") == [("retrying.data.mem:ConnectionError", None)] * 3
    assert storage.storage_stats().retries == 3


async def test_an_outage_longer_than_the_retry_budget_fails_the_waiting_writes() -> None:
    sink = SignalSink()
    config = DataStorageConfig(database_name="mem", write_retry_timeout=1.0)
    async with MemoryStorage(sink, config) as storage:
        storage.outage = 1_000
        storage.enqueue_save("a", 1)
        start = anyio.current_time()
        with pytest.raises(ConnectionError):
            await storage.save("b", 2)
        # One budget for the outage: the second batch did not get a fresh second.
        assert anyio.current_time() - start <= 1.0
        assert storage.stats() == AtomStats(0, 0, 0, 2)
        storage.outage = 0
        await storage.save("c", 3)  # the store is back: writes go through again
        assert storage.data == {"c": "3"}
    assert ("error.data.mem:ConnectionError", "a") in names(sink)


@pytest.mark.parametrize("attempt_time", [0.0, 10.0])
async def test_a_backlog_fails_within_the_budget_plus_one_attempt(attempt_time: float) -> None:
    """10,000 writes queued in an outage where every attempt hangs for ``attempt_time`` (a connect or busy
    timeout): once the budget is spent the whole backlog fails together, not one batch per attempt."""
    config = DataStorageConfig(database_name="mem", write_retry_timeout=30.0, max_pending_writes=10_000)
    async with MemoryStorage(config=config, delay=attempt_time) as storage:
        storage.outage = 10**9
        start = anyio.current_time()
        for i in range(9_999):
            storage.enqueue_save(f"k{i}", i)
        with pytest.raises(ConnectionError):
            await storage.save("waited", 1)
        assert anyio.current_time() - start <= 30.0 + attempt_time
        assert storage.stats() == AtomStats(0, 0, 0, 10_000)
        assert len(storage.attempt_times) <= 40  # the budget's retries, not one attempt per batch
        for i in range(5):  # room again at once; writes accepted now fail after one more attempt
            storage.enqueue_save(f"late{i}", i)
        await storage.flush()
        assert anyio.current_time() - start <= 30.0 + 2 * attempt_time
        assert storage.stats() == AtomStats(0, 0, 0, 10_005)
        storage.outage = 0
        await anyio.sleep(3600)
        await storage.save("after", 2)  # the store is back: writes go through again
        assert storage.data == {"after": "2"}


async def test_a_clear_queued_behind_a_spent_outage_fails_with_it() -> None:
    """A clear waiting in the backlog fails with the writes before it, and reads stop assuming it ran."""
    config = DataStorageConfig(database_name="mem", write_retry_timeout=1.0)
    async with MemoryStorage(config=config) as storage:
        storage.data["old"] = "0"
        storage.outage = 10**9
        storage.enqueue_save("a", 1)
        with pytest.raises(ConnectionError):
            await storage.clear()
        assert await storage.exists("old")
        assert storage.stats() == AtomStats(0, 0, 0, 1)


async def test_max_pending_writes_bounds_enqueue_and_save_waits_for_room() -> None:
    config = DataStorageConfig(database_name="mem", max_pending_writes=3, batch_size=2)
    async with MemoryStorage(config=config, delay=1.0) as storage:
        for i in range(3):
            storage.enqueue_save(str(i), i)
        with pytest.raises(StorageFullError, match="max_pending_writes"):
            storage.enqueue_save("x", 0)
        with pytest.raises(StorageFullError):
            storage.enqueue_delete("x")
        assert storage.stats().pending + storage.stats().active == 3
        await storage.save("late", 9)  # waits for room instead of failing
        assert storage.data["late"] == "9"
    assert len(storage.data) == 4


async def test_leaving_the_block_stores_every_accepted_write() -> None:
    async with MemoryStorage(delay=0.1) as storage:
        for i in range(50):
            storage.enqueue_save(str(i), i)
    assert len(storage.data) == 50 and storage.closed == 1


async def test_an_exception_in_the_block_still_stores_accepted_writes_and_propagates() -> None:
    storage = MemoryStorage(delay=0.1)
    with pytest.raises(KeyError):
        async with storage:
            for i in range(5):
                storage.enqueue_save(str(i), i)
            raise KeyError("boom")
    assert len(storage.data) == 5


async def test_a_cancelled_block_still_stores_accepted_writes() -> None:
    storage = MemoryStorage(delay=0.1)
    with anyio.move_on_after(0.05):
        async with storage:
            for i in range(5):
                storage.enqueue_save(str(i), i)
            await anyio.sleep_forever()
    assert len(storage.data) == 5


async def test_a_cancelled_caller_does_not_undo_its_accepted_save() -> None:
    async with MemoryStorage(delay=1.0) as storage:
        with anyio.move_on_after(0.1) as scope:
            await storage.save("a", 1)
        assert scope.cancelled_caught
        await storage.flush()
        assert storage.data == {"a": "1"}


async def test_use_before_entry_and_after_close_is_refused() -> None:
    storage = MemoryStorage()
    with pytest.raises(RuntimeError, match="enter the storage first"):
        storage.enqueue_save("a", 1)
    with pytest.raises(RuntimeError, match="enter the storage first"):
        await storage.load("a")
    async with storage:
        pass
    with pytest.raises(CoordinatorClosedError):
        storage.enqueue_save("a", 1)
    with pytest.raises(CoordinatorClosedError):
        await storage.save("a", 1)


async def test_bad_keys_and_values_are_refused_at_the_call() -> None:
    async with MemoryStorage() as storage:
        with pytest.raises(TypeError, match="key must not be None"):
            storage.enqueue_save(None, 1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="key must not be empty"):
            await storage.save("", 1)
        with pytest.raises(TypeError, match=r"key 'a' cannot be stored.*object"):
            storage.enqueue_save("a", object())
        with pytest.raises(ValueError, match="key 'a' cannot be stored"):
            await storage.save("a", float("nan"))
        with pytest.raises(TypeError, match="key 'a'"):
            await storage.save_many([("ok", 1), ("a", object())])
        assert storage.stats() == AtomStats(0, 0, 0, 0)  # nothing was accepted
    assert storage.data == {}


async def test_save_many_waits_for_all_and_clear_is_ordered_with_writes() -> None:
    async with MemoryStorage(delay=0.01) as storage:
        await storage.save_many([(str(i), i) for i in range(5)])
        assert len(storage.data) == 5
        storage.enqueue_save("before", 1)
        cleared = await storage.clear()
        assert cleared == 6 and storage.data == {}
        storage.enqueue_save("after", 2)
        assert await storage.count() == 1
        assert await storage.list_keys() == ["after"]


async def test_saves_deletes_and_loads_by_signal_on_a_typed_sink() -> None:
    typed: TypedSignalSink[Any] = TypedSignalSink()
    config = DataStorageConfig(database_name="orders")
    async with MemoryStorage(typed, config) as storage:
        typed.emit(config.save_signal_pattern, {"total": 42}, key="order-1")
        typed.emit("save.data.orders.priority", {"total": 7}, key="order-2")  # sub-signals count too
        await storage.flush()
        assert await storage.load("order-1") == {"total": 42}
        assert await storage.load("order-2") == {"total": 7}
        typed.emit(config.load_signal_pattern, None, key="order-1")
        for _ in range(100):  # the load runs in the background
            if typed.sense("loaded.data.orders"):
                break
            await anyio.sleep(0.01)
        loaded = [e for e in typed.sense("loaded.data.orders") if e.key == "order-1"]
        assert loaded[-1].payload == {"total": 42}
        typed.emit(config.delete_signal_pattern, None, key="order-1")
        await storage.flush()
        assert not await storage.exists("order-1")
        assert typed.untyped.detect("saved.data.orders")  # untyped watchers see the same signals


async def test_signal_requests_that_cannot_be_served_are_signalled_not_raised() -> None:
    sink = SignalSink()
    async with MemoryStorage(sink, DataStorageConfig(database_name="orders")) as storage:
        sink.emit("save.data.orders", key="k")  # a plain sink carries no value
        sink.emit("delete.data.orders")  # no key
        await storage.flush()
    assert names(sink, "error.data.orders:*") == [
        ("error.data.orders:MissingPayload", "k"),
        ("error.data.orders:MissingKey", None),
    ]
    assert storage.data == {}


@pytest.mark.real_time
async def test_a_save_signal_from_another_thread_is_stored() -> None:
    typed: TypedSignalSink[Any] = TypedSignalSink()
    async with MemoryStorage(typed, DataStorageConfig(database_name="orders")) as storage:
        await anyio.to_thread.run_sync(lambda: typed.emit("save.data.orders", [1, 2], key="t"))
        await storage.flush()
        assert storage.data == {"t": "[1,2]"}
        assert threading.current_thread() is threading.main_thread()


async def test_stats_count_writes_while_running() -> None:
    async with MemoryStorage(delay=1.0) as storage:
        storage.enqueue_save("0", 0)
        await anyio.sleep(0.5)
        storage.enqueue_save("1", 1)
        storage.enqueue_save("2", 2)
        assert storage.stats() == AtomStats(pending=2, active=1, completed=0, failed=0)
    assert storage.stats() == AtomStats(0, 0, 3, 0)


async def test_constructor_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="sink must be"):
        MemoryStorage("sink")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must be a DataStorageConfig"):
        MemoryStorage(None, {"database_name": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        MemoryStorage(value_type=dict, serializer=object())
    with pytest.raises(TypeError, match="serializer must have dumps"):
        MemoryStorage(serializer=object())


def test_logging_is_quiet_for_successful_work(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "ephemeral.atoms.data")

    async def main() -> None:
        async with MemoryStorage() as storage:
            await storage.save("a", 1)

    anyio.run(main)
    assert caplog.records == []


# ------------------------------------------------------------------------------ random schedules

KEYS = ["a", "b", "c", "d"]
storage_steps = st.one_of(
    st.tuples(st.sampled_from(["enqueue_save", "save"]), st.sampled_from([*KEYS, "bad"]), st.integers(0, 99)),
    st.tuples(st.sampled_from(["enqueue_delete", "delete"]), st.sampled_from([*KEYS, "bad"])),
    st.tuples(st.sampled_from(["load", "exists"]), st.sampled_from(KEYS)),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.003, 0.02, 0.5])),
    st.tuples(st.just("outage"), st.integers(1, 4)),
    st.tuples(st.sampled_from(["clear", "flush", "count"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    schedule=st.lists(storage_steps, max_size=40),
    batch_size=st.integers(1, 5),
    delay=st.sampled_from([0.0, 0.01]),
)
async def test_random_schedules_store_exactly_the_accepted_writes_in_order(
    schedule: list[tuple[Any, ...]], batch_size: int, delay: float
) -> None:
    """Whatever the interleaving, batching, outages and failing writes: reads see every accepted write,
    the store ends as the accepted writes applied in order (minus the ones that fail), and every write
    is counted once as stored or failed."""
    model: dict[str, int] = {}
    accepted = failing = 0
    config = DataStorageConfig(database_name="mem", batch_size=batch_size)
    async with MemoryStorage(config=config, delay=delay) as storage:
        storage.bad_keys.add("bad")
        for step in schedule:
            op = step[0]
            if op in ("enqueue_save", "save", "enqueue_delete", "delete"):
                key = step[1]
                accepted += 1
                failing += key == "bad"
                if key != "bad":
                    if op.endswith("save"):
                        model[key] = step[2]
                    else:
                        model.pop(key, None)
                if op == "enqueue_save":
                    storage.enqueue_save(key, step[2])
                elif op == "enqueue_delete":
                    storage.enqueue_delete(key)
                elif key == "bad":
                    with pytest.raises(ValueError, match="constraint"):
                        await (storage.save(key, step[2]) if op == "save" else storage.delete(key))
                elif op == "save":
                    await storage.save(key, step[2])
                else:
                    await storage.delete(key)
            elif op == "load":
                assert await storage.load(step[1]) == model.get(step[1])
            elif op == "exists":
                assert await storage.exists(step[1]) == (step[1] in model)
            elif op == "sleep":
                await anyio.sleep(step[1])
            elif op == "outage":
                storage.outage = step[1]
            elif op == "clear":
                await storage.clear()
                model.clear()
            elif op == "flush":
                await storage.flush()
                assert {k: int(v) for k, v in storage.data.items()} == model
                for key in KEYS:  # nothing written is still served from the waiting writes
                    assert await storage.load(key) == model.get(key)
            else:
                assert await storage.count() == len(model)
            stats = storage.stats()
            assert stats.pending + stats.active + stats.completed + stats.failed == accepted
    assert {k: int(v) for k, v in storage.data.items()} == model
    assert storage.stats() == AtomStats(0, 0, accepted - failing, failing)
    assert [len(b) for b in storage.batches] == [len(b) for b in storage.batches if len(b) <= batch_size]


# ------------------------------------------------------------------------------ review regressions


async def test_a_blip_long_after_a_spent_outage_gets_a_fresh_retry_budget() -> None:
    config = DataStorageConfig(database_name="mem", write_retry_timeout=1.0)
    async with MemoryStorage(config=config) as storage:
        storage.outage = 1_000
        with pytest.raises(ConnectionError):
            await storage.save("a", 1)  # the outage outlasts the budget
        storage.outage = 0
        await anyio.sleep(3600)
        storage.outage = 2  # an hour later, a short blip: retried, not failed at once
        await storage.save("b", 2)
        assert storage.data == {"b": "2"}


async def test_successful_reads_do_not_extend_a_write_outage_forever() -> None:
    config = DataStorageConfig(database_name="mem", write_retry_timeout=3.0)
    async with MemoryStorage(config=config) as storage:
        storage.outage = 1_000  # writes keep failing; reads (a dict lookup) keep working

        async def reader() -> None:
            while True:
                await storage.exists("x")
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            start = anyio.current_time()
            with pytest.raises(ConnectionError):
                await storage.save("a", 1)
            assert anyio.current_time() - start <= 3.0
            tg.cancel_scope.cancel()


async def test_a_load_requested_by_signal_that_fails_is_signalled() -> None:
    typed: TypedSignalSink[Any] = TypedSignalSink()
    async with MemoryStorage(typed, DataStorageConfig(database_name="orders")) as storage:
        storage.data["broken"] = "{not json"
        typed.emit("load.data.orders", None, key="broken")
        for _ in range(100):
            if typed.untyped.detect("error.data.orders:*"):
                break
            await anyio.sleep(0.01)
        with pytest.raises(json.JSONDecodeError):
            await storage.load("broken")  # a direct load raises, and is signalled too
    errors = [(e.signal, e.key) for e in typed.untyped.sense("error.data.orders:*")]
    assert errors == [("error.data.orders:JSONDecodeError", "broken")] * 2


async def test_a_load_requested_by_signal_with_a_key_the_backend_refuses_is_signalled() -> None:
    class Picky(MemoryStorage):
        def _check_key(self, key: str) -> None:
            if "/" in key:
                raise ValueError("no slashes")

    sink = SignalSink()
    async with Picky(sink, DataStorageConfig(database_name="orders")):
        sink.emit("load.data.orders", key="a/b")
    assert [(e.signal, e.key) for e in sink.sense("error.data.orders:*")] == [("error.data.orders:ValueError", "a/b")]


async def test_a_serializer_raising_an_unusual_error_type_keeps_the_cause_and_names_the_key() -> None:
    class Encoder:
        def dumps(self, value: Any) -> str:
            raise UnicodeEncodeError("ascii", "é", 0, 1, "not ascii")

        def loads(self, text: str) -> Any:
            return text

    async with MemoryStorage(serializer=Encoder()) as storage:
        with pytest.raises(ValueError, match="value for key 'k' cannot be stored") as caught:
            storage.enqueue_save("k", "é")
        assert isinstance(caught.value.__cause__, UnicodeEncodeError)


async def test_reads_see_an_accepted_clear_before_it_runs() -> None:
    async with MemoryStorage(delay=1.0) as storage:
        await storage.save("a", 1)
        storage.enqueue_save("b", 2)

        async def clear() -> None:
            assert await storage.clear() == 2

        async with anyio.create_task_group() as tg:
            tg.start_soon(clear)
            await anyio.sleep(0.01)  # the clear is accepted, the writer still busy with "b"
            assert await storage.load("a") is None and not await storage.exists("b")
            storage.enqueue_save("c", 3)  # a write after the clear is seen
            assert await storage.load("c") == 3
        await storage.flush()
        assert storage.data == {"c": "3"}


async def test_a_lingering_batch_is_written_as_soon_as_it_is_full() -> None:
    config = DataStorageConfig(database_name="mem", batch_timeout=5.0, batch_size=3)
    async with MemoryStorage(config=config) as storage:
        start = anyio.current_time()
        storage.enqueue_save("a", 1)
        await anyio.sleep(0.01)
        storage.enqueue_save("b", 2)
        storage.enqueue_save("c", 3)
        await storage.flush()
        assert anyio.current_time() - start == pytest.approx(0.01)
        assert [len(b) for b in storage.batches] == [3]


async def test_reads_run_at_most_max_concurrency_at_once() -> None:
    class SlowReads(MemoryStorage):
        running = peak = 0

        async def _read(self, key: str) -> str | None:
            self.running += 1
            self.peak = max(self.peak, self.running)
            await anyio.sleep(0.1)
            self.running -= 1
            return None

    async with SlowReads(config=DataStorageConfig(database_name="mem", max_concurrency=3)) as storage:
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(storage.load, str(i))
        assert storage.peak == 3


async def test_reads_after_close_are_refused_on_every_backend() -> None:
    async with MemoryStorage() as storage:
        await storage.save("a", 1)
    with pytest.raises(CoordinatorClosedError):
        await storage.load("a")
    with pytest.raises(CoordinatorClosedError):
        await storage.count()


@pytest.mark.parametrize(("key", "value", "named"), [("k\ud800", 1, "key"), ("k", "a\udc00", "value")])
async def test_a_lone_surrogate_fails_at_the_call_naming_key_or_value(key: str, value: Any, named: str) -> None:
    sink = SignalSink()
    async with MemoryStorage(sink) as storage:
        with pytest.raises(ValueError, match=f"^{named}.*lone surrogate"):
            storage.enqueue_save(key, value)
        with pytest.raises(ValueError, match=f"^{named}.*lone surrogate"):
            await storage.save_many([("ok", 1), (key, value)])
        assert storage.storage_stats().pending_writes == 0
    assert storage.data == {}
    assert not names(sink, "error.*")
