"""OperationEchoMaker: capture rules, attribution, finalisation paths, bounded memory, isolation, arguments."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from ephemeral.atoms.echo import (
    OperationEchoCapture,
    OperationEchoEntry,
    OperationEchoMaker,
    OperationEchoMakerOptions,
    enable_operation_echoing,
)
from ephemeral.core import (
    EphemeralKeyedWorkCoordinator,
    EphemeralOperationSnapshot,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    OperationStatus,
    SignalEvent,
    TypedSignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import EventHook

WHEN = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Payload:
    state: str


def snapshot(operation_id: int, key: str | None = None, pinned: bool = False) -> EphemeralOperationSnapshot[Any]:
    return EphemeralOperationSnapshot(
        operation_id, key, WHEN, WHEN, None, False, timedelta(0), (), pinned, OperationStatus.COMPLETED
    )


class StubFinalizer:
    """A stand-in coordinator: finalises whatever operation id the test names."""

    def __init__(self) -> None:
        self.operation_finalized: EventHook[EphemeralOperationSnapshot[Any]] = EventHook("operation_finalized")

    def get_operation(self, operation_id: int) -> EphemeralOperationSnapshot[Any] | None:
        return None

    def finalize(self, operation_id: int, key: str | None = None, pinned: bool = False) -> None:
        self.operation_finalized.fire(snapshot(operation_id, key, pinned))


class Rig:
    """A typed sink, a stub finalizer and a maker whose echoes are collected in ``echoes``."""

    def __init__(self, **options: Any) -> None:
        self.sink: TypedSignalSink[Payload] = TypedSignalSink()
        self.finalizer = StubFinalizer()
        self.echoes: list[OperationEchoEntry[Payload]] = []
        self.maker: OperationEchoMaker[Payload] = OperationEchoMaker(
            self.sink, self.finalizer, self.echoes.append, OperationEchoMakerOptions[Payload](**options)
        )

    def emit(self, signal: str, operation_id: int, state: str = "", key: str | None = None) -> None:
        self.sink.emit(signal, Payload(state), key, operation_id=operation_id)


# ------------------------------------------------------------------------------ reference test (item 40)


def test_reference_activation_signal_triggers_echo_capture() -> None:
    """Reference: activation echo.capture, capture echo.*; op 42 emits both, its finalisation yields one echo."""
    rig = Rig(activation_signal_pattern="echo.capture", capture_signal_pattern="echo.*")
    rig.emit("echo.capture", 42, "archived", key="order-1")
    rig.emit("echo.state", 42, "state")
    rig.finalizer.finalize(42)
    assert len(rig.echoes) == 1
    echo = rig.echoes[0]
    assert echo.operation_id == 42
    assert echo.has_signal("echo.state")
    assert echo.signals == ("echo.capture", "echo.state")  # the activation signal is captured by default
    assert [capture.payload for capture in echo.captures] == [Payload("archived"), Payload("state")]
    assert echo.key == "order-1"  # the stub's snapshot has no key: the first capture's
    assert echo.finalized_at.tzinfo is not None and not echo.was_pinned


# ----------------------------------------------------------------------------------------- capture rules


def test_nothing_is_captured_before_activation() -> None:
    """Signals before the activation signal are not kept, nor is the operation tracked."""
    rig = Rig(activation_signal_pattern="echo.capture", capture_signal_pattern="echo.*")
    rig.emit("echo.early", 1)
    assert rig.maker.tracked_count == 0
    rig.emit("echo.capture", 1)
    rig.emit("echo.late", 1)
    rig.finalizer.finalize(1)
    assert rig.echoes[0].signals == ("echo.capture", "echo.late")


def test_activation_is_per_operation() -> None:
    """One operation's activation does not make another's signals captured."""
    rig = Rig(activation_signal_pattern="echo.capture", capture_signal_pattern="echo.*")
    rig.emit("echo.capture", 1)
    rig.emit("echo.state", 2)
    rig.finalizer.finalize(2)
    rig.finalizer.finalize(1)
    assert [echo.operation_id for echo in rig.echoes] == [1]


@pytest.mark.parametrize("activation", [None, "", "   "])
def test_without_activation_every_matching_signal_is_captured(activation: str | None) -> None:
    """A blank or absent activation pattern captures from the first matching signal on."""
    rig = Rig(activation_signal_pattern=activation, capture_signal_pattern="echo.*")
    rig.emit("echo.a", 7)
    rig.emit("other.b", 7)
    rig.emit("other.c", 8)  # nothing to capture: operation 8 is never tracked
    assert rig.maker.tracked_count == 1
    rig.finalizer.finalize(7)
    rig.finalizer.finalize(8)
    assert [(echo.operation_id, echo.signals) for echo in rig.echoes] == [(7, ("echo.a",))]


def test_without_capture_pattern_every_signal_after_activation_is_captured() -> None:
    """With no capture pattern, every typed signal of an activated operation is kept."""
    rig = Rig(activation_signal_pattern="start")
    rig.emit("start", 1)
    rig.emit("x.y.z", 1)
    rig.emit("anything", 1)
    rig.finalizer.finalize(1)
    assert rig.echoes[0].signals == ("start", "x.y.z", "anything")


def test_globs_cross_dots_and_are_anchored() -> None:
    """The capture glob's * matches dots too; matching is anchored and case-sensitive."""
    rig = Rig(capture_signal_pattern="echo.*")
    for name in ("echo.a.b.c", "echo", "ECHO.a", "pre.echo.a", "echo."):
        rig.emit(name, 1)
    rig.finalizer.finalize(1)
    assert rig.echoes[0].signals == ("echo.a.b.c", "echo.")


def test_activation_signal_can_be_left_out() -> None:
    """With capture_activation_signal=False the activating signal is not captured, only what follows."""
    rig = Rig(
        activation_signal_pattern="echo.capture", capture_signal_pattern="echo.*", capture_activation_signal=False
    )
    rig.emit("echo.capture", 1)
    rig.emit("echo.capture", 2)
    rig.emit("echo.state", 2)
    assert rig.maker.tracked_count == 2  # both activated
    rig.finalizer.finalize(1)  # activated, nothing captured: no echo
    rig.finalizer.finalize(2)
    assert [(echo.operation_id, echo.signals) for echo in rig.echoes] == [(2, ("echo.state",))]
    assert rig.maker.tracked_count == 0


def test_capture_predicate_filters_signals() -> None:
    """Only signals the predicate accepts are captured; it sees the whole typed event."""
    seen: list[SignalEvent[Payload]] = []

    def important(event: SignalEvent[Payload]) -> bool:
        seen.append(event)
        return event.payload is not None and event.payload.state != "noise"

    rig = Rig(capture_signal_pattern="echo.*", capture_predicate=important)
    rig.emit("echo.a", 1, "keep")
    rig.emit("echo.b", 1, "noise")
    rig.emit("other", 1, "keep")  # the pattern rejects it before the predicate is asked
    rig.finalizer.finalize(1)
    assert rig.echoes[0].signals == ("echo.a",)
    assert [event.signal for event in seen] == ["echo.a", "echo.b"]


def test_a_raising_predicate_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """A predicate that raises is logged and counts as a rejection; capturing carries on."""

    def flaky(event: SignalEvent[Payload]) -> bool:
        if event.signal == "echo.bad":
            raise ValueError("boom")
        return True

    rig = Rig(capture_predicate=flaky)
    with caplog.at_level(logging.ERROR):
        rig.emit("echo.bad", 1)
        rig.emit("echo.good", 1)
    rig.finalizer.finalize(1)
    assert rig.echoes[0].signals == ("echo.good",)
    assert rig.maker.predicate_errors == 1
    assert "capture_predicate" in caplog.text


def test_an_operation_finalised_without_captures_leaves_no_echo() -> None:
    """Finalising an untracked operation, or one already echoed, makes no echo."""
    rig = Rig(capture_signal_pattern="echo.*")
    rig.finalizer.finalize(99)
    rig.emit("echo.a", 1)
    rig.finalizer.finalize(1)
    rig.finalizer.finalize(1)
    assert len(rig.echoes) == 1 and rig.maker.echo_count == 1


def test_captures_keep_payload_timestamp_and_key() -> None:
    """Each capture holds the signal, its payload, its timestamp and its key."""
    rig = Rig()
    event = rig.sink.emit("echo.a", Payload("p"), "k1", operation_id=5)
    assert rig.maker.get_captures(5) == (OperationEchoCapture("echo.a", Payload("p"), event.timestamp, "k1"),)
    assert rig.maker.get_captures(6) is None


def test_the_snapshot_key_and_pinning_win() -> None:
    """An operation with a key echoes its own key, and was_pinned reflects the snapshot."""
    rig = Rig()
    rig.emit("echo.a", 1, key="signal-key")
    rig.finalizer.finalize(1, key="operation-key", pinned=True)
    assert (rig.echoes[0].key, rig.echoes[0].was_pinned) == ("operation-key", True)


def test_entries_are_frozen() -> None:
    """Echo entries and captures cannot be changed."""
    rig = Rig()
    rig.emit("echo.a", 1)
    rig.finalizer.finalize(1)
    with pytest.raises(AttributeError):
        rig.echoes[0].key = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rig.echoes[0].captures[0].signal = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------- bounded memory


def test_tracked_operations_are_bounded() -> None:
    """A thousand activated operations that never finish leave at most max_tracked_operations tracked."""
    rig = Rig(activation_signal_pattern="echo.capture", max_tracked_operations=10)
    for operation_id in range(1000):
        rig.emit("echo.capture", operation_id)
        assert rig.maker.tracked_count <= 10
    assert rig.maker.dropped_count == 990
    rig.finalizer.finalize(0)  # dropped long ago: no echo
    rig.finalizer.finalize(999)
    assert [echo.operation_id for echo in rig.echoes] == [999]


def test_the_least_recently_updated_operation_is_dropped_first() -> None:
    """At the bound, the operation that captured least recently goes, not the oldest one."""
    rig = Rig(max_tracked_operations=2)
    rig.emit("a", 1)
    rig.emit("a", 2)
    rig.emit("b", 1)  # operation 2 is now the least recently updated
    rig.emit("a", 3)
    assert (
        rig.maker.get_captures(1) is not None,
        rig.maker.get_captures(2),
        rig.maker.get_captures(3) is not None,
    ) == (
        True,
        None,
        True,
    )


def test_signals_of_operations_never_activated_are_not_tracked() -> None:
    """Unlike the reference, operations that never activate cost nothing, however many signals they emit."""
    rig = Rig(activation_signal_pattern="echo.capture")
    for operation_id in range(1000):
        rig.emit("echo.state", operation_id)
    assert rig.maker.tracked_count == 0 and rig.maker.dropped_count == 0


def test_captures_per_operation_are_bounded_keeping_the_latest() -> None:
    """Beyond max_captures_per_operation the oldest captures of an operation go."""
    rig = Rig(max_captures_per_operation=3)
    for i in range(10):
        rig.emit(f"s{i}", 1)
    rig.finalizer.finalize(1)
    assert rig.echoes[0].signals == ("s7", "s8", "s9")


async def test_max_capture_age_drops_stale_operations() -> None:
    """An operation with no capture for max_capture_age is dropped without an echo; a fresher one is echoed."""
    rig = Rig(max_capture_age=timedelta(minutes=10))
    rig.emit("a", 1)
    await anyio.sleep(300)
    rig.emit("a", 2)
    await anyio.sleep(300)  # operation 1 is 10 min stale, operation 2 is 5 min stale
    rig.finalizer.finalize(1)
    rig.finalizer.finalize(2)
    assert [echo.operation_id for echo in rig.echoes] == [2]
    assert rig.maker.dropped_count == 1


async def test_without_max_capture_age_nothing_goes_stale() -> None:
    """By default only the count bounds the tracked set: an operation finalised a day later is still echoed."""
    rig = Rig()
    rig.emit("a", 1)
    await anyio.sleep(24 * 3600)
    rig.finalizer.finalize(1)
    assert [echo.operation_id for echo in rig.echoes] == [1]


# ------------------------------------------------------------------------------------ a real coordinator


def make_sink() -> TypedSignalSink[Payload]:
    return TypedSignalSink()


async def test_signals_emitted_in_a_body_belong_to_its_operation() -> None:
    """A typed signal emitted inside a body, without operation_id, is captured for that body's operation."""
    sink = make_sink()
    echoes: list[OperationEchoEntry[Payload]] = []
    ids: dict[str, int] = {}

    async def body(item: str) -> None:
        ids[item] = current_operation().id
        event = sink.emit("echo.capture", Payload(item), key=item)
        assert event.operation_id != ids[item]  # the sink gave it a fresh id
        await anyio.sleep(1)
        sink.emit("echo.state", Payload(f"{item} done"), key=item)

    coordinator = EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=4))
    options = OperationEchoMakerOptions[Payload](
        activation_signal_pattern="echo.capture", capture_signal_pattern="echo.*"
    )
    with OperationEchoMaker(sink, coordinator, echoes.append, options):
        async with coordinator:
            for item in ("a", "b", "c"):
                await coordinator.enqueue(item)
    assert sorted((echo.operation_id, echo.key, echo.signals) for echo in echoes) == sorted(
        (ids[item], item, ("echo.capture", "echo.state")) for item in "abc"
    )
    assert [capture.payload.state for capture in echoes[0].captures][1].endswith("done")


async def test_signals_from_another_coordinators_body_keep_their_own_id() -> None:
    """Inside a body of some other coordinator, a typed signal belongs to the event's own operation id."""
    sink = make_sink()
    other_ids: list[int] = []

    async def other_body(item: int) -> None:
        other_ids.append(current_operation().id)
        sink.emit("echo.a", Payload("explicit"), operation_id=item)
        sink.emit("echo.b", Payload("fresh id"))

    watched = EphemeralWorkCoordinator(_noop)
    with OperationEchoMaker(sink, watched) as maker:
        async with watched, EphemeralWorkCoordinator(other_body) as other:
            await other.enqueue(12345)
            await other.drain()
            explicit = maker.get_captures(12345)
            assert explicit is not None and [capture.signal for capture in explicit] == ["echo.a"]
            assert maker.get_captures(other_ids[0]) is None
            assert maker.tracked_count == 2  # 12345 and the fresh id of echo.b


async def _noop(item: object) -> None:
    return None


@pytest.mark.real_time
async def test_signals_emitted_from_a_worker_thread_belong_to_the_body() -> None:
    """A body that emits from a worker thread still has its signals captured for its operation."""
    sink = make_sink()
    echoes: list[OperationEchoEntry[Payload]] = []

    async def body(item: str) -> None:
        await anyio.to_thread.run_sync(lambda: sink.emit("echo.thread", Payload(item)))

    coordinator = EphemeralWorkCoordinator(body)
    with OperationEchoMaker(sink, coordinator, echoes.append):
        async with coordinator:
            await coordinator.enqueue("t")
    assert [echo.signals for echo in echoes] == [("echo.thread",)]


async def test_operations_trimmed_from_the_window_are_echoed() -> None:
    """With a window of 2, the third operation pushes the first out, which finalises and echoes it."""
    sink = make_sink()
    echoes: list[OperationEchoEntry[Payload]] = []

    async def body(item: int) -> None:
        sink.emit("echo.n", Payload(str(item)))

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_tracked_operations=2)) as coordinator:
        with enable_operation_echoing(coordinator, sink, echoes.append):
            for item in range(3):
                await coordinator.enqueue(item)
                await anyio.sleep(0.1)
            assert [echo.captures[0].payload.state for echo in echoes] == ["0"]
    assert len(echoes) == 1  # the maker closed before the coordinator: the last two were not echoed


async def test_operations_aged_out_of_the_window_are_echoed() -> None:
    """Operations leave the window max_operation_lifetime after finishing; their echo comes then."""
    sink = make_sink()
    echoes: list[OperationEchoEntry[Payload]] = []

    async def body(item: int) -> None:
        sink.emit("echo.n", Payload(str(item)))

    options = EphemeralOptions(max_operation_lifetime=timedelta(hours=1))
    async with EphemeralWorkCoordinator(body, options) as coordinator:
        with enable_operation_echoing(coordinator, sink, echoes.append):
            await coordinator.enqueue(1)
            await anyio.sleep(3599)
            assert echoes == []
            await anyio.sleep(2)
            assert [echo.signals for echo in echoes] == [("echo.n",)]


async def test_evicted_operations_are_echoed() -> None:
    """Evicting an operation finalises it, so its echo is made at once."""
    sink = make_sink()
    echoes: list[OperationEchoEntry[Payload]] = []

    async def body(item: int) -> None:
        sink.emit("echo.n", Payload(str(item)))

    async with EphemeralWorkCoordinator(body) as coordinator:
        with enable_operation_echoing(coordinator, sink, echoes.append):
            operation_id = await coordinator.enqueue(1)
            await anyio.sleep(0.1)
            assert coordinator.evict(operation_id)
            assert [echo.operation_id for echo in echoes] == [operation_id]


async def test_keyed_coordinator_operations_echo_their_key() -> None:
    """With a keyed coordinator, the echo carries the operation's key."""
    sink = make_sink()
    echoes: list[OperationEchoEntry[Payload]] = []

    async def body(item: tuple[str, int]) -> None:
        sink.emit("echo.step", Payload(str(item[1])))

    coordinator = EphemeralKeyedWorkCoordinator(lambda item: item[0], body)
    with enable_operation_echoing(coordinator, sink, echoes.append):
        async with coordinator:
            await coordinator.enqueue(("customer-1", 1))
            await coordinator.enqueue(("customer-2", 2))
    assert sorted((echo.key, echo.signals) for echo in echoes) == [
        ("customer-1", ("echo.step",)),
        ("customer-2", ("echo.step",)),
    ]


async def test_memory_stays_flat_through_a_long_run() -> None:
    """Two thousand operations through a window of 20: the maker tracks only what is still in the window."""
    sink = make_sink()
    echoes: list[int] = []
    peak = 0

    async def body(item: int) -> None:
        nonlocal peak
        sink.emit("echo.capture", Payload(str(item)))
        peak = max(peak, maker.tracked_count)

    options = EphemeralOptions(max_concurrency=8, max_tracked_operations=20)
    async with EphemeralWorkCoordinator(body, options) as coordinator:
        with enable_operation_echoing(
            coordinator,
            sink,
            lambda echo: echoes.append(echo.operation_id),
            OperationEchoMakerOptions(max_tracked_operations=64),
        ) as maker:
            for item in range(2000):
                await coordinator.enqueue(item)
            await coordinator.drain()
            assert maker.tracked_count == 20 and maker.dropped_count == 0
    assert peak <= 20 + 8 + 1
    assert len(echoes) == 2000 - 20  # the last 20 were still in the window when the maker closed


# ------------------------------------------------------------------------------------ handlers, closing


def test_echo_created_handlers_and_a_raising_on_echo_are_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """on_echo raising is logged; echo_created handlers still run, and later echoes are made."""
    sink: TypedSignalSink[Payload] = TypedSignalSink()
    finalizer = StubFinalizer()
    created: list[int] = []

    def broken(echo: OperationEchoEntry[Payload]) -> None:
        raise RuntimeError("repository down")

    maker = OperationEchoMaker(sink, finalizer, broken)
    maker.echo_created.connect(lambda echo: created.append(echo.operation_id))
    maker.echo_created.connect(lambda echo: 1 / 0)
    with caplog.at_level(logging.ERROR):
        for operation_id in (1, 2):
            sink.emit("a", Payload(""), operation_id=operation_id)
            finalizer.finalize(operation_id)
    assert created == [1, 2] and maker.echo_count == 2
    assert "repository down" in caplog.text and maker.echo_created.errors == 2


def test_closing_unsubscribes_and_forgets() -> None:
    """After close (or leaving `with`) nothing is captured or echoed; close is idempotent."""
    rig = Rig()
    with rig.maker as maker:
        rig.emit("a", 1)
        assert maker.tracked_count == 1
    assert maker.closed and maker.tracked_count == 0
    rig.emit("a", 2)
    rig.finalizer.finalize(1)
    rig.finalizer.finalize(2)
    maker.close()
    assert rig.echoes == [] and rig.finalizer.operation_finalized.handlers == ()


def test_enable_operation_echoing_accepts_a_sync_callable() -> None:
    """A plain function receives each echo."""
    sink: TypedSignalSink[Payload] = TypedSignalSink()
    finalizer = StubFinalizer()
    got: list[OperationEchoEntry[Payload]] = []
    with enable_operation_echoing(finalizer, sink, got.append) as maker:
        assert isinstance(maker, OperationEchoMaker)
        sink.emit("a", Payload(""), operation_id=3)
        finalizer.finalize(3)
    assert [echo.operation_id for echo in got] == [3]


# -------------------------------------------------------------------------------------------- arguments


def test_options_defaults() -> None:
    """The defaults capture every typed signal of every operation, 256 operations of 64 captures, no age limit."""
    options = OperationEchoMakerOptions[Payload]()
    assert options.activation_signal_pattern is None and options.capture_signal_pattern is None
    assert options.capture_predicate is None and options.capture_activation_signal is True
    assert (options.max_tracked_operations, options.max_captures_per_operation) == (256, 64)
    assert options.max_capture_age is None


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("activation_signal_pattern", 5, TypeError),
        ("capture_signal_pattern", ["echo.*"], TypeError),
        ("capture_predicate", "yes", TypeError),
        ("capture_activation_signal", 1, TypeError),
        ("max_tracked_operations", 0, ValueError),
        ("max_tracked_operations", 2.0, TypeError),
        ("max_captures_per_operation", 0, ValueError),
        ("max_capture_age", 0, ValueError),
        ("max_capture_age", "5m", TypeError),
    ],
)
def test_options_reject_bad_values(field: str, value: Any, error: type[Exception]) -> None:
    """A bad option raises at construction, naming the field."""
    with pytest.raises(error, match=field):
        OperationEchoMakerOptions(**{field: value})


async def _async_on_echo(echo: OperationEchoEntry[Payload]) -> None:
    return None


class _AsyncCallable:
    async def __call__(self, echo: OperationEchoEntry[Payload]) -> None:
        return None


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("typed_sink", "sink"),
        ("finalizer", object()),
        ("on_echo", 5),
        ("on_echo", _async_on_echo),
        ("on_echo", _AsyncCallable()),
        ("options", {"max_tracked_operations": 5}),
        ("clock", 1.0),
    ],
)
def test_maker_rejects_bad_arguments(argument: str, value: Any) -> None:
    """A bad maker argument raises TypeError naming it."""
    kwargs: dict[str, Any] = {"typed_sink": TypedSignalSink(), "finalizer": StubFinalizer(), argument: value}
    with pytest.raises(TypeError, match=argument):
        OperationEchoMaker(**kwargs)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("coordinator", object()), ("echo_atom", None), ("echo_atom", _async_on_echo), ("typed_sink", None)],
)
def test_enable_operation_echoing_rejects_bad_arguments(argument: str, value: Any) -> None:
    """A bad argument to enable_operation_echoing raises TypeError naming it."""
    kwargs: dict[str, Any] = {
        "coordinator": StubFinalizer(),
        "typed_sink": TypedSignalSink(),
        "echo_atom": print,
        argument: value,
    }
    with pytest.raises(TypeError, match=argument):
        enable_operation_echoing(**kwargs)
