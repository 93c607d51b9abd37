"""One node of a fleet, run as a child process by the tests: a sink, bridges, and commands on stdin.

    python node.py BACKEND DSN TABLE[,TABLE...] NODE_ID APPLICATION_NAME

Each stdin line is a JSON list ``[command, *args]``; each answer is one JSON line on stdout. The first
line printed is ``"ready"``, once every bridge is entered (backfilled).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink
from ephemeral.patterns.circuitbreaker import SignalBasedCircuitBreaker
from ephemeral.signals.postgres import PostgresSignalBridge


async def _wait_until(check: Callable[[], bool], within: float) -> float | None:
    """Seconds until ``check()`` held (polling every millisecond), or None after ``within`` seconds."""
    start = time.perf_counter()
    with anyio.move_on_after(within):
        while True:
            if check():
                return time.perf_counter() - start
            await anyio.sleep(0.001)
    return None


def _at_least(sink: SignalSink, pattern: str, least: int) -> Callable[[], bool]:
    return lambda: sink.count(pattern) >= least


async def main(dsn: str, tables: list[str], node_id: str, application_name: str) -> None:
    sink = SignalSink(10_000, 60.0)
    ran: list[float] = []

    async def body(item: int) -> None:
        ran.append(time.perf_counter())

    options = EphemeralOptions(
        max_concurrency=1,
        signals=sink,
        defer_on_signals="backpressure.downstream",
        defer_check_interval=0.02,
        max_defer_attempts=100_000,
    )
    bridges = [
        PostgresSignalBridge(
            sink,
            dsn,
            table=table,
            node_id=f"{node_id}-{i}" if len(tables) > 1 else node_id,
            application_name=application_name,
            poll_interval=0.5,
            max_queue=1000,
        )
        for i, table in enumerate(tables)
    ]
    async with EphemeralWorkCoordinator(body, options) as coordinator, bridges[0]:
        if len(bridges) > 1:
            await bridges[1].__aenter__()
        print(json.dumps("ready"), flush=True)
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                break
            command, *args = json.loads(line)
            answer: Any = None
            if command == "emit":
                for _ in range(args[2] if len(args) > 2 else 1):
                    sink.emit(args[0], args[1])
            elif command == "retract":
                answer = sink.retract(args[0])
            elif command == "count":
                answer = sink.count(args[0])
            elif command == "wait":  # pattern, at least n, timeout
                answer = await _wait_until(_at_least(sink, args[0], args[1]), args[2])
            elif command == "sense":
                answer = [
                    [e.signal, e.key, e.timestamp.isoformat(), [b.origin_of(e) for b in bridges]]
                    for e in sink.sense(args[0])
                ]
            elif command == "breaker":  # signal, threshold, timeout: seconds until the breaker opened
                breaker = SignalBasedCircuitBreaker(args[0], args[1], 30.0)
                answer = await _wait_until(partial(breaker.is_open, sink), args[2])
            elif command == "enqueue":
                await coordinator.enqueue(1)
            elif command == "ran":  # timeout: seconds until the enqueued item ran
                answer = await _wait_until(lambda: bool(ran), args[0])
            elif command == "stats":
                answer = [bridge.stats()._asdict() for bridge in bridges]
            elif command == "quit":
                break
            print(json.dumps(answer), flush=True)
        if len(bridges) > 1:
            await bridges[1].__aexit__(None, None, None)
    print(json.dumps("bye"), flush=True)


if __name__ == "__main__":
    backend, dsn, tables, node, application = sys.argv[1:6]
    anyio.run(main, dsn, tables.split(","), node, application, backend=backend)
