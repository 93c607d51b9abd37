"""Signal events, propagation paths, emission constraints and command parsing."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ephemeral.core import (
    BlockReason,
    SignalCommandMatch,
    SignalConstraints,
    SignalEvent,
    SignalPropagation,
    SignalRetractedEvent,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def chain(*signals: str) -> SignalPropagation:
    """A propagation path built the way emissions build it: root, then extend."""
    propagation = SignalPropagation.root(signals[0])
    for signal in signals[1:]:
        propagation = propagation.extend(signal)
    return propagation


# ------------------------------------------------------------------------------------------ SignalEvent


def test_signal_event_fields_and_defaults() -> None:
    """A SignalEvent keeps its fields and defaults to no propagation and no payload."""
    event: SignalEvent[Any] = SignalEvent("order.placed", 7, "cust-1", T0)
    assert event.signal == "order.placed"
    assert event.operation_id == 7
    assert event.key == "cust-1"
    assert event.timestamp == T0
    assert event.propagation is None
    assert event.payload is None


def test_signal_event_is_frozen() -> None:
    """Assigning a field of a SignalEvent raises FrozenInstanceError."""
    event: SignalEvent[Any] = SignalEvent("a", 1, None, T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.signal = "b"  # type: ignore[misc]


def test_signal_event_value_equality_and_hash() -> None:
    """Events with equal fields are equal and hash alike; any differing field makes them unequal."""
    a: SignalEvent[Any] = SignalEvent("a", 1, "k", T0, chain("x", "a"))
    b: SignalEvent[Any] = SignalEvent("a", 1, "k", T0, chain("x", "a"))
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != SignalEvent("b", 1, "k", T0, chain("x", "a"))
    assert a != SignalEvent("a", 2, "k", T0, chain("x", "a"))
    assert a != SignalEvent("a", 1, None, T0, chain("x", "a"))
    assert a != SignalEvent("a", 1, "k", T0 + timedelta(seconds=1), chain("x", "a"))
    assert a != SignalEvent("a", 1, "k", T0, chain("y", "a"))
    assert a != SignalEvent("a", 1, "k", T0)


def test_signal_event_equality_ignores_payload() -> None:
    """The payload does not take part in equality, so a typed event equals its payload-free form."""
    typed: SignalEvent[dict[str, int]] = SignalEvent("a", 1, None, T0, payload={"n": 1})
    assert typed == typed.without_payload()
    assert typed == SignalEvent("a", 1, None, T0, payload={"n": 2})


def test_depth_is_zero_without_propagation_and_path_length_with_it() -> None:
    """depth is 0 for an event with no cause and the length of its path otherwise (1 for a root)."""
    assert SignalEvent("a", 1, None, T0).depth == 0
    assert SignalEvent("a", 1, None, T0, SignalPropagation.root("a")).depth == 1
    assert SignalEvent("c", 1, None, T0, chain("a", "b", "c")).depth == 3


def test_would_cycle() -> None:
    """would_cycle is True exactly for signals already on the event's propagation path."""
    event: SignalEvent[Any] = SignalEvent("c", 1, None, T0, chain("a", "b", "c"))
    assert event.would_cycle("a")
    assert event.would_cycle("c")
    assert not event.would_cycle("d")
    assert not event.would_cycle("a.b")
    assert not SignalEvent("a", 1, None, T0).would_cycle("a")


def test_is_is_an_exact_comparison() -> None:
    """is_ compares the name exactly: no globbing, no case folding, no prefix match."""
    event: SignalEvent[Any] = SignalEvent("order.placed", 1, None, T0)
    assert event.is_("order.placed")
    assert not event.is_("order.*")
    assert not event.is_("Order.Placed")
    assert not event.is_("order")


def test_starts_with_is_an_ordinal_prefix_test() -> None:
    """starts_with tests a case-sensitive prefix of the name."""
    event: SignalEvent[Any] = SignalEvent("order.placed", 1, None, T0)
    assert event.starts_with("order.")
    assert event.starts_with("")
    assert event.starts_with("order.placed")
    assert not event.starts_with("Order")
    assert not event.starts_with("order.placed.x")


def test_without_payload_drops_only_the_payload() -> None:
    """without_payload returns the same event (fields and propagation) with payload None."""
    path = chain("x", "a")
    typed: SignalEvent[list[int]] = SignalEvent("a", 3, "k", T0, path, [1, 2])
    bare = typed.without_payload()
    assert bare.payload is None
    assert (bare.signal, bare.operation_id, bare.key, bare.timestamp, bare.propagation) == ("a", 3, "k", T0, path)
    assert typed.payload == [1, 2]
    plain: SignalEvent[Any] = SignalEvent("a", 3, "k", T0)
    assert plain.without_payload() == plain


# ------------------------------------------------------------------------------------------ retracted


def test_signal_retracted_event() -> None:
    """SignalRetractedEvent defaults to a non-pattern retraction, compares by value and has is_."""
    event = SignalRetractedEvent("a.b", 4, "k", T0)
    assert event.was_pattern_match is False
    assert event.pattern is None
    assert event.is_("a.b")
    assert not event.is_("a.*")
    assert event == SignalRetractedEvent("a.b", 4, "k", T0)
    assert event != SignalRetractedEvent("a.b", 4, "k", T0, True, "a.*")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.signal = "c"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ propagation


def test_propagation_root_extend_depth_contains_str() -> None:
    """A propagation is an immutable path: root has one signal, extend appends without mutating."""
    root = SignalPropagation.root("a")
    assert root.path == ("a",)
    assert root.depth == 1
    extended = root.extend("b").extend("c")
    assert extended.path == ("a", "b", "c")
    assert extended.depth == 3
    assert root.path == ("a",)
    assert extended.contains("b")
    assert not extended.contains("d")
    assert str(extended) == "a -> b -> c"
    assert str(root) == "a"
    assert extended == chain("a", "b", "c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        root.path = ()  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ constraints


def test_should_block_passes_without_a_cause() -> None:
    """An emission with no cause is never blocked, even under the strictest limits."""
    constraints = SignalConstraints(max_depth=1, terminal_signals=frozenset({"a"}))
    assert constraints.should_block("a", None) is None


def test_should_block_max_depth() -> None:
    """A cause whose depth has reached max_depth blocks with MAX_DEPTH_EXCEEDED."""
    constraints = SignalConstraints(max_depth=3)
    assert constraints.should_block("d", chain("a", "b")) is None
    assert constraints.should_block("d", chain("a", "b", "c")) is BlockReason.MAX_DEPTH_EXCEEDED
    assert constraints.should_block("e", chain("a", "b", "c", "d")) is BlockReason.MAX_DEPTH_EXCEEDED


def test_should_block_cycles() -> None:
    """A signal already on the cause's path blocks with CYCLE_DETECTED unless block_cycles is off."""
    assert SignalConstraints().should_block("a", chain("a", "b")) is BlockReason.CYCLE_DETECTED
    assert SignalConstraints().should_block("b", chain("a", "b")) is BlockReason.CYCLE_DETECTED
    assert SignalConstraints().should_block("c", chain("a", "b")) is None
    assert SignalConstraints(block_cycles=False).should_block("a", chain("a", "b")) is None


def test_should_block_terminal_signal() -> None:
    """A cause ending in a terminal signal blocks with TERMINAL_SIGNAL_REACHED; earlier terminals do not."""
    constraints = SignalConstraints(terminal_signals=frozenset({"done"}))
    assert constraints.should_block("next", chain("start", "done")) is BlockReason.TERMINAL_SIGNAL_REACHED
    assert constraints.should_block("next", chain("done", "middle")) is None


def test_should_block_reason_order() -> None:
    """Depth is checked before cycles, and cycles before terminal signals."""
    constraints = SignalConstraints(max_depth=2, terminal_signals=frozenset({"b"}))
    assert constraints.should_block("a", chain("a", "b")) is BlockReason.MAX_DEPTH_EXCEEDED
    constraints = SignalConstraints(terminal_signals=frozenset({"b"}))
    assert constraints.should_block("a", chain("a", "b")) is BlockReason.CYCLE_DETECTED


def test_depth_ten_chain_allows_ten_signals_and_blocks_the_eleventh() -> None:
    """With the default max_depth of 10 the longest chain is 10 signals; the 11th emission is blocked."""
    constraints = SignalConstraints.DEFAULT
    propagation: SignalPropagation | None = None
    emitted = 0
    for index in range(20):
        signal = f"s{index}"
        if constraints.should_block(signal, propagation) is not None:
            assert constraints.should_block(signal, propagation) is BlockReason.MAX_DEPTH_EXCEEDED
            break
        propagation = constraints.propagation_for(signal, propagation)
        emitted += 1
    assert emitted == 10
    assert propagation is not None
    assert propagation.depth == 10


def test_propagation_for_root_extend_and_leaf() -> None:
    """An allowed emission gets root(signal) without a cause, cause.extend(signal) with one, and None if a leaf."""
    constraints = SignalConstraints(leaf_signals=frozenset({"leaf"}))
    assert constraints.propagation_for("a", None) == SignalPropagation.root("a")
    assert constraints.propagation_for("b", chain("a")) == chain("a", "b")
    assert constraints.propagation_for("leaf", None) is None
    assert constraints.propagation_for("leaf", chain("a")) is None


def test_constraint_sets_are_frozen_whatever_was_passed() -> None:
    """Terminal and leaf signals given as plain sets or lists are stored as frozensets."""
    constraints = SignalConstraints(
        terminal_signals={"t"},  # type: ignore[arg-type]
        leaf_signals=["l"],  # type: ignore[arg-type]
    )
    assert constraints.terminal_signals == frozenset({"t"})
    assert isinstance(constraints.terminal_signals, frozenset)
    assert constraints.leaf_signals == frozenset({"l"})
    assert isinstance(constraints.leaf_signals, frozenset)


def test_constraint_presets() -> None:
    """DEFAULT is depth 10 with cycle blocking, STRICT depth 5, NONE effectively unlimited without cycle blocking."""
    assert SignalConstraints.DEFAULT.max_depth == 10
    assert SignalConstraints.DEFAULT.block_cycles is True
    assert SignalConstraints() == SignalConstraints.DEFAULT
    assert SignalConstraints.STRICT.max_depth == 5
    assert SignalConstraints.STRICT.block_cycles is True
    assert SignalConstraints.NONE.max_depth == 2**31 - 1
    assert SignalConstraints.NONE.block_cycles is False
    long_cycle = chain(*[f"s{i}" for i in range(100)], "s0")
    assert SignalConstraints.NONE.should_block("s1", long_cycle) is None
    assert SignalConstraints.STRICT.should_block("x", chain("a", "b", "c", "d", "e")) is BlockReason.MAX_DEPTH_EXCEEDED


def test_constraints_are_frozen_and_keyword_only() -> None:
    """SignalConstraints cannot be mutated and takes keyword arguments only."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        SignalConstraints.DEFAULT.max_depth = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        SignalConstraints(3)  # type: ignore[call-arg]


@pytest.mark.parametrize("depth", [0, -1, -100])
def test_max_depth_below_one_is_rejected(depth: int) -> None:
    """A max_depth below 1 raises ValueError naming max_depth."""
    with pytest.raises(ValueError, match="max_depth"):
        SignalConstraints(max_depth=depth)


@pytest.mark.parametrize("depth", ["3", 2.5, None, True])
def test_max_depth_must_be_an_int(depth: Any) -> None:
    """A max_depth that is not an int raises TypeError naming max_depth."""
    with pytest.raises(TypeError, match="max_depth"):
        SignalConstraints(max_depth=depth)


def test_max_depth_one_blocks_every_caused_emission() -> None:
    """With max_depth=1 a root emission is allowed but nothing it causes is."""
    constraints = SignalConstraints(max_depth=1)
    assert constraints.should_block("a", None) is None
    assert constraints.should_block("b", chain("a")) is BlockReason.MAX_DEPTH_EXCEEDED


# ------------------------------------------------------------------------------------------ command match


@pytest.mark.parametrize(
    ("signal", "command", "payload"),
    [
        ("window.size.set:100", "window.size.set", "100"),
        ("prefix.window.size.set:200", "window.size.set", "200"),
        ("window.size.set:", "window.size.set", ""),
        ("window.time.set:00:30:00", "window.time.set", "00:30:00"),
        ("command:payload with spaces!@#", "command", "payload with spaces!@#"),
        ("cmd:value1:value2:value3", "cmd", "value1:value2:value3"),
        ("prefix.suffix.cmd:123", "cmd", "123"),
        ("window.size.increase:50", "window.size.increase", "50"),
        ("window.time.set:30s", "window.time.set", "30s"),
        ("xcmd:1", "cmd", "1"),
        ("cmd:  padded  ", "cmd", "  padded  "),
    ],
)
def test_try_parse_matches(signal: str, command: str, payload: str) -> None:
    """try_parse finds the command followed by a colon anywhere and returns the untrimmed rest as payload."""
    match = SignalCommandMatch.try_parse(signal, command)
    assert match is not None
    assert match.command == command
    assert match.payload == payload
    assert match == (command, payload)


@pytest.mark.parametrize(
    ("signal", "command"),
    [
        (None, "window.size.set"),
        ("", "window.size.set"),
        ("window.size.set:100", None),
        ("window.size.set:100", ""),
        (None, None),
        ("other.signal", "window.size.set"),
        ("window.size.set", "window.size.set"),
        ("no.match", "window.size.set"),
        ("Window.Size.Set:1", "window.size.set"),
        ("window.size.set :1", "window.size.set"),
    ],
)
def test_try_parse_misses(signal: str | None, command: str | None) -> None:
    """try_parse returns None for empty or None arguments, a missing command, or a command without a colon."""
    assert SignalCommandMatch.try_parse(signal, command) is None


def test_try_parse_first_occurrence_wins() -> None:
    """When the command appears twice, the first occurrence followed by a colon decides the payload."""
    match = SignalCommandMatch.try_parse("cmd:a.cmd:b", "cmd")
    assert match == ("cmd", "a.cmd:b")
    match = SignalCommandMatch.try_parse("cmd.x.cmd:b", "cmd")
    assert match == ("cmd", "b")


def test_command_match_unpacks_as_a_named_tuple() -> None:
    """A match unpacks into (command, payload) like the seed's deconstruction."""
    match = SignalCommandMatch.try_parse("window.size.set:100", "window.size.set")
    assert match is not None
    command, payload = match
    assert (command, payload) == ("window.size.set", "100")
    assert match._fields == ("command", "payload")
    assert isinstance(match, tuple)


def test_command_match_find_over_many_signals() -> None:
    """find returns the parse of the first signal that carries the command, or None."""
    signals = ["noise", "rate-limit:500ms", "rate-limit:1s"]
    assert SignalCommandMatch.find(signals, "rate-limit") == ("rate-limit", "500ms")
    assert SignalCommandMatch.find(signals, "other") is None
    assert SignalCommandMatch.find([], "rate-limit") is None
