"""A result coordinator that stops everything as soon as an exit signal says the answer is known."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._coordinator import CoordinatorClosedError
from ._events import SignalEvent
from ._matcher import PatternSet
from ._options import EphemeralOptions
from ._result import EphemeralResultCoordinator

__all__ = ("EarlyExitResult", "EarlyExitResultCoordinator")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class EarlyExitResult(Generic[R]):
    """Where an ``EarlyExitResultCoordinator`` stands.

    Attributes:
        exited: Whether an exit signal stopped it.
        exit_signal: The exit signal's name, if one did.
        exit_key: The exit signal's key, if any.
        results: Results of the successful operations still in the window, in dispatch order (partial
            when it exited).
        completed_count: Bodies that returned.
        failed_count: Bodies that raised.
        cancelled_count: Items cancelled by the exit: running bodies interrupted and waiting items dropped.
    """

    exited: bool
    exit_signal: str | None
    exit_key: str | None
    results: tuple[R, ...]
    completed_count: int
    failed_count: int
    cancelled_count: int


class EarlyExitResultCoordinator(EphemeralResultCoordinator[T, R], Generic[T, R]):
    """A result coordinator that stops at the first exit signal: the answer is known, the rest is waste.

    An exit signal is one matching ``exit_signals`` emitted after the coordinator was entered, on its
    sink (``options.signals``, shared or its own) or by one of its operations. On the first one it
    stops at once: running bodies are cancelled, waiting items are dropped (both counted in
    ``total_cancelled``), later ``enqueue`` calls return -1, and ``coordinator.early_exit:{signal}``
    (key: the exit signal's key) is emitted. ``await finish()`` or ``get_result()`` report the outcome.

    Args:
        body: ``async def body(item) -> R``.
        exit_signals: Globs (comma-separated alternatives allowed) that stop the coordinator.
        options: As for ``EphemeralResultCoordinator``.

    Raises:
        ValueError: ``exit_signals`` holds no pattern.
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[R]],
        exit_signals: Iterable[str] | str,
        options: EphemeralOptions | None = None,
    ) -> None:
        try:
            self._exit_on = PatternSet(exit_signals)
        except TypeError as error:
            raise TypeError(f"exit_signals: {error}") from None
        if not self._exit_on:
            raise ValueError(f"exit_signals must hold at least one glob pattern, got {exit_signals!r}")
        super().__init__(body, options)
        self._exit_event: SignalEvent[Any] | None = None

    async def __aenter__(self) -> EarlyExitResultCoordinator[T, R]:
        await super().__aenter__()
        self._subscriptions.append(self._sink.subscribe(self._watch_exit))  # closed on shutdown
        return self

    def _watch_exit(self, event: SignalEvent[Any]) -> None:
        if self._exit_event is None and self._loop is not None and self._exit_on.matches(event.signal):
            self._loop.call(lambda: self._exit(event))

    def _exit(self, event: SignalEvent[Any]) -> None:
        if self._exit_event is not None or self.is_cancelled or self.is_drained:
            return
        self._exit_event = event
        self._sink.emit(SignalEvent(f"coordinator.early_exit:{event.signal}", self.id, event.key, self._sink.now()))
        self.cancel()

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` and return its operation id; -1 once an exit signal stopped the coordinator.

        Raises:
            CoordinatorClosedError: The coordinator was completed or cancelled otherwise.
        """
        if self._exit_event is not None:
            return -1
        try:
            return await super().enqueue(item)
        except CoordinatorClosedError:
            if self._exit_event is not None:  # the exit came while waiting for room
                return -1
            raise

    enqueue_with_id = enqueue

    @property
    def early_exited(self) -> bool:
        """Whether an exit signal stopped the coordinator."""
        return self._exit_event is not None

    @property
    def exit_signal(self) -> str | None:
        """The name of the exit signal that stopped the coordinator, if any."""
        return None if self._exit_event is None else self._exit_event.signal

    def get_result(self) -> EarlyExitResult[R]:
        """The outcome so far: whether it exited, and the results and counters now."""
        event = self._exit_event
        return EarlyExitResult(
            event is not None,
            None if event is None else event.signal,
            None if event is None else event.key,
            tuple(self.get_results()),
            self.total_completed,
            self.total_failed,
            self.total_cancelled,
        )

    async def finish(self) -> EarlyExitResult[R]:
        """Stop accepting items, wait until every accepted item finished or was cancelled, and report."""
        await self.drain()
        return self.get_result()
