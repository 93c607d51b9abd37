"""The public surface of ephemeral.core: every exported name, and nothing by accident."""

from __future__ import annotations

import ephemeral.core

EXPECTED = {
    "ACKED_SIGNAL", "AtomStats", "BlockReason", "CacheStats", "ContributorResult", "ContributorTracker",
    "CoordinatorClosedError", "CoordinatorMetrics", "DEFAULT_ACK_PATTERN", "REFUSED", "DecayingReputationWindow",
    "DependencyCoordinator", "DependencyExecutionError", "DependencyResult", "EXPIRED_SIGNAL", "EarlyExitOptions",
    "EarlyExitResult", "EarlyExitResultCoordinator", "EphemeralKeyedWorkCoordinator", "EphemeralLruCache",
    "EphemeralLruCacheOptions",
    "EphemeralOperation", "EphemeralOperationSnapshot", "EphemeralOptions", "EphemeralResultCoordinator",
    "EphemeralWorkCoordinator", "GlobPattern", "LastWordsNote", "LastWordsNoteAtom", "OperationEcho",
    "OperationStatus", "PatternSet", "Pinning", "PipelineResult", "PipelineStage", "PriorityKeyedWorkCoordinator",
    "PriorityLane", "PriorityWorkCoordinator", "PriorityWorkCoordinatorOptions", "ProgressSignals", "QuorumResult",
    "ResponsibilitySignalManager", "ResponsibilitySnapshot", "ResultUnavailableError", "ScopedSignalEmitter",
    "ScopedSignalKey", "SignalAggregate", "SignalAggregationWindow", "SignalCommandMatch", "SignalConsensus",
    "SignalConstraints", "SignalContext", "SignalDispatcher", "SignalEvent", "SignalFilter", "SignalKey",
    "SignalPropagation",
    "SignalRetractedEvent", "SignalRouter", "SignalSink", "SignalSource", "SignalStage", "SignalTransform",
    "SignalWaveExecutor", "StageResult", "StageTriggerTimeoutError", "StagedPipeline", "StagedPipelineBuilder",
    "StringPatternMatcher", "Subscription", "TypedSignalSink", "ack_pattern_for", "current_operation",
    "ephemeral_for_each", "subscribe_to_pattern",
}  # fmt: skip


def test_all_is_pinned() -> None:
    """__all__ lists exactly the expected names, each once.

    What every package's ``__all__`` must satisfy is checked for all of them in ephemeral-complete's
    tests/test_all_attributes.py.
    """
    assert len(ephemeral.core.__all__) == len(set(ephemeral.core.__all__))
    assert set(ephemeral.core.__all__) == EXPECTED


def test_lowlevel_and_sql_layers() -> None:
    """Building blocks import from ephemeral.core.lowlevel, SQL helpers from ephemeral.core.sql."""
    import ephemeral.core.lowlevel
    import ephemeral.core.sql

    assert set(ephemeral.core.sql.__all__) == {
        "derived_identifier",
        "quote_identifier",
        "table_identifier",
        "validate_identifier",
    }
    assert {"AsyncSignalQueue", "CoordinatorBase", "AtomBase", "check_int", "owned_task_group", "next_id"} <= set(
        ephemeral.core.lowlevel.__all__
    )
