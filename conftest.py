"""Shared pytest fixtures for every ephemeral package (pytest finds this file from the repo root)."""

from __future__ import annotations

import asyncio
import math
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
    return ("asyncio", {"loop_factory": _virtual_time_loop})


def _virtual_time_loop() -> asyncio.AbstractEventLoop:
    """A looptime loop whose timers fall on whole microseconds, the resolution of its clock.

    looptime keeps time in whole microseconds. A timer between two of them (a deadline of 0.0123456789 s,
    as random test deadlines and computed sleeps give) is never reached on Python 3.10, where the loop
    compares the timer with its rounded clock: the loop spins forever. Rounding each timer up to the next
    microsecond fires it at most 1 us late, which no test can tell, and at or after the deadline, so code
    that compares the clock with its deadline on waking (anyio's cancel scopes do) sees it reached.
    """
    loop = looptime.new_event_loop()
    call_at = loop.call_at

    def call_at_whole_microseconds(when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        if math.isfinite(when):
            micro = math.ceil(when * 1_000_000)
            while micro / 1_000_000 < when:  # the float division may land just below the deadline
                micro += 1
            when = micro / 1_000_000
        return call_at(when, callback, *args, context=context)

    loop.call_at = call_at_whole_microseconds  # type: ignore[method-assign]
    return loop
