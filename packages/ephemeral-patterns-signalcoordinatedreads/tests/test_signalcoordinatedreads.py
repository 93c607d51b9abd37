"""SignalCoordinatedReads: no read starts during an update, reads resume after it, the manual form, README."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink
from ephemeral.core.testing import arun_readme_examples, output_blocks, run_module_as_script
from ephemeral.patterns.signalcoordinatedreads import CoordinatedReadsResult, SignalCoordinatedReads


async def test_seed_run() -> None:
    result = await SignalCoordinatedReads.run(read_count=10, update_count=1)
    assert isinstance(result, CoordinatedReadsResult)
    assert (result.reads_completed, result.updates_completed) == (10, 1)
    assert result.reads_started_during_update == 0
    assert result.reads_after_update >= 6  # at most 4 reads start before the update
    assert sorted(result.signals) == sorted(["update.done", *(f"read.completed:{i}" for i in range(10))])


@pytest.mark.parametrize(("reads", "updates"), [(1, 1), (40, 3), (7, 5)])
async def test_no_read_starts_during_any_update(reads: int, updates: int) -> None:
    result = await SignalCoordinatedReads.run(read_count=reads, update_count=updates)
    assert (result.reads_completed, result.updates_completed) == (reads, updates)
    assert result.reads_started_during_update == 0
    assert result.signals.count("update.done") == updates
    assert "update.in-progress" not in result.signals


async def test_timing_in_virtual_time() -> None:
    """One 50 ms update; waiting reads resume within one 20 ms look after it; 10 reads of 5 ms, 4 at once."""
    lines: list[str] = []
    start = anyio.current_time()
    await SignalCoordinatedReads.run(read_count=10, update_count=1, narrate=lines.append)
    assert anyio.current_time() - start < 0.05 + 0.02 + 3 * (0.005 + 0.02) + 0.01
    stamps = [(float(line.split(" ms")[0]), line) for line in lines]
    done_at = next(t for t, line in stamps if "update 0 done" in line)
    after = [t for t, line in stamps if "read" in line and t >= done_at]
    assert after and min(after) - done_at <= 20 + 1


async def test_manual_form_retracting_the_signal() -> None:
    """The manual form: readers deferring on update.in-progress wait while it is live and resume after."""
    sink = SignalSink(clock=anyio.current_time)
    answered: list[tuple[str, float]] = []

    async def body(query: str) -> None:
        answered.append((query, anyio.current_time()))

    options = EphemeralOptions(defer_on_signals={"update.in-progress"}, defer_check_interval=0.01, signals=sink)
    async with EphemeralWorkCoordinator(body, options) as readers:
        sink.emit("update.in-progress")
        for n in range(3):
            await readers.enqueue(f"q{n}")
        await anyio.sleep(0.4)  # within the defer budget: 50 looks of 10 ms
        assert answered == []
        sink.retract("update.in-progress")
        sink.emit("update.done")
        done_at = anyio.current_time()
        await readers.drain()
    assert [q for q, _ in answered] == ["q0", "q1", "q2"]
    assert all(t - done_at <= 0.011 for _, t in answered)


async def test_manual_form_resuming_on_a_newer_update_done() -> None:
    """The original's manual form: emitting update.done (without retracting) resumes the readers.

    Readers name the resume signal (``resume_on_signals``); the newer of the two wins.
    """
    sink = SignalSink(clock=anyio.current_time)
    answered: list[float] = []

    async def body(query: str) -> None:
        answered.append(anyio.current_time())

    options = EphemeralOptions(defer_on_signals={"update.in-progress"}, resume_on_signals={"update.done"}, signals=sink)
    async with EphemeralWorkCoordinator(body, options) as readers:
        sink.emit("update.in-progress")  # readers wait
        await readers.enqueue("q")
        await anyio.sleep(1)
        assert answered == []
        sink.emit("update.done")  # readers resume
        done_at = anyio.current_time()
        await readers.drain()
    assert answered and answered[0] - done_at <= 0.1 + 0.001  # within one defer_check_interval


async def test_manual_form_as_written_resumes_on_update_done() -> None:
    """The original's manual form word for word: only defer_on_signals; update.done alone resumes the readers.

    A defer pattern ``X.in-progress`` is resumed by ``X.done`` when no resume signals are given, and the
    newer signal wins, so a second update (a newer update.in-progress) holds reads again.
    """
    sink = SignalSink(clock=anyio.current_time)
    answered: list[tuple[str, float]] = []

    async def body(query: str) -> None:
        answered.append((query, anyio.current_time()))

    options = EphemeralOptions(defer_on_signals={"update.in-progress"}, signals=sink, max_defer_attempts=500)
    async with EphemeralWorkCoordinator(body, options) as readers:
        sink.emit("update.in-progress")  # readers wait
        await readers.enqueue("q1")
        await anyio.sleep(1)
        assert answered == []
        sink.emit("update.done")  # readers resume
        done_at = anyio.current_time()
        await anyio.sleep(0.2)
        assert [q for q, _ in answered] == ["q1"] and answered[0][1] - done_at <= 0.1 + 0.001
        sink.emit("update.in-progress")  # the next update: the older update.done no longer resumes
        await readers.enqueue("q2")
        await anyio.sleep(1)
        assert [q for q, _ in answered] == ["q1"]
        sink.emit("update.done")
        await readers.drain()
    assert [q for q, _ in answered] == ["q1", "q2"]


async def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="read_count"):
        await SignalCoordinatedReads.run(read_count=0)
    with pytest.raises(ValueError, match="update_count"):
        await SignalCoordinatedReads.run(update_count=0)
    with pytest.raises(TypeError, match="read_count"):
        await SignalCoordinatedReads.run(read_count=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="narrate"):
        await SignalCoordinatedReads.run(narrate=1)  # type: ignore[arg-type]


async def test_readme_example() -> None:
    """The README's examples run as written (on this backend, in virtual time) and print what it shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert await arun_readme_examples(readme) == "".join(output_blocks(readme))


def test_module_runs_as_a_script() -> None:
    text = run_module_as_script("ephemeral.patterns.signalcoordinatedreads")
    assert "update 0 starts: emits update.in-progress, new reads wait" in text
    assert "Reads: 10, Updates: 1" in text
    assert "Reads started while the update ran: 0" in text
