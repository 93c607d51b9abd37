"""Clocks: the running loop's clock read cheaply, and monotonic time mapped onto UTC datetimes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

__all__ = ("TimeBase", "loop_clock", "to_seconds", "utc_now")


def utc_now() -> datetime:
    """The current wall-clock time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


def loop_clock() -> Callable[[], float]:
    """Return a callable reading the running event loop's clock, the value ``anyio.current_time()`` gives.

    ``anyio.current_time()`` looks the backend up on every call (about 1 µs); coordinators read the
    clock twice per item, so they resolve the backend's own clock once instead. Virtual clocks (trio's
    MockClock, looptime) are read through the same callables. Called outside any event loop, it returns
    ``time.monotonic`` (the clock asyncio's loops read), so objects made in plain sync code still work.

    Readings are for measuring intervals (ages, TTLs, durations) and for relative sleeps; they may be
    offset from the loop's own absolute deadlines (trio's real clock starts at a random offset), so do
    not build ``anyio`` deadlines or cancel scopes from them: use ``anyio.current_time()`` for that.
    """
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        clock = type(trio.lowlevel.current_clock())
        if clock.__name__ == "SystemClock" and clock.__module__.startswith("trio."):
            # trio's default clock is real time: time.monotonic() runs at its pace, costs less to read
            # and works from any thread. Readings are only ever compared with each other.
            return time.monotonic
        return _trio_clock(trio.current_time)
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if type(loop).time is asyncio.BaseEventLoop.time:
                return time.monotonic  # what a stock loop's time() returns, read without the method call
            return loop.time  # type: ignore[no-any-return]
    return time.monotonic


def _trio_clock(current_time: Callable[[], float]) -> Callable[[], float]:
    """Trio's clock, also readable from other threads (a body's worker thread emitting a signal)."""
    offset = current_time() - time.monotonic()

    def clock() -> float:
        try:
            return current_time()
        except RuntimeError:  # not in the trio thread: the real clock, aligned with trio's at start
            return time.monotonic() + offset

    return clock


def to_seconds(value: float | timedelta, name: str, *, allow_zero: bool = False) -> float:
    """Normalise a duration given as seconds or a timedelta, rejecting negative (or zero) values.

    Raises:
        TypeError: ``value`` is neither a number nor a timedelta.
        ValueError: ``value`` is negative, or zero when ``allow_zero`` is False.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{name} must be seconds (float) or a timedelta, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero) or seconds != seconds:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return seconds


class TimeBase:
    """Maps readings of a monotonic clock onto UTC datetimes, anchored once at construction."""

    __slots__ = ("_anchor_clock", "_anchor_wall", "_offset", "clock")

    def __init__(self, clock: Callable[[], float], now: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self._anchor_clock = clock()
        self._anchor_wall = now()
        self._offset = self._anchor_wall.timestamp() - self._anchor_clock

    def to_datetime(self, reading: float) -> datetime:
        """The UTC datetime of a clock reading."""
        return datetime.fromtimestamp(self._offset + reading, timezone.utc)

    def to_reading(self, moment: datetime) -> float:
        """The clock reading of a UTC datetime."""
        return self._anchor_clock + (moment - self._anchor_wall).total_seconds()

    def now(self) -> datetime:
        """The current time as a UTC datetime."""
        return self.to_datetime(self.clock())
