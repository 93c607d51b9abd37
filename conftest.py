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
    """A looptime loop whose timers fall on the whole microseconds its clock can show.

    looptime keeps time in whole microseconds, and on Python 3.10 (looptime 0.7) a timer between two of
    them (0.0123456789 s, as random test deadlines give) is never reached: the loop spins forever. Such a
    timer moves up to the next microsecond. A deadline within a nanosecond past a tick (0.1 + 0.05 is
    0.15000000000000002) already fires at that tick, so plain sleeps keep exact timings; but code that
    compares the clock with its deadline on waking and re-arms the same deadline (anyio's cancel scopes
    do) would spin there, so a timer re-armed at its tick moves to the next microsecond.
    """
    loop = looptime.new_event_loop()
    call_at = loop.call_at

    def call_at_on_ticks(when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        if math.isfinite(when):
            micro = math.floor(when * 1_000_000)
            while micro / 1_000_000 + 1e-9 < when:
                micro += 1
            if micro / 1_000_000 < when and micro / 1_000_000 <= loop.time():
                micro += 1  # re-armed at the tick: the clock cannot show this deadline before the next one
            when = micro / 1_000_000
        return call_at(when, callback, *args, context=context)

    loop.call_at = call_at_on_ticks  # type: ignore[method-assign,assignment]
    return loop
