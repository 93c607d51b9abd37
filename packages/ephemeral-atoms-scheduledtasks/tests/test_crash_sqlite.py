"""Crash tests: a real child process running the SQLite-backed atom is killed with SIGKILL mid-handler."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_time
CHILD = Path(__file__).with_name("crash_child.py")


def rows(db: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:  # `with conn` alone does not close it
        return conn.execute("SELECT name, status FROM ephemeral_tasks ORDER BY id").fetchall()


def test_killed_mid_handler_the_task_runs_again_and_completed_ones_ran_once(tmp_path: Path) -> None:
    db, log = tmp_path / "tasks.db", tmp_path / "runs.log"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(log), "enqueue"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        lines: list[str] = []
        while not {"hanging", "stored"} <= set(lines):  # killed only once every task is on disk
            line = child.stdout.readline()
            assert line, f"child exited early: {lines}"
            lines.append(line.strip())
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert log.read_text().split("\n")[:-1] == ["start a", "done a", "start b", "done b", "start hang"]

    subprocess.run([sys.executable, str(CHILD), str(db), str(log), "resume"], timeout=60, check=True)
    events = log.read_text().split("\n")[:-1]
    assert events[5:] == ["start hang", "done hang", "start c", "done c", "start d", "done d"]
    done = Counter(line.split()[1] for line in events if line.startswith("done"))
    assert done == dict.fromkeys(["a", "b", "hang", "c", "d"], 1)
    assert rows(db) == [(name, "done") for name in ("a", "b", "hang", "c", "d")]
