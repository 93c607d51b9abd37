"""SignalReactionShowcase: each reaction sees what it should; order of signals; bad input; README; the script."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ephemeral.core.testing import arun_readme_examples, output_blocks, run_module_as_script
from ephemeral.patterns.signalreactionshowcase import SignalReactionShowcase


@pytest.mark.parametrize("item_count", [1, 8, 25])
async def test_every_reaction_sees_every_signal(item_count: int) -> None:
    result = await SignalReactionShowcase.run(item_count=item_count)
    assert result.dispatched_hits == item_count
    assert result.polled_hits == item_count
    assert result.on_signal_hits == 2 * item_count
    assert result.on_signal_async_hits == 2 * item_count
    assert result.deferred_count == item_count
    assert result.ran_while_paused == 0
    assert result.cancelled_count == item_count


async def test_signals_in_emission_order() -> None:
    """Every start precedes its done; the stage signals come first, then pause, then abort."""
    result = await SignalReactionShowcase.run(item_count=8)
    names = result.signals
    assert names[-2:] == ["maintenance.pause", "maintenance.abort"]
    stages = names[:-2]
    assert sorted(stages) == sorted([f"stage.start:{i}" for i in range(8)] + [f"stage.done:{i}" for i in range(8)])
    for i in range(8):
        assert stages.index(f"stage.start:{i}") < stages.index(f"stage.done:{i}")


async def test_takes_the_virtual_time_it_says() -> None:
    """Work of 5 ms per item and a 50 ms pause: a fraction of a virtual second, no real waiting."""
    start = anyio.current_time()
    await SignalReactionShowcase.run(item_count=8)
    assert 0.05 <= anyio.current_time() - start < 0.2


async def test_narration() -> None:
    lines: list[str] = []
    await SignalReactionShowcase.run(item_count=3, narrate=lines.append)
    text = "\n".join(lines)
    assert "on_signal (sync, as each signal is emitted) saw 6 signals" in text
    assert "after 50 ms: 0 ran, 3 wait at the front" in text
    assert "3 skipped (counted in total_skipped), 0 ran" in text


async def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="item_count"):
        await SignalReactionShowcase.run(item_count=0)
    with pytest.raises(TypeError, match="item_count"):
        await SignalReactionShowcase.run(item_count="8")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="narrate"):
        await SignalReactionShowcase.run(item_count=1, narrate="print")  # type: ignore[arg-type]


async def test_readme_example() -> None:
    """The README's examples run as written (on this backend, in virtual time) and print what it shows."""
    readme = Path(__file__).parent.parent / "README.md"
    assert await arun_readme_examples(readme) == "".join(output_blocks(readme))


def test_module_runs_as_a_script() -> None:
    text = run_module_as_script("ephemeral.patterns.signalreactionshowcase")
    assert "the dispatcher's stage.done:* handler ran 8 times" in text
    assert "maintenance.pause is retracted: all 8 ran." in text
    assert "18 signals went through the sink, in this order:" in text
