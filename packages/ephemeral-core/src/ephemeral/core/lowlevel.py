"""Building blocks for authors of atoms and patterns, as ``trio.lowlevel`` is for trio.

Application code writes the names in ``ephemeral.core``; a distribution that builds a new atom or
pattern on top of core imports what it needs to compose from here: the coordinator base, the atom
bases, the lifecycle helpers, argument checks, clocks and ids, and ``PatternIndex`` for matching a signal
name against many registered globs at once, and the runtime pieces every loop needs (``Wakeup``,
``FlushBuffer``, ``BackoffPolicy``/``parse_retry_hint``, ``caused_event``, ``BoundedMap``). Nothing
outside ``ephemeral-core`` imports core's private modules.

Emitting: ``sink.emit(name, key)`` is the cheap call (no event is built when nobody subscribes). An
event that carries an operation id, a propagation path or a payload is built with
``sink.make_event(name, key, operation_id=..., propagation=..., payload=...)`` and passed to
``sink.emit``: it is stamped with the sink's monotonic clock, its ``timestamp`` datetime derived when
read, at about half the cost of ``SignalEvent(name, operation_id, key, sink.now())``.
"""

from __future__ import annotations

from ._async_handlers import AsyncHandlerQueue as AsyncHandlerQueue, AsyncSignalQueue as AsyncSignalQueue
from ._atom import AtomBase as AtomBase
from ._backoff import (
    RETRY_HINT_COMMANDS as RETRY_HINT_COMMANDS,
    BackoffPolicy as BackoffPolicy,
    newest_retry_hint as newest_retry_hint,
    parse_duration as parse_duration,
    parse_retry_hint as parse_retry_hint,
)
from ._bounded import BoundedMap as BoundedMap
from ._cancel import cancel_probe as cancel_probe
from ._causal import cause_chain as cause_chain, caused_event as caused_event
from ._checks import (
    check_async_callable as check_async_callable,
    check_callable as check_callable,
    check_choice as check_choice,
    check_float as check_float,
    check_int as check_int,
    check_optional_int as check_optional_int,
    is_async_callable as is_async_callable,
)
from ._clock import TimeBase as TimeBase, loop_clock as loop_clock, to_seconds as to_seconds, utc_now as utc_now
from ._closable import ClosableResource as ClosableResource
from ._coordinator import CoordinatorBase as CoordinatorBase
from ._counters import OutcomeCounters as OutcomeCounters, Refused as Refused
from ._flush import FlushBuffer as FlushBuffer
from ._gates import Deferral as Deferral, Gates as Gates, Verdict as Verdict
from ._hooks import EventHook as EventHook, call_isolated as call_isolated
from ._lifecycle import (
    TaskGroupOwner as TaskGroupOwner,
    owned_task_group as owned_task_group,
)
from ._loop import LoopBinding as LoopBinding
from ._matcher import compile_pattern as compile_pattern
from ._operation import OperationHost as OperationHost
from ._pattern_index import PatternIndex as PatternIndex
from ._persist import PersistAtom as PersistAtom
from ._queues import (
    Entry as Entry,
    FifoQueue as FifoQueue,
    KeyedQueues as KeyedQueues,
    KeyLanes as KeyLanes,
    Lane as Lane,
    LaneQueue as LaneQueue,
    Room as Room,
    WorkQueue as WorkQueue,
)
from ._sink import SignalTap as SignalTap, next_id as next_id
from ._wakeup import Wakeup as Wakeup, sleep as sleep, sleep_time as sleep_time, time_until as time_until
from ._window import OperationWindow as OperationWindow, WindowViews as WindowViews
from ._workers import Dispatcher as Dispatcher, ParkingLot as ParkingLot, WorkerPool as WorkerPool

__all__ = (
    "RETRY_HINT_COMMANDS",
    "AsyncHandlerQueue",
    "AsyncSignalQueue",
    "AtomBase",
    "BackoffPolicy",
    "BoundedMap",
    "ClosableResource",
    "CoordinatorBase",
    "Deferral",
    "Dispatcher",
    "Entry",
    "EventHook",
    "FifoQueue",
    "FlushBuffer",
    "Gates",
    "KeyLanes",
    "KeyedQueues",
    "Lane",
    "LaneQueue",
    "LoopBinding",
    "OperationHost",
    "OperationWindow",
    "OutcomeCounters",
    "ParkingLot",
    "PatternIndex",
    "PersistAtom",
    "Refused",
    "Room",
    "SignalTap",
    "TaskGroupOwner",
    "TimeBase",
    "Verdict",
    "Wakeup",
    "WindowViews",
    "WorkQueue",
    "WorkerPool",
    "call_isolated",
    "cancel_probe",
    "cause_chain",
    "caused_event",
    "check_async_callable",
    "check_callable",
    "check_choice",
    "check_float",
    "check_int",
    "check_optional_int",
    "compile_pattern",
    "is_async_callable",
    "loop_clock",
    "newest_retry_hint",
    "next_id",
    "owned_task_group",
    "parse_duration",
    "parse_retry_hint",
    "sleep",
    "sleep_time",
    "time_until",
    "to_seconds",
    "utc_now",
)
