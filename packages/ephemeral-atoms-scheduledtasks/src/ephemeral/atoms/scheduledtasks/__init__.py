"""Scheduled tasks: cron and JSON schedules whose occurrences become durable tasks, run exactly once."""

from __future__ import annotations

from ._definition import CronFormat as CronFormat, ScheduledTaskDefinition as ScheduledTaskDefinition
from ._durable import DurableTaskAtom as DurableTaskAtom
from ._postgres import PostgresTaskStore as PostgresTaskStore
from ._scheduler import ScheduledTasksAtom as ScheduledTasksAtom, ScheduledTasksOptions as ScheduledTasksOptions
from ._sqlite import SqliteTaskStore as SqliteTaskStore
from ._store import (
    DurableTask as DurableTask,
    InMemoryTaskStore as InMemoryTaskStore,
    StoredTask as StoredTask,
    TaskStore as TaskStore,
)

__version__ = "0.1.0"

__all__ = (
    "CronFormat",
    "DurableTask",
    "DurableTaskAtom",
    "InMemoryTaskStore",
    "PostgresTaskStore",
    "ScheduledTaskDefinition",
    "ScheduledTasksAtom",
    "ScheduledTasksOptions",
    "SqliteTaskStore",
    "StoredTask",
    "TaskStore",
)
