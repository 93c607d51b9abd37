"""RetryAtom: a body retried with exponential backoff, jitter and server retry hints, on a work coordinator."""

from __future__ import annotations

import random as _random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

from ephemeral.core import (
    EphemeralOperation,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import AtomBase, BackoffPolicy, check_async_callable, check_int, newest_retry_hint, sleep

__all__ = ("ATTEMPT_STATE", "RetryAtom")

T = TypeVar("T")

#: The operation state holding the number of the attempt running: ``current_operation().get_state(ATTEMPT_STATE)``.
ATTEMPT_STATE = "retry.attempt"

#: A first wait (doubled for each further retry), or a callable of the failed attempt's number.
Backoff = float | timedelta | Callable[[int], float | timedelta]
#: The exceptions worth a retry: a class, a tuple of classes, or a predicate.
RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


def _hinted_delay(error: Exception, operation: EphemeralOperation, first_signal: int) -> float | None:
    """How long the failed attempt asked to wait: the error's ``retry_after``, else its newest hint signal."""
    return newest_retry_hint(error, [event.signal for event in operation.signal_events()[first_signal:]])


def _retry_predicate(retry_on: object) -> Callable[[Exception], bool]:
    """``retry_on`` (a class, a tuple of classes or a predicate) as a predicate on exceptions."""
    if isinstance(retry_on, (type, tuple)):
        types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        for kind in types:
            if not isinstance(kind, type) or not issubclass(kind, Exception):
                raise TypeError(f"retry_on must name Exception subclasses (never cancellation), got {kind!r}")
        return lambda error: isinstance(error, types)
    if callable(retry_on):
        return lambda error: bool(retry_on(error))
    raise TypeError(f"retry_on must be an exception class, a tuple of them or a predicate, got {retry_on!r}")


class RetryAtom(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """Runs ``async def body(item)`` for each enqueued item, retrying failures with exponential backoff.

    After attempt ``n`` fails with an exception ``retry_on`` accepts, and while attempts remain, the
    atom waits and tries again: ``backoff * 2**(n - 1)`` seconds (or ``backoff(n)`` when ``backoff`` is
    a callable), spread by ``jitter`` when given. A failure that carries a retry hint waits exactly
    that long instead: an exception with a ``retry_after`` attribute (seconds, a timedelta, or text such
    as ``"2"`` or ``"500ms"``), or a
    ``retry-after:2s`` / ``rate-limit:500ms`` signal the body emitted on its operation during that
    attempt. Waits sleep on the event loop's clock, so virtual time drives them in tests.

    Each item is one operation on the atom's coordinator, which holds up to ``max_concurrency`` items
    at once, backoff waits included. Before each retry the operation emits ``retry.attempt:{n}`` (``n``
    the attempt about to run); when attempts run out it emits ``retry.exhausted:{n}`` and the last
    exception is recorded on the operation, counted as failed. An exception ``retry_on`` refuses fails
    the operation at once. The running attempt's number is the operation state ``ATTEMPT_STATE``.

    Args:
        body: ``async def body(item)``.
        max_attempts: Attempts per item, the first included.
        backoff: The first wait, as seconds or a timedelta (doubled for each further retry), or a
            callable mapping the failed attempt's number (from 1) to the wait.
        max_concurrency: Items handled at once (default: the number of CPUs).
        jitter: None, or a fraction in [0, 1]: each backoff is multiplied by a uniform factor in
            ``[1 - jitter, 1 + jitter]``. Retry hints are never jittered.
        random: The ``random.Random`` drawing the jitter (seed one for reproducible waits).
        retry_on: The exceptions worth a retry: a class, a tuple of classes, or ``predicate(exc) -> bool``.
        signals: A shared sink for the operations' signals.

    Raises:
        TypeError: ``body`` or ``backoff`` is not callable where required, or an argument has the wrong type.
        ValueError: ``max_attempts`` < 1, a negative backoff, ``jitter`` outside [0, 1] or ``max_concurrency`` < 1.

    Example:
        >>> async with RetryAtom(call_api, max_attempts=3, backoff=0.2, max_concurrency=4) as atom:
        ...     await atom.enqueue(ApiRequest("https://api.example.com"))
        ...     await atom.drain()
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[object]],
        *,
        max_attempts: int = 3,
        backoff: Backoff = 0.1,
        max_concurrency: int | None = None,
        jitter: float | None = None,
        random: _random.Random | None = None,
        retry_on: RetryOn = (Exception,),
        signals: SignalSink | None = None,
    ) -> None:
        check_async_callable(body, "body")
        self._max_attempts = check_int(max_attempts, "max_attempts")
        self._policy = BackoffPolicy(backoff, jitter=jitter, random=random, name="backoff")
        self._should_retry = _retry_predicate(retry_on)
        self._body = body
        self._retries = 0
        self._exhausted = 0
        options = (
            EphemeralOptions(signals=signals)
            if max_concurrency is None
            else EphemeralOptions(signals=signals, max_concurrency=max_concurrency)
        )
        super().__init__(EphemeralWorkCoordinator(self._attempts, options))

    async def enqueue(self, item: T) -> int:
        """Accept ``item``, waiting while the coordinator's queue is full; return its operation id.

        Raises:
            CoordinatorClosedError: The atom was completed or drained.
            RuntimeError: The atom has not been entered with ``async with``.
        """
        return await self.coordinator.enqueue(item)

    # -- the retry loop ---------------------------------------------------------------------------

    async def _attempts(self, item: T) -> object:
        operation = current_operation()
        attempt = 1
        while True:
            operation.set_state(ATTEMPT_STATE, attempt)
            first_signal = len(operation.signal_events())
            try:
                return await self._body(item)
            except Exception as error:
                if not self._should_retry(error):
                    raise
                if attempt >= self._max_attempts:
                    self._exhausted += 1
                    operation.emit(f"retry.exhausted:{attempt}")
                    raise
                delay = self._policy.delay(attempt, hint=_hinted_delay(error, operation, first_signal))
            attempt += 1
            self._retries += 1
            operation.emit(f"retry.attempt:{attempt}")
            await sleep(delay)  # ends on a whole microsecond of the loop's clock, as virtual clocks need
            # The timer may have fired just before a cancel (asyncio then resumes this task before
            # delivering the cancellation): no attempt starts once the atom was cancelled.
            await anyio.lowlevel.checkpoint_if_cancelled()

    # -- state ------------------------------------------------------------------------------------

    @property
    def max_attempts(self) -> int:
        """Attempts per item, the first included."""
        return self._max_attempts

    @property
    def total_retries(self) -> int:
        """Retries started, across all items (attempts beyond each item's first)."""
        return self._retries

    @property
    def total_exhausted(self) -> int:
        """Items that failed on their last allowed attempt (a subset of ``stats().failed``)."""
        return self._exhausted
