"""Four worker processes run one every-second schedule on the real PostgreSQL; one is killed midway.

Every occurrence in the span runs exactly once: the handlers write one row per run into a table, and the
test counts them. The span is about 30 s: the victim hangs on the first task it claims after 15 s, is killed,
and the others schedule 15 s more.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.real_time
CHILD = Path(__file__).with_name("pg_child.py")
HANG_AFTER = 15.0  # seconds before the victim hangs on the task it claims next
AFTER_KILL = 15.0  # seconds the others go on scheduling after the kill
Admin = Callable[[str, "tuple[Any, ...] | None"], "list[tuple[Any, ...]]"]


@pytest.fixture
def runs_table(admin: Admin) -> Iterator[str]:
    name = f"scheduledtasks_runs_{uuid.uuid4().hex[:16]}"
    admin(f"CREATE TABLE {name} (scheduled_at TIMESTAMPTZ NOT NULL, pid INTEGER NOT NULL)", None)
    yield name
    admin(f"DROP TABLE IF EXISTS {name}", None)


def test_four_workers_one_killed_every_occurrence_runs_exactly_once(
    postgres_dsn: str, table: str, runs_table: str, admin: Admin
) -> None:
    def start(*extra: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(CHILD), postgres_dsn, table, runs_table, *extra]
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    victim = start(str(HANG_AFTER))
    workers = [start() for _ in range(3)]
    try:
        assert victim.stdout is not None
        lines: list[str] = []
        while "hanging" not in lines:
            line = victim.stdout.readline()
            assert line, f"the victim exited early: {lines}"
            lines.append(line.strip())
        victim.send_signal(signal.SIGKILL)  # mid-handler, holding a lease
        time.sleep(AFTER_KILL)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()  # stop scheduling, finish what is left
        for worker in workers:
            assert worker.wait(timeout=60) == 0
    finally:
        for process in (victim, *workers):
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
    assert victim.returncode == -signal.SIGKILL

    stored = [row[0] for row in admin(f"SELECT scheduled_at FROM {table} ORDER BY scheduled_at", None)]
    assert len(stored) >= HANG_AFTER + AFTER_KILL
    assert stored == [stored[0] + timedelta(seconds=i) for i in range(len(stored))]  # every tick, each stored once
    assert admin(f"SELECT DISTINCT status FROM {table}", None) == [("done",)]
    counts = admin(f"SELECT scheduled_at, count(*) FROM {runs_table} GROUP BY scheduled_at ORDER BY 1", None)
    assert counts == [(at, 1) for at in stored]  # each ran exactly once
    pids = {row[0] for row in admin(f"SELECT DISTINCT pid FROM {runs_table}", None)}
    assert len(pids) >= 2  # the work was shared
