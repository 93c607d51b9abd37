"""The public surface of ephemeral.core: every exported name, and nothing by accident."""

from __future__ import annotations

import ephemeral.core

EXPECTED = {
    "ACKED_SIGNAL", "AtomStats", "BlockReason", "CacheStats", "ContributorResult", "ContributorTracker",
    "CoordinatorClosedError", "CoordinatorMetrics", "DEFAULT_ACK_PATTERN", "DecayingReputationWindow",
    "DependencyCoordinator", "DependencyExecutionError", "DependencyResult", "EXPIRED_SIGNAL", "EarlyExitResult",
    "EarlyExitResultCoordinator", "EphemeralKeyedWorkCoordinator", "EphemeralLruCache", "EphemeralLruCacheOptions",
    "EphemeralOperation", "EphemeralOperationSnapshot", "EphemeralOptions", "EphemeralResultCoordinator",
    "EphemeralWorkCoordinator", "GlobPattern", "LastWordsNote", "LastWordsNoteAtom", "OperationEcho",
    "OperationStatus", "PatternSet", "Pinning", "PipelineResult", "PipelineStage", "PriorityKeyedWorkCoordinator",
    "PriorityLane", "PriorityWorkCoordinator", "PriorityWorkCoordinatorOptions", "ProgressSignals", "QuorumResult",
    "ResponsibilitySignalManager", "ResponsibilitySnapshot", "ResultUnavailableError", "ScopedSignalEmitter",
    "ScopedSignalKey", "SignalAggregate", "SignalAggregationWindow", "SignalCommandMatch", "SignalConsensus",
    "SignalConstraints", "SignalContext", "SignalDispatcher", "SignalEvent", "SignalFilter", "SignalPropagation",
    "SignalRetractedEvent", "SignalRouter", "SignalSink", "SignalSource", "SignalStage", "SignalTransform",
    "SignalWaveExecutor", "StageResult", "StageTriggerTimeoutError", "StagedPipeline", "StagedPipelineBuilder",
    "StringPatternMatcher", "Subscription", "TypedSignalSink", "ack_pattern_for", "current_operation",
    "ephemeral_for_each", "subscribe_to_pattern",
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


def test_lowlevel_and_sql_layers() -> None:
    """Building blocks import from ephemeral.core.lowlevel, SQL helpers from ephemeral.core.sql."""
    import ephemeral.core.lowlevel
    import ephemeral.core.sql

    assert set(ephemeral.core.sql.__all__) == {"derived_identifier", "quote_identifier", "validate_identifier"}
    assert {"CoordinatorBase", "AtomBase", "check_int", "open_task_group", "next_id"} <= set(
        ephemeral.core.lowlevel.__all__
    )
    for module in (ephemeral.core.lowlevel, ephemeral.core.sql):
        assert [n for n in module.__all__ if not hasattr(module, n)] == []
        assert not set(module.__all__) & set(ephemeral.core.__all__)
