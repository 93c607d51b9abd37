"""A cheap "is the current task cancelled?" probe for loops that run many steps without suspending."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ("cancel_probe",)


def cancel_probe() -> Callable[[], bool]:
    """A function telling whether a cancel scope around the calling task has been cancelled.

    Call it in the task that will use the probe, and use the probe at that same scope depth (a worker
    loop between two steps). A loop that runs steps back to back without suspending (a coordinator's
    worker taking queued items) never receives a cancellation a step requested synchronously, such as a
    body cancelling its enclosing scope and returning: asking this probe before the next step lets it
    stop there. ``anyio.current_effective_deadline() == -inf`` answers the same question, but costs
    about 2 us a call (it finds the backend and walks every scope's deadline); the probe reads the
    backend's own state: trio's cancel status (one attribute) or anyio's asyncio scope chain. Should a
    backend's internals differ, it falls back to ``current_effective_deadline``.
    """
    probe = _trio_probe() or _asyncio_probe()
    return probe if probe is not None else _public_probe


def _trio_probe() -> Callable[[], bool] | None:
    trio = sys.modules.get("trio")  # a running trio is imported; never import it here (4 MiB)
    if trio is None:
        return None
    try:
        task: Any = trio.lowlevel.current_task()
        if not isinstance(task._cancel_status.effectively_cancelled, bool):
            return None
    except Exception:  # not in trio, or its internals differ
        return None
    return lambda: task._cancel_status.effectively_cancelled


def _asyncio_probe() -> Callable[[], bool] | None:
    asyncio, backend = sys.modules.get("asyncio"), sys.modules.get("anyio._backends._asyncio")
    if asyncio is None or backend is None:  # asyncio is not running: nothing to read (and nothing imported)
        return None
    try:
        state: Any = backend._task_states[asyncio.current_task()]
        scope = state.cancel_scope
        if scope is not None:
            scope._cancel_called, scope._shield, scope._parent_scope  # noqa: B018 (the names exist)
    except Exception:
        return None

    def cancelled() -> bool:
        scope = state.cancel_scope
        while scope is not None:
            if scope._cancel_called:
                return True
            if scope._shield:
                return False
            scope = scope._parent_scope
        return False

    return cancelled


def _public_probe() -> bool:
    return anyio.current_effective_deadline() == -math.inf
