"""SignalSink hot paths: ``emit`` against a plain deque append, and ``sense`` over a full window.

Everything here is synchronous: no event loop is involved.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import Any

from ephemeral.core import SignalEvent, SignalSink

EMIT_NAME = "a.b.c"
EMIT_KEY = "k"
SENSE_PATTERN = "a.b.*"


def _noop_handler(event: SignalEvent[Any]) -> None:
    """The one subscriber: a no-op function."""


def _noop_call(name: str, key: str | None = None) -> None:
    """The cost of the loop and of a Python call with these arguments, doing nothing."""


def make_floor() -> Callable[[str, str | None], None]:
    """The floor emit is compared with: append ``(name, key, time.monotonic())`` to a deque(maxlen=1000)."""
    window: deque[tuple[str, str | None, float]] = deque(maxlen=1000)
    append = window.append
    monotonic = time.monotonic

    def floor(name: str, key: str | None = None) -> None:
        append((name, key, monotonic()))

    return floor


def make_emit(subscribed: bool) -> Callable[[str, str | None], None]:
    """The bound ``emit`` of a fresh default-sized sink, with or without one no-op subscriber."""
    sink = SignalSink(max_capacity=1000)
    if subscribed:
        sink.subscribe(_noop_handler)
    return sink.emit


#: The emit-rate contenders: name -> factory of the function called `n` times as fn(EMIT_NAME, key=EMIT_KEY).
EMIT_CONTENDERS: dict[str, Callable[[], Callable[[str, str | None], None]]] = {
    "floor: deque(maxlen=1000).append((name, key, monotonic()))": make_floor,
    "SignalSink.emit, no subscriber": lambda: make_emit(False),
    "SignalSink.emit, one no-op subscriber": lambda: make_emit(True),
    "empty call (loop + call overhead, for scale)": lambda: _noop_call,
}
FLOOR = "floor: deque(maxlen=1000).append((name, key, monotonic()))"


def time_calls(fn: Callable[..., None], n: int) -> float:
    """Seconds taken by `n` calls of ``fn(EMIT_NAME, key=EMIT_KEY)``."""
    name, key = EMIT_NAME, EMIT_KEY
    start = time.perf_counter()
    for _ in repeat(None, n):
        fn(name, key=key)
    return time.perf_counter() - start


# -- sense ------------------------------------------------------------------------------------------


def make_full_sink(capacity: int) -> SignalSink:
    """A sink whose window is full: `capacity` signals, every other one matching ``a.b.*``."""
    sink = SignalSink(max_capacity=capacity, max_age=3600.0)
    for i in range(capacity):
        sink.emit(f"a.b.{i % 10}" if i % 2 == 0 else f"x.y.{i % 10}", key=str(i))
    return sink


def make_sense(capacity: int) -> Callable[[], int]:
    """One ``sink.sense("a.b.*")`` call on a full window; returns how many signals matched."""
    sink = make_full_sink(capacity)
    sense = sink.sense

    def call() -> int:
        return len(sense(SENSE_PATTERN))

    return call


def make_reference_filter(capacity: int) -> Callable[[], int]:
    """For scale: an fnmatch regex filtering a deque of `capacity` (name, key, time) tuples, keeping tuples."""
    window: deque[tuple[str, str, float]] = deque(maxlen=capacity)
    now = time.monotonic()
    for i in range(capacity):
        window.append((f"a.b.{i % 10}" if i % 2 == 0 else f"x.y.{i % 10}", str(i), now))
    match = re.compile(fnmatch.translate(SENSE_PATTERN)).match

    def call() -> int:
        cutoff = time.monotonic() - 3600.0
        return len([entry for entry in tuple(window) if entry[2] >= cutoff and match(entry[0])])

    return call


SENSE_CONTENDERS: dict[str, Callable[[int], Callable[[], int]]] = {
    'SignalSink.sense("a.b.*")': make_sense,
    "reference: fnmatch regex over a deque of tuples (no events built)": make_reference_filter,
}


def time_sense(call: Callable[[], int], calls: int, expected: int) -> float:
    """Seconds per call, averaged over `calls` calls; checks each returns `expected` matches."""
    start = time.perf_counter()
    for _ in range(calls):
        found = call()
        if found != expected:
            raise RuntimeError(f"sense returned {found} signals, expected {expected}")
    return (time.perf_counter() - start) / calls
