"""A child process for the crash tests: runs a DurableTaskAtom on a SQLite file and logs each handler run.

python crash_child.py DB LOG enqueue   # store tasks a, b, hang, c, d and run them; "hang" never returns
python crash_child.py DB LOG resume    # run whatever the file still holds, then exit
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

import anyio

from ephemeral.atoms.scheduledtasks import DurableTask, DurableTaskAtom, SqliteTaskStore

NAMES = ("a", "b", "hang", "c", "d")
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def log(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")
        file.flush()
        os.fsync(file.fileno())


async def main(db: str, log_path: str, mode: str) -> None:
    async def handler(task: DurableTask) -> None:
        log(log_path, f"start {task.name}")
        if mode == "enqueue" and task.name == "hang":
            print("hanging", flush=True)
            await anyio.sleep_forever()
        log(log_path, f"done {task.name}")

    async with DurableTaskAtom(handler, SqliteTaskStore(db)) as atom:
        if mode == "enqueue":
            for name in NAMES:
                await atom.enqueue(DurableTask(name, f"job.{name}", AT))
            print("stored", flush=True)
        await atom.wait_for_idle()


if __name__ == "__main__":
    db, log_path, mode = sys.argv[1:4]
    anyio.run(main, db, log_path, mode)
