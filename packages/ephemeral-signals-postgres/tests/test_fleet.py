"""Several processes on one real PostgreSQL: every node sees the fleet's signals, once, on asyncio and trio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ephemeral.core.testing import tcp_proxy

pytestmark = pytest.mark.real_time


async def test_three_processes_share_one_window(spawn: Callable[..., Any], table: str) -> None:
    async with spawn("a", table) as a, spawn("b", table) as b, spawn("c", table) as c:
        await a.ask("emit", "order.placed", "o-1")
        await b.ask("emit", "order.shipped", "o-1")
        for node in (a, b, c):
            assert await node.ask("wait", "order.*", 2, 5.0) is not None
        await anyio.sleep(0.3)  # nothing more arrives: no echo, no duplicate
        for node in (a, b, c):
            seen = await node.ask("sense", "order.*")
            assert sorted((name, key) for name, key, _, _ in seen) == [
                ("order.placed", "o-1"),
                ("order.shipped", "o-1"),
            ]
        placed_on_c = [origin for name, _, _, (origin,) in await c.ask("sense", "order.*") if name == "order.placed"]
        assert placed_on_c == ["a"]  # the node it came from
        (stats,) = await a.ask("stats")
        assert (stats["sent"], stats["received"], stats["dropped"]) == (1, 1, 0)


async def test_failures_on_a_open_the_circuit_breaker_on_b_within_one_second(
    spawn: Callable[..., Any], table: str
) -> None:
    async with spawn("a", table) as a, spawn("b", table) as b:
        assert await b.ask("breaker", "api.failure", 5, 0.05) is None  # closed
        await a.ask("emit", "api.failure", None, 5)
        opened_after = await b.ask("breaker", "api.failure", 5, 1.0)
        assert opened_after is not None and opened_after < 1.0


async def test_backpressure_raised_on_b_defers_a_coordinator_on_c_until_b_retracts_it(
    spawn: Callable[..., Any], table: str
) -> None:
    async with spawn("b", table) as b, spawn("c", table) as c:
        await b.ask("emit", "backpressure.downstream", None)
        assert await c.ask("wait", "backpressure.downstream", 1, 5.0) is not None
        await c.ask("enqueue")
        assert await c.ask("ran", 0.5) is None  # deferred
        assert await b.ask("retract", "backpressure.downstream") == 1
        assert await c.ask("ran", 2.0) is not None  # resumed once the retraction crossed over
        assert await c.ask("count", "backpressure.downstream") == 0


async def test_a_process_started_later_backfills_the_window(spawn: Callable[..., Any], table: str) -> None:
    async with spawn("a", table) as a:
        await a.ask("emit", "deploy.started", "v2")
        await a.ask("emit", "api.failure", None, 3)
        await a.ask("emit", "cache.cold", None)
        await a.ask("retract", "cache.cold")
        sent = await a.ask("sense", "deploy.*")
    async with spawn("late", table) as late:  # a left (writing what it queued): all comes from the table
        seen = await late.ask("sense", "deploy.*")
        assert [(name, key, ts) for name, key, ts, _ in seen] == [(name, key, ts) for name, key, ts, _ in sent]
        assert await late.ask("count", "api.failure") == 3
        assert await late.ask("count", "cache.cold") == 0  # emitted, then retracted


async def test_every_connection_terminated_mid_run_loses_nothing_within_the_queue_bound(
    spawn: Callable[..., Any], table: str, admin: Callable[..., Any], application_name: str
) -> None:
    terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
    async with spawn("a", table) as a, spawn("b", table) as b:
        await a.ask("emit", "before", None, 10)
        assert await b.ask("wait", "before", 10, 5.0) is not None
        killed = await anyio.to_thread.run_sync(admin, terminate, (application_name,))
        assert len(killed) == 4  # two connections per bridge
        await a.ask("emit", "during", None, 200)  # while the bridges reconnect
        await b.ask("emit", "during.b", None, 20)
        assert await b.ask("wait", "during", 200, 10.0) is not None
        assert await a.ask("wait", "during.b", 20, 10.0) is not None
        await anyio.sleep(0.3)
        assert await b.ask("count", "during") == 200  # each exactly once
        assert await a.ask("count", "during.b") == 20
        assert await a.ask("count", "bridge.disconnected") >= 1
        assert await a.ask("count", "bridge.connected") >= 2
        (stats,) = await a.ask("stats")
        assert stats["dropped"] == 0 and stats["connected"]


async def test_a_server_outage_loses_nothing_within_the_queue_bound_and_the_node_reads_what_it_missed(
    spawn: Callable[..., Any], table: str, postgres_dsn: str
) -> None:
    server = conninfo_to_dict(postgres_dsn)
    async with tcp_proxy(str(server.get("host") or "127.0.0.1"), int(server.get("port") or 5432)) as proxy:
        through_proxy = make_conninfo(postgres_dsn, host="127.0.0.1", port=str(proxy.port))
        async with spawn("a", table, dsn=through_proxy) as a, spawn("b", table) as b:
            await a.ask("emit", "before", None, 10)
            assert await b.ask("wait", "before", 10, 5.0) is not None
            await proxy.stop()  # for a, the server is gone: its connections are closed, new ones refused
            assert await a.ask("wait", "bridge.disconnected", 1, 5.0) is not None
            await a.ask("emit", "during", None, 500)  # queued: node.py's bridges hold max_queue=1000
            await b.ask("emit", "during.b", None, 20)  # written while a cannot read
            await anyio.sleep(1.0)  # a keeps retrying against a port that refuses
            (stats,) = await a.ask("stats")
            assert not stats["connected"] and stats["sent"] == 10
            assert await b.ask("count", "during") == 0
            await proxy.start()  # back, at the same address
            assert await b.ask("wait", "during", 500, 10.0) is not None
            assert await a.ask("wait", "during.b", 20, 10.0) is not None  # re-LISTENed and read what it missed
            await anyio.sleep(0.3)
            assert await b.ask("count", "during") == 500  # each exactly once
            assert await a.ask("count", "during.b") == 20
            assert await a.ask("count", "bridge.connected") >= 2
            (stats,) = await a.ask("stats")
            assert (stats["sent"], stats["dropped"], stats["queued"], stats["connected"]) == (510, 0, 0, True)


async def test_two_bridges_on_one_sink_make_no_loop(spawn: Callable[..., Any], tables: Callable[[], str]) -> None:
    east, west = tables(), tables()
    async with spawn("hub", east, west) as hub, spawn("e", east) as e, spawn("w", west) as w:
        await e.ask("emit", "from.east", None)
        await w.ask("emit", "from.west", None)
        await hub.ask("emit", "from.hub", None)
        assert await hub.ask("wait", "from.*", 3, 5.0) is not None
        assert await e.ask("wait", "from.hub", 1, 5.0) is not None
        assert await w.ask("wait", "from.hub", 1, 5.0) is not None
        await anyio.sleep(0.5)
        assert await hub.ask("count", "from.*") == 3  # once each, nothing came back
        # A bridged signal is never published again: east's signal does not reach west, nor west's east.
        assert sorted(s for s, *_ in await e.ask("sense", "from.*")) == ["from.east", "from.hub"]
        assert sorted(s for s, *_ in await w.ask("sense", "from.*")) == ["from.hub", "from.west"]
        east_stats, west_stats = await hub.ask("stats")
        assert (east_stats["sent"], west_stats["sent"]) == (1, 1)
