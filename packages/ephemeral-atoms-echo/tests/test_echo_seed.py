"""The seed README's echo example and this package's README example, run as written (translated to Python)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from ephemeral.atoms.echo import (
    OperationEchoAtom,
    OperationEchoEntry,
    OperationEchoMakerOptions,
    enable_operation_echoing,
)
from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink, TypedSignalSink
from ephemeral.core.testing import arun_readme_examples


@dataclass(frozen=True)
class EchoPayload:
    order_id: str
    state: str


@dataclass(frozen=True)
class JobItem:
    order_id: str


class Repository:
    """Where the seed's `repository.AppendAsync(echo)` writes."""

    def __init__(self) -> None:
        self.echoes: list[OperationEchoEntry[EchoPayload]] = []

    async def append(self, echo: OperationEchoEntry[EchoPayload]) -> None:
        await anyio.sleep(0.01)
        self.echoes.append(echo)


async def test_seed_example() -> None:
    """The seed's example in its order: jobs emit the typed signal; each operation leaving the window is echoed."""
    sink = SignalSink()
    typed_sink: TypedSignalSink[EchoPayload] = TypedSignalSink(sink)
    repository = Repository()

    async def process(job: JobItem) -> None:
        # "Attribute jobs just raise the typed signal with whatever state they deem critical."
        typed_sink.emit("echo.capture", EchoPayload(job.order_id, "archived"), key=job.order_id)

    async with OperationEchoAtom(repository.append) as echo_atom:
        options = EphemeralOptions(max_operation_lifetime=60.0)  # finished operations leave the window after 1 min
        async with EphemeralWorkCoordinator(process, options) as coordinator:
            with enable_operation_echoing(
                coordinator,
                typed_sink,
                echo_atom,
                OperationEchoMakerOptions[EchoPayload](
                    activation_signal_pattern="echo.capture",
                    capture_signal_pattern="echo.*",
                    max_tracked_operations=128,
                ),
            ) as maker:
                # The seed's own line, outside any body: it belongs to the fresh id the sink gives it,
                # an operation that is never finalised, so it is tracked (bounded) but never echoed.
                typed_sink.emit("echo.capture", EchoPayload("order-1", "archived"), key="order-1")
                await coordinator.enqueue(JobItem("order-1"))
                await coordinator.enqueue(JobItem("order-2"))
                await anyio.sleep(61)  # both operations age out of the window: finalised, echoed
                assert maker.tracked_count == 1
    assert sorted((echo.key, echo.signals) for echo in repository.echoes) == [
        ("order-1", ("echo.capture",)),
        ("order-2", ("echo.capture",)),
    ]
    assert {echo.captures[0].payload for echo in repository.echoes} == {
        EchoPayload("order-1", "archived"),
        EchoPayload("order-2", "archived"),
    }
    assert sink.count("echo.capture") == 3  # the typed signals reach the untyped sink as well


async def test_readme_example_runs() -> None:
    """The README's example runs as written (its anyio.run replaced by an await) and prints both echoes."""
    output = await arun_readme_examples(Path(__file__).parent.parent / "README.md")
    assert output.splitlines() == [
        "order-1: [('echo.capture', 'archived'), ('echo.state', 'shipped')]",
        "order-2: [('echo.capture', 'archived'), ('echo.state', 'shipped')]",
    ]
