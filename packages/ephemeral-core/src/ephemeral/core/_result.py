"""The result coordinator: bodies return values, and callers wait for them by operation id."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Generic, TypeVar

import anyio

from ._clock import to_seconds
from ._coordinator import EphemeralWorkCoordinator
from ._operation import EphemeralOperation, EphemeralOperationSnapshot
from ._options import EphemeralOptions

__all__ = ("EphemeralResultCoordinator", "ResultUnavailableError")

T = TypeVar("T")
R = TypeVar("R")

#: Outcomes of operations that left the window are kept for this many times the window size.
RESULT_MEMORY_FACTOR = 4


class ResultUnavailableError(LookupError):
    """The id was never accepted by this coordinator, or its outcome is no longer kept."""


class EphemeralResultCoordinator(EphemeralWorkCoordinator[T], Generic[T, R]):
    """A work coordinator whose bodies return results, awaited by operation id.

    ``enqueue`` returns the operation id; ``await wait_for_result(id)`` returns the operation's
    snapshot once it finished: ``has_result`` and ``result`` on success, ``error`` when the body raised,
    status ``skipped`` or ``cancelled`` when it never ran. Outcomes stay available after the operation
    left the window, for the last ``4 x max_tracked_operations`` operations that left it.

    Args:
        body: ``async def body(item) -> R``.
        options: As for ``EphemeralWorkCoordinator``.
    """

    def __init__(self, body: Callable[[T], Awaitable[R]], options: EphemeralOptions | None = None) -> None:
        super().__init__(body, options)
        self._waiting_ids: set[int] = set()
        self._waiters: dict[int, anyio.Event] = {}
        self._outcomes: OrderedDict[int, EphemeralOperationSnapshot[R]] = OrderedDict()
        self._memory = RESULT_MEMORY_FACTOR * self.options.max_tracked_operations
        self.operation_finalized.connect(self._remember)
        self._window.on_retire = self._retired

    async def enqueue(self, item: T) -> int:
        """Accept ``item``; return its operation id, to wait for with ``wait_for_result``.

        Raises:
            CoordinatorClosedError: The coordinator was completed or cancelled; the item was not accepted.
        """
        operation_id = await super().enqueue(item)
        self._waiting_ids.add(operation_id)  # no await since it was accepted: it cannot have finished yet
        return operation_id

    enqueue_with_id = enqueue

    def _retired(self, operation: EphemeralOperation) -> None:
        self._waiting_ids.discard(operation.id)
        waiter = self._waiters.pop(operation.id, None)
        if waiter is not None:
            waiter.set()

    def _remember(self, snapshot: EphemeralOperationSnapshot[R]) -> None:
        outcomes = self._outcomes
        outcomes[snapshot.operation_id] = snapshot
        while len(outcomes) > self._memory:
            outcomes.popitem(last=False)

    def _outcome(self, operation_id: int) -> EphemeralOperationSnapshot[R] | None:
        operation = self._window.find(operation_id)
        if operation is not None:
            return None if operation.completed_at is None else operation.snapshot()
        return self._outcomes.get(operation_id)

    async def wait_for_result(
        self,
        operation_id: int,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 (the seed's WaitForResult takes one)
    ) -> EphemeralOperationSnapshot[R]:
        """Wait until operation ``operation_id`` finished and return its snapshot.

        Raises:
            ResultUnavailableError: The id was not accepted here, or its outcome is no longer kept.
            TimeoutError: ``timeout`` passed first.
        """
        seconds = None if timeout is None else to_seconds(timeout, "timeout", allow_zero=True)
        with anyio.fail_after(seconds):
            while True:
                outcome = self._outcome(operation_id)
                if outcome is not None:
                    return outcome
                if operation_id not in self._waiting_ids:
                    raise ResultUnavailableError(
                        f"operation {operation_id} is unknown to this coordinator, or left the window and its "
                        f"result is no longer kept (the last {self._memory} outcomes are)"
                    )
                waiter = self._waiters.get(operation_id)
                if waiter is None:
                    waiter = self._waiters[operation_id] = anyio.Event()
                await waiter.wait()

    def get_typed_snapshot(self) -> list[EphemeralOperationSnapshot[R]]:
        """Every operation in the window, with results."""
        return self.get_snapshot()

    def get_results(self) -> list[R]:
        """Results of the successful operations in the window, in dispatch order."""
        return [s.result for s in self.get_snapshot() if s.has_result]  # type: ignore[misc]

    def get_successful(self) -> list[EphemeralOperationSnapshot[R]]:
        """Operations in the window whose body returned."""
        return [s for s in self.get_snapshot() if s.has_result]
