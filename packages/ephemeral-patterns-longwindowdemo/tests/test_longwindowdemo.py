"""LongWindowDemo: the window bounds what is tracked; the 24-hour audit window in virtual time; the demo runs."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator
from ephemeral.core.testing import arun_readme_examples, output_blocks, run_module_as_script
from ephemeral.patterns.longwindowdemo import LongWindowDemo, LongWindowResult


async def test_tracked_never_exceeds_the_window() -> None:
    result = await LongWindowDemo.run(total_items=5_000, window_size=100)
    assert result == LongWindowResult(100, 5_000, 100, 5_000, result.peak_tracked_count)
    assert result.tracked_count <= result.window_size
    assert 100 <= result.peak_tracked_count <= 100 + 8 + 100  # the window, plus running and waiting items


async def test_a_window_larger_than_the_work_keeps_everything() -> None:
    result = await LongWindowDemo.run(total_items=30, window_size=1_000)
    assert (result.tracked_count, result.completed_count) == (30, 30)


async def test_work_delay_runs_on_the_loop_clock() -> None:
    """80 items of 100 ms at min(cpu, 8) at once take 100 ms per wave, in virtual time."""
    start = anyio.current_time()
    result = await LongWindowDemo.run(total_items=80, window_size=10, work_delay_ms=100)
    elapsed = anyio.current_time() - start
    assert result.completed_count == 80 and result.tracked_count == 10
    assert 0.99 <= elapsed <= 8.01  # 80 x 0.1 s at between 1 and 8 at once


async def test_audit_window_keeps_operations_24_hours_then_forgets_them() -> None:
    options = LongWindowDemo.audit_options(max_concurrency=2)
    assert options.max_tracked_operations == 10_000
    assert options.max_operation_lifetime == timedelta(hours=24)

    async def audit(entry: str) -> None:
        pass

    async with EphemeralWorkCoordinator(audit, options) as coordinator:
        for n in range(3):
            await coordinator.enqueue(f"entry {n}")
        await coordinator.drain()
        await anyio.sleep(timedelta(hours=23, minutes=59).total_seconds())
        assert len(coordinator.get_snapshot()) == 3
        await anyio.sleep(120)
        assert coordinator.get_snapshot() == []


def test_audit_options_overrides_are_validated() -> None:
    assert LongWindowDemo.audit_options(max_concurrency=3).max_concurrency == 3
    assert isinstance(LongWindowDemo.audit_options(), EphemeralOptions)
    with pytest.raises(ValueError, match="max_tracked_operations"):
        LongWindowDemo.audit_options(max_tracked_operations=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"total_items": 0, "window_size": 1}, ValueError, "total_items"),
        ({"total_items": 1, "window_size": 0}, ValueError, "window_size"),
        ({"total_items": 1, "window_size": 1, "work_delay_ms": -1}, ValueError, "work_delay_ms"),
        ({"total_items": 1.5, "window_size": 1}, TypeError, "total_items"),
        ({"total_items": 1, "window_size": "10"}, TypeError, "window_size"),
    ],
)
async def test_bad_input_names_the_argument(kwargs: dict[str, object], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        await LongWindowDemo.run(**kwargs)  # type: ignore[arg-type]


async def test_readme_example() -> None:
    """The README's examples run as written (on this backend, in virtual time) and print what it shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert await arun_readme_examples(readme) == "".join(output_blocks(readme))


def test_module_runs_as_a_script() -> None:
    text = run_module_as_script("ephemeral.patterns.longwindowdemo")
    rows = re.findall(r"^\s*([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", text, re.M)
    assert [row[:3] for row in rows] == [
        ("1,000", "1,000", "1,000"),
        ("10,000", "10,000", "1,000"),
        ("50,000", "50,000", "1,000"),
    ]
    assert all(1_000 <= int(row[3].replace(",", "")) <= 1_000 + 8 for row in rows)  # plus those running
    assert "memory is bounded by the" in text
