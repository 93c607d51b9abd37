"""Bounded, observable, self-cleaning async execution with signal-based coordination.

Work runs in coordinators with a concurrency bound; every operation leaves named signals in a
bounded, time-limited window that other coordinators, atoms and patterns read and react to.
"""

# Layout (as trio/__init__.py lays out trio):
#
# Public modules, the only ones other packages import:
#   ephemeral.core           the names applications write (this module)
#   ephemeral.core.lowlevel  building blocks for atom and pattern authors
#   ephemeral.core.sql       SQL identifier helpers for storage packages
#   ephemeral.core.testing   test kit: ManualClock, README example runners, assert_accounted
#   ephemeral.core.di        dependency injection on svcs (the [di] extra)
#
# Private modules, by concern:
#   signals         _sink, _events, _matcher, _pattern_index, _typed, _scoped, _routing, _hooks, _causal
#   coordinators    _coordinator, _keyed, _priority, _result, _operation, _options, _foreach, _early_exit,
#                   _async_handlers, _lifecycle, _atom, _persist, _lastwords
#   runtime pieces  _wakeup, _flush, _backoff, _bounded, _checks, _clock, _loop
#   features        _cache, _responsibility, _aggregation, _dispatcher, _orchestration, _pipeline, _waves,
#                   _di, _sql, _testing

from __future__ import annotations

from ._aggregation import (
    DecayingReputationWindow as DecayingReputationWindow,
    SignalAggregate as SignalAggregate,
    SignalAggregationWindow as SignalAggregationWindow,
)
from ._atom import AtomStats as AtomStats
from ._cache import (
    CacheStats as CacheStats,
    EphemeralLruCache as EphemeralLruCache,
    EphemeralLruCacheOptions as EphemeralLruCacheOptions,
)
from ._coordinator import (
    REFUSED as REFUSED,
    CoordinatorClosedError as CoordinatorClosedError,
    CoordinatorMetrics as CoordinatorMetrics,
    EphemeralWorkCoordinator as EphemeralWorkCoordinator,
)
from ._dispatcher import SignalDispatcher as SignalDispatcher
from ._early_exit import (
    EarlyExitOptions as EarlyExitOptions,
    EarlyExitResult as EarlyExitResult,
    EarlyExitResultCoordinator as EarlyExitResultCoordinator,
)
from ._events import (
    BlockReason as BlockReason,
    SignalCommandMatch as SignalCommandMatch,
    SignalConstraints as SignalConstraints,
    SignalEvent as SignalEvent,
    SignalPropagation as SignalPropagation,
    SignalRetractedEvent as SignalRetractedEvent,
)
from ._foreach import ephemeral_for_each as ephemeral_for_each
from ._hooks import Subscription as Subscription
from ._keyed import EphemeralKeyedWorkCoordinator as EphemeralKeyedWorkCoordinator
from ._lastwords import LastWordsNote as LastWordsNote, LastWordsNoteAtom as LastWordsNoteAtom
from ._matcher import (
    GlobPattern as GlobPattern,
    PatternSet as PatternSet,
    StringPatternMatcher as StringPatternMatcher,
)
from ._operation import (
    EphemeralOperation as EphemeralOperation,
    EphemeralOperationSnapshot as EphemeralOperationSnapshot,
    OperationEcho as OperationEcho,
    OperationStatus as OperationStatus,
    current_operation as current_operation,
)
from ._options import EphemeralOptions as EphemeralOptions
from ._orchestration import (
    ContributorResult as ContributorResult,
    ContributorTracker as ContributorTracker,
    ProgressSignals as ProgressSignals,
    QuorumResult as QuorumResult,
    SignalConsensus as SignalConsensus,
)
from ._pipeline import (
    DependencyCoordinator as DependencyCoordinator,
    DependencyExecutionError as DependencyExecutionError,
    DependencyResult as DependencyResult,
    PipelineResult as PipelineResult,
    PipelineStage as PipelineStage,
    StagedPipeline as StagedPipeline,
    StagedPipelineBuilder as StagedPipelineBuilder,
    StageResult as StageResult,
    StageTriggerTimeoutError as StageTriggerTimeoutError,
)
from ._priority import (
    PriorityKeyedWorkCoordinator as PriorityKeyedWorkCoordinator,
    PriorityLane as PriorityLane,
    PriorityWorkCoordinator as PriorityWorkCoordinator,
    PriorityWorkCoordinatorOptions as PriorityWorkCoordinatorOptions,
)
from ._responsibility import (
    ACKED_SIGNAL as ACKED_SIGNAL,
    DEFAULT_ACK_PATTERN as DEFAULT_ACK_PATTERN,
    EXPIRED_SIGNAL as EXPIRED_SIGNAL,
    Pinning as Pinning,
    ResponsibilitySignalManager as ResponsibilitySignalManager,
    ResponsibilitySnapshot as ResponsibilitySnapshot,
    ack_pattern_for as ack_pattern_for,
)
from ._result import (
    EphemeralResultCoordinator as EphemeralResultCoordinator,
    ResultUnavailableError as ResultUnavailableError,
)
from ._routing import (
    SignalRouter as SignalRouter,
    SignalTransform as SignalTransform,
    subscribe_to_pattern as subscribe_to_pattern,
)
from ._scoped import (
    ScopedSignalEmitter as ScopedSignalEmitter,
    ScopedSignalKey as ScopedSignalKey,
    SignalContext as SignalContext,
)
from ._sink import (
    SignalFilter as SignalFilter,
    SignalSink as SignalSink,
    SignalSource as SignalSource,
)
from ._typed import SignalKey as SignalKey, TypedSignalSink as TypedSignalSink
from ._waves import SignalStage as SignalStage, SignalWaveExecutor as SignalWaveExecutor

__version__ = "0.1.0"

__all__ = (
    "ACKED_SIGNAL",
    "DEFAULT_ACK_PATTERN",
    "EXPIRED_SIGNAL",
    "REFUSED",
    "AtomStats",
    "BlockReason",
    "CacheStats",
    "ContributorResult",
    "ContributorTracker",
    "CoordinatorClosedError",
    "CoordinatorMetrics",
    "DecayingReputationWindow",
    "DependencyCoordinator",
    "DependencyExecutionError",
    "DependencyResult",
    "EarlyExitOptions",
    "EarlyExitResult",
    "EarlyExitResultCoordinator",
    "EphemeralKeyedWorkCoordinator",
    "EphemeralLruCache",
    "EphemeralLruCacheOptions",
    "EphemeralOperation",
    "EphemeralOperationSnapshot",
    "EphemeralOptions",
    "EphemeralResultCoordinator",
    "EphemeralWorkCoordinator",
    "GlobPattern",
    "LastWordsNote",
    "LastWordsNoteAtom",
    "OperationEcho",
    "OperationStatus",
    "PatternSet",
    "Pinning",
    "PipelineResult",
    "PipelineStage",
    "PriorityKeyedWorkCoordinator",
    "PriorityLane",
    "PriorityWorkCoordinator",
    "PriorityWorkCoordinatorOptions",
    "ProgressSignals",
    "QuorumResult",
    "ResponsibilitySignalManager",
    "ResponsibilitySnapshot",
    "ResultUnavailableError",
    "ScopedSignalEmitter",
    "ScopedSignalKey",
    "SignalAggregate",
    "SignalAggregationWindow",
    "SignalCommandMatch",
    "SignalConsensus",
    "SignalConstraints",
    "SignalContext",
    "SignalDispatcher",
    "SignalEvent",
    "SignalFilter",
    "SignalKey",
    "SignalPropagation",
    "SignalRetractedEvent",
    "SignalRouter",
    "SignalSink",
    "SignalSource",
    "SignalStage",
    "SignalTransform",
    "SignalWaveExecutor",
    "StageResult",
    "StageTriggerTimeoutError",
    "StagedPipeline",
    "StagedPipelineBuilder",
    "StringPatternMatcher",
    "Subscription",
    "TypedSignalSink",
    "ack_pattern_for",
    "current_operation",
    "ephemeral_for_each",
    "subscribe_to_pattern",
)
