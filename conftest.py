"""Shared pytest fixtures for every ephemeral package (pytest finds this file from the repo root)."""

from __future__ import annotations

from typing import Any

import looptime
import pytest
import trio.testing

# trio and looptime are imported at module level on purpose: a test environment without them fails
# at once instead of quietly running on fewer backends or on the real clock.


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Run each async test on asyncio and on trio, each on a fresh virtual clock starting at 0.

    Sleeps and timeouts take no real time: the clock jumps to the next deadline whenever every task
    is blocked. A test marked ``real_time`` (one that waits on threads or real I/O) gets the real
    clock on both backends.
    """
    backend: str = request.param
    if request.node.get_closest_marker("real_time"):
        return (backend, {})
    if backend == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return ("asyncio", {"loop_factory": looptime.new_event_loop})
