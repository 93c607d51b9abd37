"""SignalAnomalyDetector: counting at call time, the window's edge, coordinators' signals, bad input, README."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink, current_operation
from ephemeral.core.testing import arun_readme_examples, output_blocks
from ephemeral.patterns.anomalydetector import SignalAnomalyDetector


def virtual_sink(max_age: float = 60.0) -> SignalSink:
    """A sink on the event loop's (virtual) clock."""
    return SignalSink(max_age=max_age, clock=anyio.current_time)


async def test_seed_example() -> None:
    """The seed: five errors in ten seconds are an anomaly; the count is the number of matches."""
    sink = virtual_sink()
    detector = SignalAnomalyDetector(sink, pattern="error.*", threshold=5, window=timedelta(seconds=10))
    for n in range(4):
        sink.emit(f"error.db.{n}")
        await anyio.sleep(1)
    sink.emit("info.started")
    assert not detector.is_anomalous()
    assert detector.get_match_count() == 4
    sink.emit("error.timeout")
    assert detector.is_anomalous()
    assert detector.get_match_count() == 5


async def test_exact_at_the_window_edge() -> None:
    """A signal emitted at t counts at t + window and no longer an instant later."""
    sink = virtual_sink()
    detector = SignalAnomalyDetector(sink, pattern="error.*", threshold=2, window=10)
    sink.emit("error.a")  # t = 0
    await anyio.sleep(4)
    sink.emit("error.b")  # t = 4
    await anyio.sleep(6)  # t = 10: error.a is exactly window old
    assert detector.get_match_count() == 2
    assert detector.is_anomalous()
    await anyio.sleep(0.001)
    assert detector.get_match_count() == 1
    assert not detector.is_anomalous()
    await anyio.sleep(4)  # t = 14.001: error.b has aged out too
    assert detector.get_match_count() == 0


async def test_reads_at_call_time_without_timers() -> None:
    """No state between calls: the count follows the sink, including retraction and clearing."""
    sink = virtual_sink()
    detector = SignalAnomalyDetector(sink, pattern="error.*", threshold=3, window=30)
    for _ in range(3):
        sink.emit("error.x")
    assert detector.is_anomalous()
    assert sink.retract("error.x") == 3
    assert detector.get_match_count() == 0
    assert not detector.is_anomalous()


async def test_pattern_alternatives_and_non_matching_signals() -> None:
    """Comma-separated alternatives each count; other signals do not; matching is anchored and case-sensitive."""
    sink = virtual_sink()
    detector = SignalAnomalyDetector(sink, pattern="error.*, timeout.*", threshold=3, window=5)
    for name in ("error.a", "timeout.b", "ERROR.c", "info.error.d", "error", "timeout.e.f"):
        sink.emit(name)
    assert detector.get_match_count() == 3
    assert detector.is_anomalous()


async def test_counts_signals_of_coordinators_sharing_the_sink() -> None:
    """Signals emitted by operations of a coordinator on the sink count, once each."""
    sink = virtual_sink()
    detector = SignalAnomalyDetector(sink, pattern="error.*", threshold=3, window=10)

    async def body(item: int) -> None:
        current_operation().emit(f"error.item.{item}")

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=2, signals=sink)) as c:
        for item in range(3):
            await c.enqueue(item)
        await c.drain()
        assert detector.get_match_count() == 3
        assert detector.is_anomalous()
        await anyio.sleep(11)
        assert detector.get_match_count() == 0


def test_bad_input_names_the_argument() -> None:
    sink = SignalSink(max_age=60)
    with pytest.raises(ValueError, match="threshold"):
        SignalAnomalyDetector(sink, threshold=0)
    with pytest.raises(ValueError, match="threshold"):
        SignalAnomalyDetector(sink, threshold=-1)
    with pytest.raises(TypeError, match="threshold"):
        SignalAnomalyDetector(sink, threshold=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        SignalAnomalyDetector(sink, window=0)
    with pytest.raises(ValueError, match="window"):
        SignalAnomalyDetector(sink, window=timedelta(seconds=-1))
    with pytest.raises(ValueError, match=r"window.*max_age"):
        SignalAnomalyDetector(sink, window=61)
    with pytest.raises(TypeError, match="window"):
        SignalAnomalyDetector(sink, window="10s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        SignalAnomalyDetector(sink, pattern=" ")
    with pytest.raises(ValueError, match="pattern"):
        SignalAnomalyDetector(sink, pattern=" , ")  # only empty alternatives: it would never match anything
    with pytest.raises(TypeError, match="pattern"):
        SignalAnomalyDetector(sink, pattern=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sink"):
        SignalAnomalyDetector(object())  # type: ignore[arg-type]


def test_properties_and_repr() -> None:
    detector = SignalAnomalyDetector(SignalSink(), pattern="error.*", threshold=5, window=timedelta(seconds=10))
    assert (detector.pattern, detector.threshold, detector.window) == ("error.*", 5, timedelta(seconds=10))
    assert repr(detector) == "SignalAnomalyDetector(pattern='error.*', threshold=5, window=10)"


async def test_readme_example() -> None:
    """The README's examples run as written (on this backend, in virtual time) and print what it shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert await arun_readme_examples(readme) == "".join(output_blocks(readme))
