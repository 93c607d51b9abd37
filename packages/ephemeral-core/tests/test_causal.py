"""caused_event: causal chains, constraints, on_blocked and leaf signals, written once."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ephemeral.core import BlockReason, SignalConstraints, SignalEvent, SignalPropagation
from ephemeral.core.lowlevel import cause_chain, caused_event

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def event(signal: str, propagation: SignalPropagation | None = None) -> SignalEvent[Any]:
    return SignalEvent(signal, 1, None, NOW, propagation)


def test_the_chain_of_a_cause() -> None:
    assert cause_chain(None) is None
    assert cause_chain(event("a")) == SignalPropagation(("a",))
    chain = SignalPropagation(("a", "b"))
    assert cause_chain(event("b", chain)) is chain
    assert cause_chain(chain) is chain


def test_without_constraints_the_chain_grows_by_the_signal() -> None:
    caused = caused_event("b", event("a"), operation_id=7, key="k", timestamp=NOW, payload={"x": 1})
    assert caused is not None
    assert (caused.signal, caused.operation_id, caused.key, caused.timestamp) == ("b", 7, "k", NOW)
    assert caused.propagation == SignalPropagation(("a", "b"))
    assert caused.payload == {"x": 1}
    root = caused_event("a", None, operation_id=1, key=None, timestamp=NOW)
    assert root is not None and root.propagation is None


def test_constraints_refuse_cycles_and_tell_on_blocked() -> None:
    told: list[tuple[SignalEvent[Any], BlockReason]] = []
    constraints = SignalConstraints(on_blocked=lambda blocked, reason: told.append((blocked, reason)))
    cause = event("b", SignalPropagation(("a", "b")))
    assert caused_event("a", cause, operation_id=3, key="k", timestamp=NOW, constraints=constraints) is None
    ((blocked, reason),) = told
    assert reason is BlockReason.CYCLE_DETECTED
    assert (blocked.signal, blocked.operation_id, blocked.propagation) == ("a", 3, SignalPropagation(("a", "b")))


def test_constraints_limit_depth_and_start_chains() -> None:
    shallow = SignalConstraints(max_depth=2)
    assert (
        caused_event("c", SignalPropagation(("a", "b")), operation_id=1, key=None, timestamp=NOW, constraints=shallow)
        is None
    )
    started = caused_event("a", None, operation_id=1, key=None, timestamp=NOW, constraints=shallow)
    assert started is not None and started.propagation == SignalPropagation(("a",))


def test_leaf_signals_carry_no_chain_and_a_failing_on_blocked_is_isolated() -> None:
    def broken(blocked: SignalEvent[Any], reason: BlockReason) -> None:
        raise RuntimeError("boom")

    constraints = SignalConstraints(
        leaf_signals=frozenset({"leaf"}), terminal_signals=frozenset({"end"}), on_blocked=broken
    )
    leaf = caused_event("leaf", event("a"), operation_id=1, key=None, timestamp=NOW, constraints=constraints)
    assert leaf is not None and leaf.propagation is None
    assert caused_event("x", event("end"), operation_id=1, key=None, timestamp=NOW, constraints=constraints) is None
