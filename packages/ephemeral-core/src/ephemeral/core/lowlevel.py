"""Building blocks for authors of atoms and patterns, as ``trio.lowlevel`` is for trio.

Application code writes the names in ``ephemeral.core``; a distribution that builds a new atom or
pattern on top of core imports what it needs to compose from here: the coordinator base, the atom
bases, the lifecycle helpers, argument checks, clocks and ids. Nothing outside ``ephemeral-core``
imports core's private modules.
"""

from __future__ import annotations

from ._atom import AtomBase as AtomBase
from ._checks import check_int as check_int
from ._clock import TimeBase as TimeBase, loop_clock as loop_clock, to_seconds as to_seconds, utc_now as utc_now
from ._coordinator import CoordinatorBase as CoordinatorBase, Deferral as Deferral
from ._hooks import EventHook as EventHook, call_isolated as call_isolated
from ._keyed import KeyedQueues as KeyedQueues
from ._lifecycle import (
    TaskGroupOwner as TaskGroupOwner,
    close_task_group as close_task_group,
    open_task_group as open_task_group,
    owned_task_group as owned_task_group,
)
from ._loop import LoopBinding as LoopBinding
from ._matcher import compile_pattern as compile_pattern
from ._persist import PersistAtom as PersistAtom
from ._sink import next_id as next_id

__all__ = (
    "AtomBase",
    "CoordinatorBase",
    "Deferral",
    "EventHook",
    "KeyedQueues",
    "LoopBinding",
    "PersistAtom",
    "TaskGroupOwner",
    "TimeBase",
    "call_isolated",
    "check_int",
    "close_task_group",
    "compile_pattern",
    "loop_clock",
    "next_id",
    "open_task_group",
    "owned_task_group",
    "to_seconds",
    "utc_now",
)
