"""One process's view of the bridge, on a real PostgreSQL: gaps, payloads, overflow, cleanup, faults, bad input."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest

from ephemeral.core import SignalEvent, SignalSink
from ephemeral.core.lowlevel import next_id
from ephemeral.signals.postgres import PostgresSignalBridge


async def wait_for(check: Callable[[], bool], within: float = 5.0) -> None:
    """Return once ``check()`` holds (polling every 2 ms); fail after ``within`` seconds."""
    with anyio.fail_after(within):
        while True:
            if check():
                return
            await anyio.sleep(0.002)


@pytest.mark.real_time
async def test_a_row_committed_late_with_a_lower_id_is_still_delivered(postgres_dsn: str, table: str) -> None:
    a, b = SignalSink(), SignalSink()
    async with PostgresSignalBridge(a, postgres_dsn, table=table), PostgresSignalBridge(b, postgres_dsn, table=table):
        # A second writer takes an id and holds its transaction open while the bridge writes a higher id.
        slow = await anyio.to_thread.run_sync(lambda: psycopg.connect(postgres_dsn))
        try:
            insert = (
                f'INSERT INTO "{table}" (node_id, seq, kind, signal, key, operation_id, ts) '
                "VALUES ('slow', 1, 'emit', 'late.row', NULL, 7, now())"
            )
            await anyio.to_thread.run_sync(slow.execute, insert)
            a.emit("early.row")
            await wait_for(lambda: b.detect("early.row"))
            await anyio.sleep(0.1)
            assert not b.detect("late.row")
            await anyio.to_thread.run_sync(slow.commit)  # its NOTIFY-less commit is found by the gap re-query
            await wait_for(lambda: b.detect("late.row"))
            await wait_for(lambda: a.detect("late.row"))
        finally:
            await anyio.to_thread.run_sync(slow.close)


@dataclasses.dataclass(frozen=True)
class Order:
    id: str
    total: float


@pytest.mark.real_time
async def test_payloads_cross_as_json_and_unserialisable_ones_are_refused_once_per_name(
    postgres_dsn: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = SignalSink(), SignalSink()
    async with (
        PostgresSignalBridge(a, postgres_dsn, table=table) as bridge,
        PostgresSignalBridge(b, postgres_dsn, table=table),
    ):
        a.emit(SignalEvent("order.placed", next_id(), "o-1", a.now(), None, Order("o-1", 9.5)))
        with caplog.at_level(logging.ERROR, "ephemeral.signals.postgres"):
            for _ in range(3):
                a.emit(SignalEvent("order.odd", next_id(), None, a.now(), None, object()))
        await wait_for(lambda: b.detect("order.placed"))
        (event,) = b.sense("order.placed")
        assert event.payload == {"id": "o-1", "total": 9.5}
        assert event.timestamp.tzinfo is timezone.utc
        assert bridge.stats().refused == 3
        assert [r.getMessage().count("'order.odd'") for r in caplog.records] == [1]  # one report for the name
        await anyio.sleep(0.1)
        assert not b.detect("order.odd")


@pytest.mark.real_time
async def test_overflow_is_counted_and_signalled_once(postgres_dsn: str, table: str) -> None:
    a, b = SignalSink(10_000), SignalSink(10_000)
    async with (
        PostgresSignalBridge(a, postgres_dsn, table=table, max_queue=50) as bridge,
        PostgresSignalBridge(b, postgres_dsn, table=table),
    ):
        for _ in range(60):  # without yielding: the writer cannot take any
            a.emit("burst")
        assert bridge.stats().dropped == 10
        assert a.count("bridge.dropped") == 1
        await wait_for(lambda: b.count("burst") == 50)
        assert not b.detect("bridge.dropped")  # the bridge's own signals stay local
        assert bridge.stats().sent == 50


@pytest.mark.real_time
async def test_signals_emitted_on_other_threads_are_published(postgres_dsn: str, table: str) -> None:
    a, b = SignalSink(10_000), SignalSink(10_000)
    async with PostgresSignalBridge(a, postgres_dsn, table=table), PostgresSignalBridge(b, postgres_dsn, table=table):

        def burst() -> None:
            for _ in range(100):
                a.emit("threaded")

        threads = [threading.Thread(target=burst) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
        await wait_for(lambda: b.count("threaded") == 400)


@pytest.mark.real_time
async def test_rows_older_than_the_window_are_deleted(postgres_dsn: str, table: str, admin: Any) -> None:
    sink = SignalSink()
    async with PostgresSignalBridge(sink, postgres_dsn, table=table, window=5.0):
        pass
    insert = (
        f'INSERT INTO "{table}" (node_id, seq, kind, signal, key, operation_id, ts) '
        "SELECT 'old', g, 'emit', 'stale', NULL, g, now() - interval '1 minute' FROM generate_series(1, 2500) g"
    )
    await anyio.to_thread.run_sync(admin, insert)
    fresh = SignalSink()
    async with PostgresSignalBridge(fresh, postgres_dsn, table=table, window=5.0, cleanup_batch=1000):
        assert not fresh.detect("stale")  # not backfilled: older than the window
        count = f'SELECT count(*) FROM "{table}"'
        await wait_for(lambda: admin(count)[0][0] == 0)  # a short blocking query per look


@pytest.mark.real_time
async def test_leaving_closes_every_connection_even_on_an_error(
    postgres_dsn: str, table: str, admin: Any, application_name: str
) -> None:
    count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    sink = SignalSink()
    with pytest.raises(KeyError):
        async with PostgresSignalBridge(sink, postgres_dsn, table=table, application_name=application_name):
            assert (await anyio.to_thread.run_sync(admin, count, (application_name,)))[0][0] == 2
            raise KeyError("boom")
    with anyio.move_on_after(0.05):
        async with PostgresSignalBridge(sink, postgres_dsn, table=table, application_name=application_name):
            await anyio.sleep(1)
    await wait_for(lambda: admin(count, (application_name,))[0][0] == 0)
    sink.emit("after.close")  # the subscriptions are gone


@pytest.mark.real_time
async def test_an_outer_cancel_scope_at_any_moment_closes_everything(
    postgres_dsn: str, table: str, admin: Any, application_name: str
) -> None:
    count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    sink, other = SignalSink(10_000), SignalSink(10_000)
    async with PostgresSignalBridge(other, postgres_dsn, table=table):
        for deadline in (0.0, 0.005, 0.02, 0.05, 0.1, 0.2):  # in entry, the backfill, mid-batch, idle
            with anyio.move_on_after(deadline):
                async with PostgresSignalBridge(sink, postgres_dsn, table=table, application_name=application_name):
                    for _ in range(50):
                        sink.emit("while.cancelled")
                        await anyio.sleep(0.001)
        await wait_for(lambda: admin(count, (application_name,))[0][0] == 0)
        rows = f"SELECT count(*) FROM \"{table}\" WHERE signal = 'while.cancelled'"
        written = admin(rows)[0][0]
        await anyio.sleep(0.2)
        assert admin(rows)[0][0] == written  # nothing is written after the cancellation
        await wait_for(lambda: other.count("while.cancelled") == written)  # what was written arrives, once
    sink.emit("after")  # no subscriber left behind


@pytest.mark.real_time
async def test_an_unreachable_server_fails_entry_with_connection_error() -> None:
    bridge = PostgresSignalBridge(SignalSink(), "postgresql://postgres@127.0.0.1:1/test", connect_timeout=0.5)
    with pytest.raises(ConnectionError, match="not reachable"):
        async with bridge:
            pass


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sink": None}, TypeError, "sink"),
        ({"conninfo": 5}, TypeError, "conninfo"),
        ({"conninfo": "nonsense ="}, ValueError, "conninfo"),
        ({"table": "bad;name"}, ValueError, "table"),
        ({"channel": "bad name"}, ValueError, "channel"),
        ({"window": 0}, ValueError, "window"),
        ({"window": timedelta(seconds=-1)}, ValueError, "window"),
        ({"max_queue": 0}, ValueError, "max_queue"),
        ({"max_queue": 1.5}, TypeError, "max_queue"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"node_id": 3}, TypeError, "node_id"),
        ({"node_id": " "}, ValueError, "node_id"),
        ({"publish": 3}, TypeError, "publish"),
        ({"subscribe": [1]}, TypeError, "subscribe"),
        ({"application_name": 1}, TypeError, "application_name"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    arguments: dict[str, Any] = {"sink": SignalSink(), "conninfo": "postgresql://postgres@127.0.0.1/test", **kwargs}
    with pytest.raises(error, match=match):
        PostgresSignalBridge(arguments.pop("sink"), arguments.pop("conninfo"), **arguments)


@pytest.mark.real_time
async def test_a_key_postgresql_cannot_hold_is_refused_without_blocking_the_queue(
    postgres_dsn: str, table: str
) -> None:
    a, b = SignalSink(), SignalSink()
    async with (
        PostgresSignalBridge(a, postgres_dsn, table=table) as bridge,
        PostgresSignalBridge(b, postgres_dsn, table=table),
    ):
        a.emit("odd.key", "nul\x00inside")
        a.emit("after.odd")
        await wait_for(lambda: b.detect("after.odd"))
        assert not b.detect("odd.key")
        assert bridge.stats().refused == 1


@pytest.mark.real_time
async def test_a_second_bridge_of_one_sink_to_the_same_table_is_refused(postgres_dsn: str, table: str) -> None:
    sink = SignalSink()
    async with PostgresSignalBridge(sink, postgres_dsn, table=table):
        with pytest.raises(RuntimeError, match="already carries this sink's signals"):
            async with PostgresSignalBridge(sink, postgres_dsn, table=table):
                pass
    async with PostgresSignalBridge(sink, postgres_dsn, table=table):  # free again once the first left
        pass


@pytest.mark.real_time
async def test_a_retraction_removes_on_other_nodes_exactly_what_it_removed_here(postgres_dsn: str, table: str) -> None:
    a, b = SignalSink(), SignalSink()
    async with (
        PostgresSignalBridge(a, postgres_dsn, table=table, subscribe="none.*"),  # a never sees b's signals
        PostgresSignalBridge(b, postgres_dsn, table=table, publish="none.*"),
    ):
        b.emit("pause", "b-own")
        a.emit("pause")
        a.emit("pause", "keyed")
        await wait_for(lambda: b.count("pause") == 3)
        assert a.retract("pause", "keyed") == 1
        await wait_for(lambda: b.count("pause") == 2)
        assert a.retract("pause") == 1  # a's keyless signal: the only one a holds
        await wait_for(lambda: b.count("pause") == 1)
        await anyio.sleep(0.2)
        assert [event.key for event in b.sense("pause")] == ["b-own"]  # not every key of the name


@pytest.mark.real_time
async def test_names_keys_and_operation_ids_cross_unchanged_whatever_they_hold(postgres_dsn: str, table: str) -> None:
    a, b = SignalSink(), SignalSink()
    async with PostgresSignalBridge(a, postgres_dsn, table=table), PostgresSignalBridge(b, postgres_dsn, table=table):
        plain = [("p.one", None, next_id()), ("p.two", "k", next_id()), ("p.one", "k2", -5)]
        odd = [
            ("o.sep\x1fname", None, next_id()),
            ("o.key", "", next_id()),
            ("o.key", "\x1e", next_id()),
            ("o.key", "a\x1fb", next_id()),
            ("o.plain", None, next_id()),
        ]
        for prefix, batch in (("p.*", plain), ("o.*", odd)):
            for name, key, operation_id in batch:  # one batch: no yield in between
                a.emit(SignalEvent(name, operation_id, key, a.now()))
            await wait_for(lambda prefix=prefix, batch=batch: b.count(prefix) == len(batch))  # type: ignore[misc]

            def seen(sink: SignalSink, prefix: str = prefix) -> list[tuple[Any, ...]]:
                return sorted(
                    (e.signal, e.key or "", e.key is None, e.operation_id, e.timestamp) for e in sink.sense(prefix)
                )

            assert seen(b) == seen(a)


@pytest.mark.real_time
async def test_emits_and_retractions_go_out_in_the_order_they_happened(postgres_dsn: str, table: str) -> None:
    a, b = SignalSink(), SignalSink()
    async with (
        PostgresSignalBridge(a, postgres_dsn, table=table, subscribe="none.*"),
        PostgresSignalBridge(b, postgres_dsn, table=table, publish="none.*") as receiver,
    ):
        a.emit("flap", "1")  # without yielding: the tap still holds it when the retraction is captured
        assert a.retract("flap", "1") == 1
        a.emit("flap", "2")
        await wait_for(lambda: receiver.stats().received == 3)
        assert [event.key for event in b.sense("flap")] == ["2"]
