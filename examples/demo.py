"""ephemeral in one screen: coordinators sharing one signal window react to a dependency that fails and recovers.

A shop takes orders for about 12 seconds. Its payment provider works, then fails for a few seconds, then
recovers. Nothing in the code below calls "open the circuit" or "pause intake" directly: every reaction comes
from a signal in the window the coordinators share.

- Orders run on a backpressure coordinator (at most 4 at once). Each one charges the payment provider, then
  hands a receipt to a second coordinator and saves the order's outcome through a SQLite storage atom.
- A failed charge is logged with `logging`; the logging bridge turns each error record into a signal
  (`log.error.payments.chargefailed`).
- A circuit breaker reads those signals: five failures within two seconds open it. While it is open, charges
  are not attempted (the order fails fast) and a health probe raises `backpressure.payments`, which holds new
  orders in the queue (none dropped). When a probe succeeds and the failures have aged out, the probe
  retracts the signal and the held orders flow again.
- A signal job escalates the opened circuit into an incident (`incident.created`) and resolves it when the
  provider has recovered (`incident.resolved`).

Run it with `python -m nox -s demo` (or `python examples/demo.py` with the packages installed). On a terminal
it draws a live view; otherwise (or with --plain) it prints one line per reaction and a count each second.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ephemeral.atoms.data import DataStorageConfig
from ephemeral.atoms.data_sqlite import SqliteDataStorageAtom
from ephemeral.attributes import EphemeralSignalJobRunner, ephemeral_job
from ephemeral.core import (
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalEvent,
    SignalSink,
    current_operation,
)
from ephemeral.logging import EventId, SignalLoggerProvider
from ephemeral.patterns.backpressure import SignalDrivenBackpressure
from ephemeral.patterns.circuitbreaker import SignalBasedCircuitBreaker

RUN_SECONDS = 12.0
OUTAGE = (3.0, 6.5)  # seconds after the start during which the payment provider fails
ORDERS_PER_SECOND = 40
FAILURES = "log.error.payments.*"
# Signals worth a line of their own in the story (the rest only show in the live stream).
REACTIONS = ("backpressure.*", "incident.*", "deferral.*", "provider.*", "circuit.*")


@dataclass(frozen=True)
class Order:
    number: int
    amount: int


@dataclass
class Story:
    """What happened, for the live view and the final summary."""

    started: float = field(default_factory=time.monotonic)
    stream: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    reactions: list[str] = field(default_factory=list)
    first_failure_logged: float | None = None
    saved: int = 0

    def at(self) -> float:
        return time.monotonic() - self.started

    def hear(self, event: SignalEvent[Any]) -> None:
        line = f"{self.at():5.2f}s  {event.signal}" + (f"  key={event.key}" if event.key else "")
        if event.signal.startswith("saved.data."):
            self.saved += 1  # one per order: counted, not listed
        else:
            self.stream.append(line)
        if event.signal.startswith("log.error.payments") and self.first_failure_logged is None:
            self.first_failure_logged = self.at()
            self.reactions.append(f"{self.at():5.2f}s  first payment error logged -> {event.signal}")
        if any(_matches(event.signal, p) for p in REACTIONS):
            self.reactions.append(line)


def _matches(name: str, pattern: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


class IncidentJobs:
    """Signal jobs: an opened circuit escalates an incident; a recovered provider resolves it."""

    def __init__(self) -> None:
        self.open_incidents = 0

    @ephemeral_job("circuit.opened", emit_on_complete=["incident.created"])
    async def escalate(self, event: SignalEvent[Any]) -> None:
        self.open_incidents += 1  # a real job would page someone here

    @ephemeral_job("provider.recovered", emit_on_complete=["incident.resolved"])
    async def resolve(self, event: SignalEvent[Any]) -> None:
        self.open_incidents -= 1


class PaymentProvider:
    """A dependency that fails during the outage window."""

    def __init__(self, story: Story) -> None:
        self._story = story

    def healthy(self) -> bool:
        return not OUTAGE[0] <= self._story.at() < OUTAGE[1]

    async def charge(self, order: Order) -> None:
        await anyio.sleep(0.02)
        if not self.healthy():
            raise ConnectionError(f"payment provider refused order {order.number}")


async def run(plain: bool) -> int:
    story = Story()
    sink = SignalSink(max_capacity=2000, max_age=30)
    sink.subscribe(story.hear)
    sink.subscribe_retracted(lambda event: story.reactions.append(f"{story.at():5.2f}s  retracted {event.signal}"))
    provider = PaymentProvider(story)
    payments_log = SignalLoggerProvider(sink).create_logger("payments")
    payments_log.propagate = False  # the records become signals; keep them off the terminal
    breaker = SignalBasedCircuitBreaker(failure_signal=FAILURES, threshold=5, window_size=2.0)
    receipts_sent: list[int] = []
    incidents = IncidentJobs()
    outcomes = {"paid": 0, "failed": 0, "failed fast": 0}

    async def send_receipt(order: Order) -> None:
        await anyio.sleep(0.005)
        receipts_sent.append(order.number)

    with tempfile.TemporaryDirectory() as folder:
        config = DataStorageConfig(database_name="orders")
        storage_path = Path(folder) / "orders.db"
        async with (
            SqliteDataStorageAtom[str, str](sink, config, str(storage_path), value_type=str) as storage,
            EphemeralWorkCoordinator(
                send_receipt, EphemeralOptions(max_concurrency=2, signals=sink, max_tracked_operations=200)
            ) as receipts,
        ):

            async def place(order: Order) -> None:
                if breaker.is_open_matching(sink, FAILURES):
                    outcomes["failed fast"] += 1
                    storage.enqueue_save(f"order-{order.number}", "failed fast: circuit open")
                    current_operation().emit(f"order.failed-fast.{order.number}")
                    raise ConnectionError("circuit open: not calling the payment provider")
                try:
                    await provider.charge(order)
                except ConnectionError as error:
                    outcomes["failed"] += 1
                    payments_log.error(str(error), extra={"event_id": EventId(2001, "ChargeFailed")})
                    storage.enqueue_save(f"order-{order.number}", "payment failed")
                    raise
                outcomes["paid"] += 1
                storage.enqueue_save(f"order-{order.number}", "paid")
                await receipts.enqueue(order)

            async with (
                EphemeralSignalJobRunner(sink, [incidents]),
                SignalDrivenBackpressure.create(place, sink, max_concurrency=4, max_defer=30.0) as orders,
            ):
                coordinators = {"orders": orders, "receipts": receipts}
                retracted = anyio.Event()

                async def health_probe() -> None:
                    """Every 250 ms: raise backpressure while the circuit is open, retract it once healthy."""
                    raised = False
                    was_open = False
                    while True:
                        await anyio.sleep(0.25)
                        is_open = breaker.is_open_matching(sink, FAILURES)
                        if is_open != was_open:
                            sink.emit("circuit.opened" if is_open else "circuit.closed", key="payments")
                            was_open = is_open
                        if is_open and not raised:
                            sink.emit("backpressure.payments", key="circuit open")
                            raised = True
                        if raised and not is_open and provider.healthy():
                            sink.retract("backpressure.payments")
                            retracted.set()
                            sink.emit("provider.recovered", key="probe succeeded")
                            raised = False

                async def take_orders() -> None:
                    number = 0
                    while story.at() < RUN_SECONDS - 2:
                        number += 1
                        await orders.enqueue(Order(number, amount=10 + number % 90))
                        await anyio.sleep(1 / ORDERS_PER_SECOND)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(health_probe)
                    tg.start_soon(show, story, coordinators, breaker, sink, provider, plain)
                    await take_orders()
                    if sink.detect("backpressure.*"):
                        with anyio.move_on_after(5):  # let the held orders through before closing
                            await retracted.wait()
                    tg.cancel_scope.cancel()
            # Leaving the blocks drained every coordinator and stored every accepted write.
        stored = await count_rows(storage_path)
        print(f"\nincidents still open: {incidents.open_incidents}")
        return summary(story, {"orders": orders, "receipts": receipts}, outcomes, receipts_sent, stored)


async def count_rows(path: Path) -> int:
    import sqlite3

    def count() -> int:
        with sqlite3.connect(path) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    return await anyio.to_thread.run_sync(count)


def counts(coordinator: Any) -> dict[str, int]:
    metrics = coordinator.get_metrics()
    return {
        "waiting": coordinator.pending_count,
        "running": coordinator.active_count,
        "completed": metrics.total_completed,
        "failed": metrics.total_failed,
        "skipped": metrics.total_skipped,
        "cancelled": metrics.total_cancelled,
        "accepted": metrics.total_enqueued,
    }


async def show(
    story: Story,
    coordinators: dict[str, Any],
    breaker: SignalBasedCircuitBreaker,
    sink: SignalSink,
    provider: PaymentProvider,
    plain: bool,
) -> None:
    """Draw the live view (rich) or, without a terminal, print reactions as they happen and counts each second."""
    if plain:
        printed = 0
        next_count = 1.0
        while True:
            await anyio.sleep(0.1)
            for line in story.reactions[printed:]:
                print(line, flush=True)
            printed = len(story.reactions)
            if story.at() >= next_count:
                next_count += 1.0
                state = "OPEN" if breaker.is_open_matching(sink, FAILURES) else "closed"
                parts = ", ".join(
                    f"{name} {c['completed']} done/{c['failed']} failed/{c['waiting']} waiting"
                    for name, c in ((n, counts(x)) for n, x in coordinators.items())
                )
                print(f"{story.at():5.2f}s  circuit {state}; {parts}", flush=True)
    from rich.console import Group
    from rich.live import Live
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    def view() -> Group:
        table = Table(title=f"coordinators sharing one signal window   t = {story.at():4.1f} s", expand=True)
        for column in ("coordinator", "waiting", "running", "completed", "failed", "skipped", "cancelled"):
            table.add_column(column, justify="left" if column == "coordinator" else "right")
        for name, coordinator in coordinators.items():
            c = counts(coordinator)
            table.add_row(
                name, *(str(c[k]) for k in ("waiting", "running", "completed", "failed", "skipped", "cancelled"))
            )
        is_open = breaker.is_open_matching(sink, FAILURES)

        def tag(text: str, colour: str) -> str:
            return f"[{colour}]{text}[/{colour}]"

        status = (
            f"payment provider: {tag('healthy', 'green') if provider.healthy() else tag('failing', 'red')}   "
            f"circuit: {tag('OPEN', 'red') if is_open else tag('closed', 'green')} "
            f"({breaker.get_failure_count(sink, FAILURES)} failures in 2 s)   "
            f"backpressure: {tag('on', 'yellow') if sink.detect('backpressure.*') else tag('off', 'green')}   "
            f"records saved: {story.saved}"
        )
        reactions = Panel(Text("\n".join(story.reactions[-8:]) or "(none yet)"), title="reactions")
        stream = Panel(Text("\n".join(story.stream) or "(no signal yet)"), title="signal stream (newest last)")
        return Group(table, Panel(status), reactions, stream)

    with Live(view(), refresh_per_second=8, transient=False) as live:
        while True:
            await anyio.sleep(0.125)
            live.update(view())


def summary(
    story: Story, coordinators: dict[str, Any], outcomes: dict[str, int], receipts: list[int], stored: int
) -> int:
    print()
    print("What happened")
    for line in story.reactions:
        print("  " + line)
    print()
    print("Every accepted item accounted for (completed + failed + skipped + cancelled == accepted):")
    ok = True
    for name, coordinator in coordinators.items():
        c = counts(coordinator)
        settled = c["completed"] + c["failed"] + c["skipped"] + c["cancelled"]
        ok &= settled == c["accepted"] and c["waiting"] == 0 and c["running"] == 0
        print(
            f"  {name:9} {c['completed']} + {c['failed']} + {c['skipped']} + {c['cancelled']} = {settled}"
            f" of {c['accepted']} accepted"
        )
    orders = counts(coordinators["orders"])
    print(
        f"  orders: {outcomes['paid']} paid, {outcomes['failed']} failed at the provider, "
        f"{outcomes['failed fast']} failed fast while the circuit was open"
    )
    print(f"  receipts sent: {len(receipts)} (one per paid order: {len(receipts) == outcomes['paid']})")
    print(f"  storage: {stored} order records in SQLite (one per order: {stored == orders['accepted']})")
    ok &= len(receipts) == outcomes["paid"] and stored == orders["accepted"]
    print("all accounted for" if ok else "SOMETHING WAS LOST")
    return 0 if ok else 1


INTRO = """\
A shop takes orders for about 12 seconds; its payment provider fails from 3.0 s to 6.5 s.
Two coordinators (orders: at most 4 at once; receipts: 2) share one signal window. A failed charge is
logged; the logging bridge turns the record into a signal; a circuit breaker counts those signals; a
health probe raises backpressure while the circuit is open, so new orders wait instead of failing, and
retracts it once the provider answers again; a signal job turns the opened circuit into an incident.
A SQLite storage atom keeps one record per order.
"""


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    plain = "--plain" in sys.argv or not sys.stdout.isatty()
    print(INTRO)
    return anyio.run(run, plain)


if __name__ == "__main__":
    sys.exit(main())
