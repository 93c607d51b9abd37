"""The public surface of ephemeral.core: every exported name, and nothing by accident."""

from __future__ import annotations

import ephemeral.core

EXPECTED = {
    "ACKED_SIGNAL", "AtomBase", "AtomStats", "BlockReason", "CacheStats", "ContributorResult", "ContributorTracker",
    "CoordinatorBase",
    "CoordinatorClosedError", "CoordinatorMetrics", "DEFAULT_ACK_PATTERN", "DecayingReputationWindow", "Deferral",
    "DependencyCoordinator", "DependencyExecutionError", "DependencyResult", "EXPIRED_SIGNAL", "EarlyExitResult",
    "EarlyExitResultCoordinator", "EphemeralKeyedWorkCoordinator", "EphemeralLruCache", "EphemeralLruCacheOptions",
    "EphemeralOperation", "EphemeralOperationSnapshot", "EphemeralOptions", "EphemeralResultCoordinator",
    "EphemeralWorkCoordinator", "EventHook", "GlobPattern", "KeyedQueues", "LastWordsNote", "LastWordsNoteAtom",
    "LoopBinding", "OperationEcho", "OperationStatus", "PatternSet", "PersistAtom", "Pinning", "PipelineResult",
    "PipelineStage",
    "PriorityKeyedWorkCoordinator", "PriorityLane", "PriorityWorkCoordinator", "PriorityWorkCoordinatorOptions",
    "ProgressSignals", "QuorumResult", "ResponsibilitySignalManager", "ResponsibilitySnapshot",
    "ResultUnavailableError", "ScopedSignalEmitter", "ScopedSignalKey", "SignalAggregate", "SignalAggregationWindow",
    "SignalCommandMatch", "SignalConsensus", "SignalConstraints", "SignalContext", "SignalDispatcher", "SignalEvent",
    "SignalFilter", "SignalPropagation", "SignalRetractedEvent", "SignalRouter", "SignalSink", "SignalSource",
    "SignalStage", "SignalTransform", "SignalWaveExecutor", "StageResult", "StageTriggerTimeoutError",
    "StagedPipeline", "StagedPipelineBuilder", "StringPatternMatcher", "Subscription", "TimeBase", "TypedSignalSink",
    "ack_pattern_for", "call_isolated", "check_int", "close_task_group", "compile_pattern", "current_operation",
    "derived_identifier",
    "ephemeral_for_each", "loop_clock",
    "next_id", "open_task_group", "quote_identifier", "subscribe_to_pattern", "to_seconds", "utc_now",
    "validate_identifier",
}  # fmt: skip


def test_all_is_pinned() -> None:
    """__all__ lists exactly the expected names, each once."""
    assert len(ephemeral.core.__all__) == len(set(ephemeral.core.__all__))
    assert set(ephemeral.core.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    """Every name in __all__ is importable from ephemeral.core."""
    missing = [name for name in ephemeral.core.__all__ if not hasattr(ephemeral.core, name)]
    assert missing == []


def test_no_public_name_is_left_out() -> None:
    """Every public attribute of ephemeral.core (not a submodule) is in __all__."""
    public = {
        name
        for name, value in vars(ephemeral.core).items()
        if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
    }
    assert public <= set(ephemeral.core.__all__)
