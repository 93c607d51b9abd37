"""The seed README's order molecule (payment, inventory, notification) and this package's README example."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ephemeral.atoms.molecules import AtomTrigger, MoleculeBlueprintBuilder, MoleculeContext, MoleculeRunner
from ephemeral.core import EphemeralResultCoordinator, EphemeralWorkCoordinator, SignalEvent, SignalSink
from ephemeral.core.testing import run_readme_examples


@dataclass
class Services:
    """What the seed's serviceProvider hands the steps."""

    tenant: str


async def test_seed_order_molecule() -> None:
    """The seed example: payment then inventory per order.placed; order.payment.complete triggers notification."""
    sink = SignalSink(max_age=3600.0, clock=anyio.current_time)
    log: list[str] = []
    processed: dict[str, list[str]] = {"payment": [], "inventory": [], "notification": []}

    def body(name: str) -> Any:
        async def process(order_id: str) -> None:
            await anyio.sleep(1)
            processed[name].append(order_id)

        return process

    async with (
        EphemeralWorkCoordinator(body("payment")) as payment_coordinator,
        EphemeralWorkCoordinator(body("inventory")) as inventory_coordinator,
        EphemeralWorkCoordinator(body("notification")) as notification_coordinator,
    ):

        async def payment(ctx: MoleculeContext) -> None:
            assert ctx.trigger_signal.key is not None
            await payment_coordinator.enqueue(ctx.trigger_signal.key)
            log.append("payment")

        async def inventory(ctx: MoleculeContext) -> None:
            assert ctx.trigger_signal.key is not None
            ctx.emit("order.payment.complete", ctx.trigger_signal.key)
            await inventory_coordinator.enqueue(ctx.trigger_signal.key)
            log.append("inventory")

        async def notification(signal: SignalEvent[Any]) -> None:
            assert signal.key is not None
            await notification_coordinator.enqueue(signal.key)
            log.append("notification")

        blueprint = MoleculeBlueprintBuilder("order", "order.placed").add_atom(payment).add_atom(inventory).build()
        completed: list[str | None] = []
        async with MoleculeRunner(sink, [blueprint], Services("acme")) as runner:
            runner.molecule_completed.connect(lambda ctx: completed.append(ctx.trigger_signal.key))
            with AtomTrigger(sink, "order.payment.complete", notification, runner=runner):
                sink.emit("order.placed", key="order-42")
                await runner.wait_idle()
        assert completed == ["order-42"]
    assert processed == {"payment": ["order-42"], "inventory": ["order-42"], "notification": ["order-42"]}
    assert log.index("payment") < log.index("inventory") and log.index("payment") < log.index("notification")
    assert [e.key for e in sink.sense("order.payment.complete")] == ["order-42"]


async def test_order_flow_waiting_for_each_result_runs_payment_inventory_notification() -> None:
    """Steps that await their coordinator's result finish payment, then inventory, then notification."""
    sink = SignalSink(max_age=3600.0, clock=anyio.current_time)
    finished: list[tuple[str, float]] = []
    start = anyio.current_time()

    def body(name: str, seconds: float) -> Any:
        async def process(order_id: str) -> str:
            await anyio.sleep(seconds)
            finished.append((name, anyio.current_time() - start))
            return f"{name}:{order_id}"

        return process

    async with (
        EphemeralResultCoordinator[str, str](body("payment", 1)) as payments,
        EphemeralResultCoordinator[str, str](body("inventory", 1)) as inventory,
        EphemeralResultCoordinator[str, str](body("notification", 2)) as notifications,
    ):

        async def pay(ctx: MoleculeContext) -> None:
            snapshot = await payments.wait_for_result(await payments.enqueue(ctx.trigger_signal.key or ""))
            ctx.state["receipt"] = snapshot.result
            ctx.emit("order.payment.complete", ctx.trigger_signal.key)

        async def reserve(ctx: MoleculeContext) -> None:
            assert ctx.state["receipt"] == "payment:order-42"
            await inventory.wait_for_result(await inventory.enqueue(ctx.trigger_signal.key or ""))

        async def notify(signal: SignalEvent[Any]) -> None:
            await notifications.wait_for_result(await notifications.enqueue(signal.key or ""))

        blueprint = MoleculeBlueprintBuilder("order", "order.placed").add_atom(pay).add_atom(reserve).build()
        async with MoleculeRunner(sink, [blueprint]) as runner:
            with AtomTrigger(sink, "order.payment.complete", notify, runner=runner):
                sink.emit("order.placed", key="order-42")
                await runner.wait_idle()
    assert finished == [("payment", 1), ("inventory", 2), ("notification", 3)]


def test_readme_example_runs() -> None:
    """The README's example runs as written and prints what it says."""
    output = run_readme_examples(Path(__file__).parent.parent / "README.md")
    assert output.splitlines() == ["done order-42", "['notify order-42', 'pay order-42', 'reserve order-42']"]
