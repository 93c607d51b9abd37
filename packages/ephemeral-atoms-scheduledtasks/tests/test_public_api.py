"""The public surface of ephemeral.atoms.scheduledtasks."""

from __future__ import annotations

import ephemeral.atoms.scheduledtasks


def test_all_is_pinned() -> None:
    """__all__ lists exactly the public names, each importable."""
    assert ephemeral.atoms.scheduledtasks.__all__ == (
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
    assert all(hasattr(ephemeral.atoms.scheduledtasks, name) for name in ephemeral.atoms.scheduledtasks.__all__)


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of the package (submodules and the `annotations` future aside) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.atoms.scheduledtasks).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public == set(ephemeral.atoms.scheduledtasks.__all__)
