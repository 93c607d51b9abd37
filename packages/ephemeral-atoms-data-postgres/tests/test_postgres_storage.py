"""PostgresDataStorageAtom against a real PostgreSQL server, on asyncio and trio.

Every database test runs on the real clock (``real_time``): the work happens on real sockets in worker
threads. The outage tests put a small TCP proxy between the atom and the server and stop it.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import psycopg
import pydantic
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ephemeral.atoms.data import DataStorageConfig
from ephemeral.atoms.data_postgres import PostgresDataStorageAtom
from ephemeral.core import AtomStats, SignalSink, TypedSignalSink
from ephemeral.core.testing import TcpProxy, tcp_proxy as core_tcp_proxy

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1: a connection would fail
README = Path(__file__).parent.parent / "README.md"

real_time = pytest.mark.real_time

#: The ``admin`` fixture: runs SQL on its own connection, returns the rows.
Admin = Callable[[str, "tuple[Any, ...] | None"], list[tuple[Any, ...]]]


@dataclass
class Order:
    id: str
    total: Decimal


class Customer(pydantic.BaseModel):
    name: str
    city: str
    tags: list[str] = []


def names(sink: SignalSink, pattern: str = "*") -> list[tuple[str, str | None]]:
    return [(e.signal, e.key) for e in sink.sense(pattern)]


def storage(
    dsn: str, table: str, sink: SignalSink | TypedSignalSink[Any] | None = None, **kwargs: Any
) -> PostgresDataStorageAtom[str, Any]:
    config = kwargs.pop("config", None) or DataStorageConfig(database_name=table)
    return PostgresDataStorageAtom(sink, config, dsn, **kwargs)


async def sql(admin: Admin, query: str, *params: Any) -> list[tuple[Any, ...]]:
    return await anyio.to_thread.run_sync(admin, query, params or None)


async def poll(read: Callable[[], Awaitable[int]], done: Callable[[int], bool]) -> None:
    """Read a server-side figure every 10 ms until ``done`` holds (nothing local could signal it)."""
    with anyio.fail_after(5):
        while True:
            if done(await read()):
                return
            await anyio.sleep(0.01)


# -- the seed example and the basic operations ------------------------------------------------------


@real_time
async def test_readme_example_stores_and_loads_an_order(postgres_dsn: str, table: str, admin: Admin) -> None:
    """The README example, as written (on a unique table): the loaded Order equals the saved one."""
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = block.replace('database_name="orders"', f'database_name="{table}"')
    namespace: dict[str, Any] = {}
    exec(compile(block, str(README), "exec", dont_inherit=True), namespace)
    loaded = await namespace["main"](postgres_dsn)
    assert loaded == namespace["Order"](id="order-123", total=Decimal("42.00"))
    rows = await sql(admin, f'SELECT key, value FROM "public"."{table}"')
    assert rows == [("order-123", {"id": "order-123", "total": "42.00"})]


@real_time
async def test_save_load_exists_delete_count_list_keys_clear(postgres_dsn: str, table: str) -> None:
    """The whole key/value surface against the real table, with keys listed in code point order."""
    async with storage(postgres_dsn, table, value_type=Order) as store:
        assert await store.load("missing") is None
        assert not await store.exists("missing")
        await store.save("b", Order("b", Decimal("2.50")))
        await store.save_many(
            [("a", Order("a", Decimal(1))), ("Z", Order("Z", Decimal(3))), ("é", Order("é", Decimal(0)))]
        )
        assert await store.load("b") == Order("b", Decimal("2.50"))
        assert await store.exists("a")
        assert await store.count() == 4
        assert await store.list_keys() == ["Z", "a", "b", "é"]  # sorted as Python sorts, whatever the collation
        await store.delete("a")
        await store.delete("never-there")
        assert not await store.exists("a")
        assert await store.count() == 3
        assert await store.clear() == 3
        assert await store.count() == 0
        assert store.stats() == AtomStats(0, 0, 6, 0)  # saves and deletes


@real_time
async def test_a_save_replaces_the_value_and_moves_updated_at(postgres_dsn: str, table: str, admin: Admin) -> None:
    """An upsert keeps one row per key, replaces its value, keeps created_at and advances updated_at."""
    async with storage(postgres_dsn, table) as store:
        await store.save("k", {"version": 1})
        await anyio.sleep(0.01)
        await store.save("k", {"version": 2})
        assert await store.load("k") == {"version": 2}
    ((value, created, updated),) = await sql(admin, f'SELECT value, created_at, updated_at FROM "public"."{table}"')
    assert value == {"version": 2}
    assert updated > created


@real_time
async def test_writes_under_load_share_transactions_and_land_in_order(postgres_dsn: str, table: str) -> None:
    """2,000 fire-and-forget saves over 50 keys, with deletes and re-saves in between, end in acceptance order,
    in far fewer transactions than saves."""
    async with storage(postgres_dsn, table) as store:
        for i in range(2000):
            store.enqueue_save(f"k{i % 50}", i)
            if i % 50 == 7:
                store.enqueue_delete(f"k{i % 50}")  # saved then deleted: gone until saved again
        store.enqueue_save("gone", 1)
        store.enqueue_delete("gone")
        store.enqueue_delete("back")
        store.enqueue_save("back", 2)
        await store.flush()
        stats = store.storage_stats()
        assert stats.written == 2000 + 40 + 4 and stats.failed_writes == 0
        assert stats.batches < 2000 / 5 and stats.largest_batch > 10
        expected = {f"k{j}": 1950 + j for j in range(50) if j != 7} | {"back": 2}
        assert {key: await store.load(key) for key in await store.list_keys()} == expected


@real_time
@pytest.mark.parametrize("batching", [True, False])
async def test_each_batch_is_one_transaction(postgres_dsn: str, table: str, admin: Admin, batching: bool) -> None:
    """Rows stored together share their transaction id, even when deletes split a batch into several
    statements: as many transactions as batches, one per write without batching."""
    config = DataStorageConfig(database_name=table, enable_batching=batching)
    async with storage(postgres_dsn, table, config=config) as store:
        for i in range(300):
            store.enqueue_save(f"k{i}", i)
            if i % 10 == 9:
                store.enqueue_delete(f"absent{i}")
        await store.flush()
        batches = store.storage_stats().batches
    ((transactions,),) = await sql(admin, f'SELECT count(DISTINCT xmin::text) FROM "public"."{table}"')
    assert transactions == (batches if batching else 300)  # (the deletes of absent keys leave no row)
    assert batches <= 20 if batching else batches == 330


@real_time
async def test_concurrent_reads_run_beside_the_writer(postgres_dsn: str, table: str) -> None:
    """max_concurrency readers and the writer share the pool (max_concurrency + 1 connections), none starves."""
    config = DataStorageConfig(database_name=table, max_concurrency=4)
    async with storage(postgres_dsn, table, config=config, pool_min_size=0) as store:
        await store.save_many([(f"k{i}", i) for i in range(50)])
        results: dict[str, Any] = {}

        async def read(i: int) -> None:
            results[f"k{i}"] = await store.load(f"k{i}")

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(200):
                    store.enqueue_save(f"w{i}", i)
                    tg.start_soon(read, i % 50)
            await store.flush()
        assert results == {f"k{i}": i for i in range(50)}
        assert await store.count() == 250


@real_time
async def test_without_batching_each_write_is_its_own_transaction(postgres_dsn: str, table: str) -> None:
    """enable_batching=False: one transaction per save, the same final state."""
    config = DataStorageConfig(database_name=table, enable_batching=False)
    async with storage(postgres_dsn, table, config=config) as store:
        for i in range(60):
            store.enqueue_save(f"k{i % 6}", i)
        await store.flush()
        assert store.storage_stats().batches == 60
        assert await store.load("k5") == 59


@real_time
async def test_a_pydantic_model_round_trips(postgres_dsn: str, table: str) -> None:
    """A pydantic model saved as JSONB comes back as an equal model."""
    customer = Customer(name='Dana "D" O\'Neil', city="Zürich", tags=["vip", "new"])
    async with storage(postgres_dsn, table, value_type=Customer) as store:
        await store.save("c1", customer)
        loaded = await store.load("c1")
    assert isinstance(loaded, Customer) and loaded == customer


class Semicolons:
    """A serializer whose text is not JSON: ``name;city``."""

    def dumps(self, value: Customer) -> str:
        return f"{value.name};{value.city}"

    def loads(self, text: str) -> Customer:
        name, city = text.split(";")
        return Customer(name=name, city=city)


@real_time
async def test_jsonb_json_and_text_columns(postgres_dsn: str, table: str, admin: Admin) -> None:
    """use_jsonb picks JSONB (normalised), JSON (text kept as written) or, with a serializer, TEXT."""
    value = {"b": 1, "a": [1, 2]}
    async with storage(postgres_dsn, table) as store:
        assert store.value_column_type == "jsonb"
        await store.save("k", value)
        assert await store.load("k") == value
    json_table = f"{table}_json"
    text_table = f"{table}_text"
    try:
        async with storage(postgres_dsn, json_table, use_jsonb=False) as store:
            assert store.value_column_type == "json"
            await store.save("k", value)
            assert await store.load("k") == value
        async with storage(postgres_dsn, text_table, use_jsonb=False, serializer=Semicolons()) as store:
            assert store.value_column_type == "text"
            await store.save("k", Customer(name="Ana", city="Porto"))
            assert await store.load("k") == Customer(name="Ana", city="Porto")
        types = await sql(
            admin,
            "SELECT c.relname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'value' AND c.relname = ANY(%s) "
            "ORDER BY c.relname",
            [table, json_table, text_table],
        )
        assert types == [(table, "jsonb"), (json_table, "json"), (text_table, "text")]
        stored = await sql(
            admin,
            f'SELECT (SELECT value::text FROM "public"."{table}"), (SELECT value::text FROM "public"."{json_table}")',
        )
        assert stored == [('{"a": [1, 2], "b": 1}', '{"b":1,"a":[1,2]}')]  # jsonb normalises, json keeps the text
        assert await sql(admin, f'SELECT value FROM "public"."{text_table}"') == [("Ana;Porto",)]
    finally:
        await sql(admin, f'DROP TABLE IF EXISTS "public"."{json_table}", "public"."{text_table}"')


@real_time
async def test_non_json_text_into_a_jsonb_column_fails_that_write_only(postgres_dsn: str, table: str) -> None:
    """A serializer whose text is not JSON cannot fill a JSONB column: the write fails (signalled), nothing hangs."""
    sink = SignalSink()
    async with storage(postgres_dsn, table, sink, serializer=Semicolons()) as store:
        with pytest.raises(psycopg.DataError):
            await store.save("k", Customer(name="Ana", city="Porto"))
        assert store.stats().failed == 1
    assert ("error.data." + table + ":InvalidTextRepresentation", "k") in names(sink)


@real_time
async def test_one_bad_write_in_a_batch_fails_alone(postgres_dsn: str, table: str, admin: Admin) -> None:
    """A write the server refuses (a CHECK constraint) fails alone; the rest of its batch is stored."""
    sink = SignalSink()
    async with storage(postgres_dsn, table, sink) as store:
        await sql(admin, f'ALTER TABLE "public"."{table}" ADD CONSTRAINT no_bad CHECK (key <> \'bad\')')
        for i in range(20):
            store.enqueue_save(f"k{i}", i)
        store.enqueue_save("bad", "refused")
        for i in range(20, 40):
            store.enqueue_save(f"k{i}", i)
        await store.flush()
        signalled = names(sink, f"*.data.{table}:*")  # to explain a failure below
        assert await store.count() == 40, signalled
        assert store.stats() == AtomStats(0, 0, 40, 1), signalled
        assert store.storage_stats().retries == 0, signalled  # a permanent error is not retried as an outage
        with pytest.raises(ValueError, match="NUL"):
            store.enqueue_save("a\x00b", 1)
    assert [signal for signal, key in names(sink, "error.data.*") if key == "bad"] == [
        f"error.data.{table}:CheckViolation"
    ]


# -- query_by_json_path ------------------------------------------------------------------------------


@real_time
async def test_query_by_json_path_walks_nested_keys_with_parameters(postgres_dsn: str, table: str) -> None:
    """Nested paths (dotted or as keys), quotes and backslashes in values, containment of objects and lists."""
    tricky = "O'Brien \"the\" \\ man'; DROP TABLE x; --"
    async with storage(postgres_dsn, table, value_type=dict[str, Any]) as store:
        store.enqueue_save("1", {"customer": {"address": {"city": "Paris"}, "name": tricky}, "tags": ["a", "b"]})
        store.enqueue_save("2", {"customer": {"address": {"city": "Lyon"}, "name": "Bo"}, "tags": ["b"]})
        store.enqueue_save("3", {"customer": {"address": {"city": "Paris"}, "name": "Cy"}, "a.b": {"c": 1}})
        store.enqueue_save("4", {"city": "Paris"})  # the top level is not the path
        paris = await store.query_by_json_path("customer.address.city", "Paris")  # sees writes not yet stored
        assert list(paris) == ["1", "3"]
        assert paris["3"]["customer"]["name"] == "Cy"
        assert list(await store.query_by_json_path(["customer", "name"], tricky)) == ["1"]
        assert list(await store.query_by_json_path(("a.b", "c"), 1)) == ["3"]  # a key with a dot
        assert list(await store.query_by_json_path("customer.address", {"city": "Lyon"})) == ["2"]
        assert list(await store.query_by_json_path("tags", ["b"])) == ["1", "2"]  # arrays match by containment
        assert list(await store.query_by_json_path("customer.address.city", "Paris", limit=1)) == ["1"]
        assert await store.query_by_json_path("customer.address.city", "Nowhere") == {}
        with pytest.raises(ValueError, match="empty segment"):
            await store.query_by_json_path("customer..city", "Paris")
        with pytest.raises(TypeError, match="path must be"):
            await store.query_by_json_path([], "Paris")
        with pytest.raises(ValueError, match="limit"):
            await store.query_by_json_path("city", "Paris", limit=0)
        assert await store.count() == 4  # the tricky value changed no SQL


@real_time
async def test_query_by_json_path_serialises_values_as_saves_do(postgres_dsn: str, table: str) -> None:
    """Dataclass and decimal values in the query are turned into JSON the way stored values were."""
    async with storage(postgres_dsn, table, value_type=Order) as store:
        await store.save("o1", Order("o1", Decimal("42.00")))
        await store.save("o2", Order("o2", Decimal("7")))
        assert await store.query_by_json_path("total", Decimal("42.00")) == {"o1": Order("o1", Decimal("42.00"))}


async def test_query_by_json_path_on_a_json_column_is_refused() -> None:
    """A JSON (not JSONB) column has no containment operator: a clear error, before any SQL."""
    store = PostgresDataStorageAtom[str, Any](None, DataStorageConfig(database_name="q"), UNREACHABLE, use_jsonb=False)
    with pytest.raises(RuntimeError, match="needs a JSONB value column"):
        await store.query_by_json_path("a", 1)


# -- lifecycle ----------------------------------------------------------------------------------------


@real_time
async def test_an_existing_table_with_another_column_type_is_refused_on_entry(postgres_dsn: str, table: str) -> None:
    """Opening a JSONB table as JSON says so at entry instead of failing later."""
    async with storage(postgres_dsn, table):
        pass
    with pytest.raises(ValueError, match="value column of type jsonb"):
        async with storage(postgres_dsn, table, use_jsonb=False):
            pass


@real_time
async def test_an_existing_table_needs_only_read_and_write_rights(postgres_dsn: str, table: str, admin: Admin) -> None:
    """A role that may not create anything in the schema still opens, writes and reads a table made for it."""
    schema = f"s_{uuid.uuid4().hex[:12]}"
    role = f"ephemeral_rw_{uuid.uuid4().hex[:12]}"
    try:
        async with storage(postgres_dsn, table, schema=schema):
            pass  # the schema and the table now exist, owned by the admin
        await sql(admin, f'CREATE ROLE "{role}" LOGIN')
        await sql(admin, f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        await sql(admin, f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{schema}"."{table}" TO "{role}"')
        async with storage(make_conninfo(postgres_dsn, user=role), table, schema=schema) as store:
            await store.save("k", {"by": role})
            assert await store.load("k") == {"by": role}
            assert await store.clear() == 1
    finally:
        await sql(admin, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await sql(admin, f'DROP ROLE IF EXISTS "{role}"')


@real_time
async def test_atoms_starting_together_create_the_table_once(postgres_dsn: str, table: str) -> None:
    """Several atoms entering at once on a missing table all succeed (creation is serialised)."""
    entered: list[bool] = []

    async def enter(i: int) -> None:
        async with storage(postgres_dsn, table) as store:
            await store.save(f"k{i}", i)
            entered.append(True)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(enter, i)
    assert len(entered) == 6


@real_time
async def test_a_schema_is_created_and_names_are_quoted(postgres_dsn: str, admin: Admin) -> None:
    """A missing schema is created; mixed-case names keep their case because they are quoted."""
    schema = f"S_{uuid.uuid4().hex[:12]}"
    try:
        async with storage(postgres_dsn, "Orders", schema=schema) as store:
            await store.save("k", 1)
            assert (store.schema, store.table_name) == (schema, "Orders")
        assert await sql(admin, f'SELECT value FROM "{schema}"."Orders"') == [(1,)]
        indexes = await sql(admin, "SELECT indexname FROM pg_indexes WHERE schemaname = %s ORDER BY 1", schema)
        assert indexes == [("Orders_pkey",), ("idx_Orders_updated",)]
    finally:
        await sql(admin, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@real_time
async def test_a_long_table_name_gets_a_short_unique_index_name(postgres_dsn: str, admin: Admin) -> None:
    """Index names stay within PostgreSQL's 63 characters (no silent truncation) for any table name."""
    table = "t" + uuid.uuid4().hex + "x" * 30  # 63 characters
    try:
        async with storage(postgres_dsn, table) as store:
            await store.save("k", 1)
        ((index,),) = await sql(
            admin, "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE 'idx%%'", table
        )
        assert len(index) <= 63 and index.endswith("_updated")
    finally:
        await sql(admin, f'DROP TABLE IF EXISTS "public"."{table}"')


@pytest.mark.parametrize("bad", ['orders"; DROP TABLE x; --', "my orders", "a;b", "o'rders", "a.b", "", "x" * 64])
def test_bad_table_or_schema_names_are_refused_before_any_connection(bad: str) -> None:
    """A table or schema name with a quote, semicolon, space, dot, ... raises ValueError at construction
    (the conninfo points nowhere: connecting would raise something else)."""
    config = DataStorageConfig(database_name="orders")
    with pytest.raises(ValueError, match="table_name must be a SQL identifier"):
        PostgresDataStorageAtom(None, config, UNREACHABLE, table_name=bad)
    with pytest.raises(ValueError, match="schema must be a SQL identifier"):
        PostgresDataStorageAtom(None, config, UNREACHABLE, schema=bad)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"conninfo": ""}, ValueError, "conninfo must not be empty"),
        ({"conninfo": 5432}, TypeError, "conninfo must be a str"),
        ({"conninfo": "host=x port"}, ValueError, "conninfo is not a valid"),
        ({"conninfo": "postgresql://h/d?bogus=1"}, ValueError, "conninfo is not a valid"),
        ({"use_jsonb": "yes"}, TypeError, "use_jsonb"),
        ({"pool_min_size": -1}, ValueError, "pool_min_size"),
        ({"pool_min_size": 3, "pool_max_size": 2}, ValueError, "pool_max_size"),
        ({"pool_max_size": 0}, ValueError, "pool_max_size"),
        ({"connect_timeout": 0}, ValueError, "connect_timeout"),
        ({"connect_timeout": "10"}, TypeError, "connect_timeout"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    conninfo = kwargs.pop("conninfo", UNREACHABLE)
    with pytest.raises(error, match=match):
        PostgresDataStorageAtom(None, DataStorageConfig(database_name="orders"), conninfo, **kwargs)


@real_time
async def test_entry_fails_clearly_when_the_server_cannot_be_reached() -> None:
    """No server within connect_timeout: entry raises ConnectionError carrying the cause, and leaves nothing open."""
    store = PostgresDataStorageAtom[str, Any](
        None, DataStorageConfig(database_name="orders"), UNREACHABLE, connect_timeout=0.3
    )
    start = anyio.current_time()
    with pytest.raises(ConnectionError, match=r"could not reach PostgreSQL within connect_timeout=0\.3s") as caught:
        async with store:
            pass
    assert anyio.current_time() - start < 2.0
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    with pytest.raises(RuntimeError, match="enter the storage first"):
        store.enqueue_save("k", 1)


# -- lost connections -----------------------------------------------------------------------------------


@real_time
async def test_saves_survive_their_connections_being_terminated(postgres_dsn: str, table: str, admin: Admin) -> None:
    """pg_terminate_backend on every connection of the atom while saves wait: all of them land, retried."""
    application = f"ephemeral_test_{uuid.uuid4().hex[:12]}"
    sink = SignalSink(max_capacity=5000)
    conninfo = make_conninfo(postgres_dsn, application_name=application)
    async with storage(conninfo, table, sink) as store:
        await store.save("warm", -1)
        for i in range(500):
            store.enqueue_save(f"k{i % 100}", i)
        killed = await sql(
            admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", application
        )
        assert killed and all(ok for (ok,) in killed)
        for i in range(500, 1000):
            store.enqueue_save(f"k{i % 100}", i)
        with anyio.fail_after(15):
            await store.flush()
        assert store.storage_stats().failed_writes == 0
        assert await store.count() == 101
        assert [await store.load(f"k{j}") for j in range(100)] == [900 + j for j in range(100)]
    retries = names(sink, f"retrying.data.{table}:*")
    assert retries and store.storage_stats().retries == len(retries)


@real_time
async def test_after_a_lost_connection_the_dead_idle_ones_are_dropped_at_once(
    postgres_dsn: str, table: str, admin: Admin
) -> None:
    """A restart kills every pooled connection: the first failure checks the idle ones, so one retry suffices
    instead of one failed attempt per dead connection."""
    application = f"ephemeral_test_{uuid.uuid4().hex[:12]}"
    sink = SignalSink()
    conninfo = make_conninfo(postgres_dsn, application_name=application)

    async def connections() -> int:
        rows = await sql(admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", application)
        return int(rows[0][0])

    async with storage(conninfo, table, sink, pool_min_size=4, pool_max_size=4) as store:
        await poll(connections, lambda n: n == 4)  # the pool fills in the background
        await sql(
            admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", application
        )
        await poll(connections, lambda n: n == 0)  # terminated backends take a moment to exit
        await store.save("k", 1)
        assert await store.load("k") == 1
        assert store.storage_stats().retries == 1
    assert len(names(sink, f"retrying.data.{table}:*")) == 1


@asynccontextmanager
async def tcp_proxy(dsn: str) -> AsyncIterator[TcpProxy]:
    params = conninfo_to_dict(dsn)
    async with core_tcp_proxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)) as proxy:
        yield proxy


@real_time
async def test_saves_accepted_during_an_outage_land_once_the_server_is_back(postgres_dsn: str, table: str) -> None:
    """The server goes away for a second (every connection closed, new ones refused): every save accepted
    meanwhile lands once it is back, exactly once, in order."""
    sink = SignalSink()
    async with tcp_proxy(postgres_dsn) as proxy:
        conninfo = make_conninfo(postgres_dsn, host="127.0.0.1", port=str(proxy.port))
        async with storage(conninfo, table, sink, connect_timeout=5) as store:
            await store.save("before", 0)
            await proxy.stop()
            loaded: list[Any] = []

            async def load_during_the_outage() -> None:
                loaded.append(await store.load("before"))  # not pending: a read from the server, retried

            async with anyio.create_task_group() as tg:
                tg.start_soon(load_during_the_outage)
                await anyio.sleep(0.1)
                for i in range(300):
                    store.enqueue_save(f"k{i % 30}", i)
                store.enqueue_delete("before")
                await anyio.sleep(0.9)
                assert store.stats().completed == 1 and loaded == []  # nothing got through
                await proxy.start()
                with anyio.fail_after(15):
                    await store.flush()
            assert loaded == [0]
            assert store.stats() == AtomStats(0, 0, 302, 0)
            assert await store.list_keys() == sorted(f"k{j}" for j in range(30))
            assert [await store.load(f"k{j}") for j in range(30)] == [270 + j for j in range(30)]
    assert names(sink, f"retrying.data.{table}:*")
    assert not names(sink, f"error.data.{table}:*")


@real_time
async def test_entry_waits_for_a_server_that_is_starting(postgres_dsn: str, table: str) -> None:
    """Entry retries refused connections until connect_timeout: a server coming up meanwhile is used."""
    async with tcp_proxy(postgres_dsn) as proxy:
        await proxy.stop()  # the port is known, and refuses connections
        conninfo = make_conninfo(postgres_dsn, host="127.0.0.1", port=str(proxy.port))
        async with anyio.create_task_group() as tg:

            async def start_soon() -> None:
                await anyio.sleep(0.4)
                await proxy.start()

            tg.start_soon(start_soon)
            start = anyio.current_time()
            async with storage(conninfo, table, connect_timeout=5) as store:
                assert anyio.current_time() - start >= 0.4
                await store.save("k", 1)
                assert await store.load("k") == 1


@real_time
async def test_an_outage_longer_than_the_retry_budget_fails_the_saves_and_says_so(
    postgres_dsn: str, table: str
) -> None:
    """write_retry_timeout shorter than the outage: the waiting saves fail, counted and signalled, promptly;
    once the server is back, saves go through again."""
    sink = SignalSink()
    config = DataStorageConfig(database_name=table, write_retry_timeout=0.3)
    async with tcp_proxy(postgres_dsn) as proxy:
        conninfo = make_conninfo(postgres_dsn, host="127.0.0.1", port=str(proxy.port))
        async with storage(conninfo, table, sink, config=config, connect_timeout=0.5) as store:
            await store.save("before", 0)
            await proxy.stop()
            for i in range(20):
                store.enqueue_save(f"k{i}", i)
            start = anyio.current_time()
            with anyio.fail_after(5), pytest.raises(psycopg.OperationalError):
                await store.save("waited", 1)
            assert anyio.current_time() - start < 3.0
            assert store.stats() == AtomStats(0, 0, 1, 21)
            await proxy.start()
            with anyio.fail_after(10):
                await store.save("after", 2)
            assert await store.list_keys() == ["after", "before"]
    errors = names(sink, f"error.data.{table}:*")
    assert {key for _, key in errors} == {f"k{i}" for i in range(20)} | {"waited"}
    assert names(sink, f"retrying.data.{table}:*")


@real_time
async def test_a_backlog_fails_within_the_budget_plus_one_connect_timeout(postgres_dsn: str, table: str) -> None:
    """300 writes in 30 batches queued during an outage all fail about write_retry_timeout + connect_timeout
    after it began, not one connect_timeout per batch (which would take 30 s here)."""
    config = DataStorageConfig(database_name=table, write_retry_timeout=0.5, batch_size=10)
    async with tcp_proxy(postgres_dsn) as proxy:
        conninfo = make_conninfo(postgres_dsn, host="127.0.0.1", port=str(proxy.port))
        async with storage(conninfo, table, config=config, connect_timeout=1.0) as store:
            await store.save("before", 0)
            await proxy.stop()
            start = anyio.current_time()
            for i in range(299):
                store.enqueue_save(f"k{i}", i)
            with anyio.fail_after(40), pytest.raises(psycopg.OperationalError):
                await store.save("waited", 1)
            elapsed = anyio.current_time() - start
            assert elapsed < 0.5 + 1.0 + 1.0, elapsed
            assert store.stats() == AtomStats(0, 0, 1, 300)
            await proxy.start()
            with anyio.fail_after(10):
                await store.save("after", 2)
            assert await store.list_keys() == ["after", "before"]


# -- review regressions -------------------------------------------------------------------------------


@real_time
async def test_a_row_lock_held_elsewhere_fails_the_write_within_the_budget_and_close_is_prompt(
    postgres_dsn: str, table: str
) -> None:
    """Statements and lock waits are bounded by write_retry_timeout: a held lock neither stalls the writer
    nor the shutdown past it, and the write fails (signalled) instead of waiting for the lock holder."""
    sink = SignalSink()
    config = DataStorageConfig(database_name=table, write_retry_timeout=1.0)
    async with storage(postgres_dsn, table, sink, config=config) as store:
        await store.save("k", 1)
        holder = await anyio.to_thread.run_sync(lambda: psycopg.connect(postgres_dsn))
        try:
            await anyio.to_thread.run_sync(
                lambda: holder.execute(f'SELECT * FROM "public"."{table}" WHERE key = %s FOR UPDATE', ("k",))
            )
            start = anyio.current_time()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await store.save("k", 2)
            assert anyio.current_time() - start < 3.5
        finally:
            await anyio.to_thread.run_sync(holder.close)
        await store.save("k", 3)  # the lock is gone: writes go through again
        assert await store.load("k") == 3
    assert ("error.data." + table + ":LockNotAvailable", "k") in names(sink)


@real_time
async def test_a_connection_the_server_closed_for_idleness_is_replaced(postgres_dsn: str, table: str) -> None:
    """idle_session_timeout (57P05) closes pooled connections: the next save reconnects and lands."""
    dsn = make_conninfo(postgres_dsn, options="-c idle_session_timeout=200")
    async with storage(dsn, table) as store:
        await store.save("a", 1)
        await anyio.sleep(0.6)  # the server closes the idle pooled connection
        await store.save("b", 2)
        assert await store.load("b") == 2
        assert store.stats().failed == 0


@real_time
async def test_values_holding_nul_are_refused_at_the_call(postgres_dsn: str, table: str) -> None:
    async with storage(postgres_dsn, table) as store:
        with pytest.raises(ValueError, match="NUL"):
            store.enqueue_save("k", {"text": "a\x00b"})
        await store.save("k", {"text": "a\\u0000b"})  # an escaped backslash is fine
        assert await store.load("k") == {"text": "a\\u0000b"}


@real_time
@pytest.mark.parametrize(("key", "value", "named"), [("k\ud800", 1, "key"), ("k", {"text": "a\udfffb"}, "value")])
async def test_a_lone_surrogate_is_refused_at_the_call(
    postgres_dsn: str, table: str, key: str, value: Any, named: str
) -> None:
    """Text UTF-8 cannot encode fails at enqueue_save/save with ValueError naming the key or value."""
    sink = SignalSink()
    async with storage(postgres_dsn, table, sink) as store:
        with pytest.raises(ValueError, match=f"{named}.*surrogate"):
            store.enqueue_save(key, value)
        with pytest.raises(ValueError, match=f"{named}.*surrogate"):
            await store.save(key, value)
        await store.save("fine", "\u00e9\U0001f600")
        assert await store.load("fine") == "\u00e9\U0001f600"
    assert not names(sink, f"error.data.{table}:*")


@real_time
async def test_a_key_beyond_the_index_row_limit_is_refused_at_the_call(postgres_dsn: str, table: str) -> None:
    """Keys up to 2692 UTF-8 bytes are stored (even incompressible ones); longer ones fail at the call,
    saying the limit, instead of failing at the write with ProgramLimitExceeded."""
    sink = SignalSink()
    longest = secrets.token_hex(1346)  # 2692 characters that do not compress
    async with storage(postgres_dsn, table, sink) as store:
        await store.save(longest, 1)
        assert await store.load(longest) == 1
        for key in (longest + "x", "k" * 10_000, "\u00e9" * 1347):
            with pytest.raises(ValueError, match="2692 bytes"):
                store.enqueue_save(key, 1)
            with pytest.raises(ValueError, match="2692 bytes"):
                await store.delete(key)
            with pytest.raises(ValueError, match="2692 bytes"):
                await store.load(key)
    assert not names(sink, f"error.data.{table}:*")


@real_time
@pytest.mark.parametrize(
    ("part", "words"),
    [
        ("dbname", 'database "ephemeral_no_such_db" does not exist'),
        ("user", 'role "ephemeral_no_such_db" does not exist'),
    ],
)
async def test_a_wrong_database_or_role_fails_entry_at_once_with_the_servers_words(
    postgres_dsn: str, table: str, part: str, words: str
) -> None:
    """Permanent connection errors (missing database, unknown role, failed authentication) are not retried
    until connect_timeout: entry fails at once, quoting the server."""
    conninfo = make_conninfo(postgres_dsn, **{part: "ephemeral_no_such_db"})
    start = anyio.current_time()
    with pytest.raises(ConnectionError, match=re.escape(words)) as caught:
        async with storage(conninfo, table, connect_timeout=30):
            pass
    assert anyio.current_time() - start < 3.0
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


def test_a_database_name_that_is_not_an_identifier_is_named_as_such() -> None:
    """The table defaults to config.database_name: the error names that (and table_name=), not table_name alone."""
    config = DataStorageConfig(database_name="my-orders")  # fine as a signal name
    match = r"^config\.database_name \(the table name unless table_name= is given\) must be a SQL .* got 'my-orders'$"
    with pytest.raises(ValueError, match=match):
        PostgresDataStorageAtom(None, config, UNREACHABLE)
    with pytest.raises(ValueError, match=r"^table_name must be a SQL identifier"):
        PostgresDataStorageAtom(None, config, UNREACHABLE, table_name="my-orders")
    assert PostgresDataStorageAtom(None, config, UNREACHABLE, table_name="my_orders").table_name == "my_orders"
