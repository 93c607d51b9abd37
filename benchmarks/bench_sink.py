"""SignalSink hot paths: ``emit`` against a plain deque append, ``sense``/``detect`` over full windows,
matching one signal name against many registered patterns, and pathological globs against fnmatch.

Everything here is synchronous: no event loop is involved. Times are the calling thread's CPU time
(``time.thread_time``): on a shared machine, wall time of a tight loop mostly measures the neighbours.
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
from ephemeral.core.lowlevel import compile_pattern

try:
    from ephemeral.core.lowlevel import PatternIndex
except ImportError:  # an ephemeral-core from before PatternIndex: its rows are left out
    PatternIndex = None  # type: ignore[assignment, misc]

#: The clock every measurement here reads (see the module docstring).
clock = time.thread_time

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


def make_emit_made_event() -> Callable[[str, str | None], None]:
    """An event with an operation id emitted the documented way: ``sink.emit(sink.make_event(...))``."""
    sink = SignalSink(max_capacity=1000)
    emit, make_event = sink.emit, sink.make_event

    def call(name: str, key: str | None = None) -> None:
        emit(make_event(name, key, operation_id=1))

    return call


def make_emit_constructed_event() -> Callable[[str, str | None], None]:
    """The same event built with its datetime at once: ``sink.emit(SignalEvent(name, 1, key, sink.now()))``."""
    sink = SignalSink(max_capacity=1000)
    emit, now = sink.emit, sink.now

    def call(name: str, key: str | None = None) -> None:
        emit(SignalEvent(name, 1, key, now()))

    return call


#: The emit-rate contenders: name -> factory of the function called `n` times as fn(EMIT_NAME, key=EMIT_KEY).
EMIT_CONTENDERS: dict[str, Callable[[], Callable[[str, str | None], None]]] = {
    "floor: deque(maxlen=1000).append((name, key, monotonic()))": make_floor,
    "SignalSink.emit, no subscriber": lambda: make_emit(False),
    "SignalSink.emit, one no-op subscriber": lambda: make_emit(True),
    "emit(sink.make_event(name, key, operation_id=1)), no subscriber": make_emit_made_event,
    "emit(SignalEvent(name, 1, key, sink.now())), no subscriber": make_emit_constructed_event,
    "empty call (loop + call overhead, for scale)": lambda: _noop_call,
}
FLOOR = "floor: deque(maxlen=1000).append((name, key, monotonic()))"
#: The targets: emit at most this many times the floor.
EMIT_TARGETS = {"SignalSink.emit, no subscriber": 1.5, "SignalSink.emit, one no-op subscriber": 3.0}


def time_calls(fn: Callable[..., None], n: int) -> float:
    """Seconds taken by `n` calls of ``fn(EMIT_NAME, key=EMIT_KEY)``."""
    name, key = EMIT_NAME, EMIT_KEY
    start = clock()
    for _ in repeat(None, n):
        fn(name, key=key)
    return clock() - start


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
    start = clock()
    for _ in range(calls):
        found = call()
        if found != expected:
            raise RuntimeError(f"sense returned {found} signals, expected {expected}")
    return (clock() - start) / calls


# -- sense and detect as the window grows -------------------------------------------------------------

#: Ten signals under ``error.`` in a window otherwise full of other names.
SCALING_MATCHES = 10


def make_scaling_sink(capacity: int) -> SignalSink:
    """A full window of ``capacity`` signals, ``SCALING_MATCHES`` of them ``error.*``, spread evenly."""
    sink = SignalSink(max_capacity=capacity, max_age=3600.0)
    every = capacity // SCALING_MATCHES
    for i in range(capacity):
        sink.emit(f"error.db.{i}" if i % every == every // 2 else f"work.item.{i % 100}", key=str(i))
    sink.sense("error.*")  # the index catches up once, as it would on the first query after a burst
    return sink


#: name -> (call on a prepared sink, what it must return).
SCALING_QUERIES: dict[str, tuple[Callable[[SignalSink], object], object]] = {
    'sense("error.*") (10 matches)': (lambda sink: len(sink.sense("error.*")), SCALING_MATCHES),
    'detect("work.item.7") (literal name)': (lambda sink: sink.detect("work.item.7"), True),
    'detect("nothing.here") (literal name, absent)': (lambda sink: sink.detect("nothing.here"), False),
    'detect("*.missing") (no literal prefix: a scan)': (lambda sink: sink.detect("*.missing"), False),
}


def time_query(sink: SignalSink, query: Callable[[SignalSink], object], expected: object, calls: int) -> float:
    """Seconds per call of ``query(sink)``; checks each returns ``expected``."""
    start = clock()
    for _ in range(calls):
        found = query(sink)
        if found != expected:
            raise RuntimeError(f"query returned {found!r}, expected {expected!r}")
    return (clock() - start) / calls


# -- one name against N registered patterns -------------------------------------------------------------

PATTERN_COUNTS = (1, 10, 100, 1000)
PROBE_NAME = "svc42.error.timeout"


def registered_patterns(count: int) -> list[str]:
    """``count`` job-trigger-like patterns: per-service globs and literal names, and one leading-star glob."""
    patterns = ["*.fatal"]
    for i in range(1, count):
        patterns.append(f"svc{i}.done" if i % 10 == 1 else f"svc{i}.error.*")
    return patterns


def make_index_lookup(count: int) -> Callable[[], int]:
    """PatternIndex.match on ``PROBE_NAME`` with ``count`` patterns registered."""
    index = PatternIndex()
    for number, pattern in enumerate(registered_patterns(count)):
        index.add(pattern, number)

    def call() -> int:
        return len(index.match(PROBE_NAME))

    return call


def make_loop_lookup(count: int) -> Callable[[], int]:
    """The alternative: a loop over the compiled patterns."""
    compiled = [(compile_pattern(pattern), number) for number, pattern in enumerate(registered_patterns(count))]

    def call() -> int:
        return len([value for glob, value in compiled if glob.matches(PROBE_NAME)])

    return call


def time_lookup(call: Callable[[], int], calls: int) -> float:
    """Seconds per call."""
    start = clock()
    for _ in repeat(None, calls):
        call()
    return (clock() - start) / calls


# -- pathological globs ----------------------------------------------------------------------------

#: (label, pattern) over a value of ``GLOB_VALUE_SIZE`` "a" characters; none matches.
GLOBS = (
    ("*a?a?a?a?b*", "*a?a?a?a?b*"),
    ("* + 64 ? + b*", "*" + "?" * 64 + "b*"),
    ("*a*a*...*b (30 stars)", "*a" * 30 + "b"),
)
GLOB_VALUE_SIZE = 1_000_000


def time_glob(match: Callable[[str], bool], value: str) -> float:
    """Seconds for one match call (asserting it does not match)."""
    start = clock()
    found = match(value)
    elapsed = clock() - start
    if found:
        raise RuntimeError("the pathological glob matched")
    return elapsed
