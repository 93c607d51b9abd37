"""KeyedSequentialAtom: in order per key, in parallel across keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import replace
from typing import Generic, TypeVar

from ephemeral.core import EphemeralKeyedWorkCoordinator, EphemeralOptions, SignalSink
from ephemeral.core.lowlevel import AtomBase, check_int

__all__ = ("KeyedSequentialAtom",)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class KeyedSequentialAtom(AtomBase[EphemeralKeyedWorkCoordinator[T, K]], Generic[T, K]):
    """Runs the items of one key in enqueue order, and different keys in parallel.

    At most ``per_key_concurrency`` items of a key run at once (1: strictly sequential per key) and
    at most ``max_concurrency`` in all. A busy key waits in its own queue while the other keys run, so a
    slow key never holds up the rest; with ``enable_fair_scheduling`` ready keys take turns, so a key
    with a long backlog cannot starve the others. Use it as an async context manager; leaving the
    block drains it.

    Args:
        key_selector: Maps an item to its key (operations show ``str(key)``).
        body: ``async def body(item)``, run once per item.
        max_concurrency: The most bodies running at once (default: the number of CPUs).
        per_key_concurrency: The most bodies of one key running at once.
        enable_fair_scheduling: Serve ready keys round-robin instead of by arrival of their next item.
        signals: A shared ``SignalSink``; without one the atom has a private sink.

    Raises:
        TypeError: ``key_selector`` or ``body`` is not callable, or an argument has the wrong type.
        ValueError: ``max_concurrency`` or ``per_key_concurrency`` is below 1.

    Example:
        >>> async with KeyedSequentialAtom(key_selector=lambda o: o.customer_id, body=process_order) as atom:
        ...     await atom.enqueue(order)
    """

    def __init__(
        self,
        key_selector: Callable[[T], K],
        body: Callable[[T], Awaitable[object]],
        *,
        max_concurrency: int | None = None,
        per_key_concurrency: int = 1,
        enable_fair_scheduling: bool = False,
        signals: SignalSink | None = None,
    ) -> None:
        check_int(per_key_concurrency, "per_key_concurrency")
        options = EphemeralOptions(
            max_concurrency_per_key=per_key_concurrency,
            enable_fair_scheduling=enable_fair_scheduling,
            signals=signals,
        )
        if max_concurrency is not None:
            options = replace(options, max_concurrency=max_concurrency)
        super().__init__(EphemeralKeyedWorkCoordinator(key_selector, body, options))

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` under its key, waiting while the intake is full; return its operation id.

        Raises:
            CoordinatorClosedError: The atom was drained or completed; the item was not accepted.
        """
        return await self.coordinator.enqueue(item)
