"""AdaptiveRateService: a work coordinator paused for as long as its work's rate-limit hints ask."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from ephemeral.core import (
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalEvent,
    SignalSink,
)
from ephemeral.core.lowlevel import (
    AtomBase,
    LoopBinding,
    Wakeup,
    check_async_callable,
    check_int,
    parse_retry_hint,
    to_seconds,
)

__all__ = ("AdaptiveRateService", "RateLimitException")

T = TypeVar("T")


class RateLimitException(Exception):
    """Raise it from a body when the service you call says to slow down.

    Args:
        message: What happened.
        retry_after: How long the service asked to wait: seconds, a timedelta, or text such as
            ``"2"`` or ``"500ms"`` (a ``Retry-After`` header's value). Any exception with a
            ``retry_after`` attribute works the same.
    """

    def __init__(self, message: str = "rate limited", retry_after: float | timedelta | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class AdaptiveRateService(AtomBase[EphemeralWorkCoordinator[T]], Generic[T]):
    """Runs ``body`` for each item, and holds every new start back for as long as a rate-limit hint asks.

    A body reports that the service it calls is rate limiting by emitting a hint on its operation
    (``current_operation().emit("rate-limit:500ms")`` or ``"retry-after:2s"``; a bare number is
    seconds) or by raising an exception with a ``retry_after`` (``RateLimitException``, or any exception
    carrying one, such as an HTTP error built from a ``Retry-After`` header). From then on no item
    starts until that much time has passed; bodies already running carry on. A later hint that reaches
    further extends the hold, a shorter one changes nothing. No rate needs to be known in advance: the
    service learns from the hints (AIMD). A hint that starts a hold halves the concurrency (never below 1);
    once the hold ends, work resumes at that lower concurrency and it rises by one for every stretch as
    long as the last hold passing without a new hint, up to ``max_concurrency``. A hint during that ramp
    halves it again, so a service refused once per window settles below the rate that gets refused.

    An attempt that raised with a hint is tried again after the hold, up to ``max_attempts`` attempts
    in all, in the same slot (so it keeps its place and is counted once); any other exception fails the
    item at once. Use it as an async context manager; leaving the block drains it (waiting out a hold),
    an exception cancels what waits. Every accepted item ends completed, failed or cancelled:
    ``total_completed + total_failed + total_cancelled == total_enqueued`` once closed.

    Args:
        body: ``async def body(item)``.
        max_concurrency: The most bodies running at once.
        max_attempts: Attempts per item when attempts fail with a rate-limit hint (1: never again).
        max_hold: The longest hold one hint can ask for (a longer hint is cut to it).
        sink: A shared sink for the operations' signals, ``rate-limit.hold`` and ``rate-limit.resumed``.
        max_pending: How many accepted items may wait before ``process`` waits.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A limit is below 1 or ``max_hold`` is not positive.

    Example:
        >>> async with AdaptiveRateService(call_api, max_concurrency=8) as service:
        ...     await service.process(request)
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[object]],
        max_concurrency: int = 8,
        *,
        max_attempts: int = 1,
        max_hold: float | timedelta = 300.0,
        sink: SignalSink | None = None,
        max_pending: int = 100,
    ) -> None:
        check_async_callable(body, "body")
        check_int(max_concurrency, "max_concurrency")
        self.max_attempts = check_int(max_attempts, "max_attempts")
        self._max_hold = to_seconds(max_hold, "max_hold")
        self._body = body
        self._until: float | None = None
        self._opened: anyio.Event | None = None  # set when the current hold ends
        self._wakeup = Wakeup()
        self._loop: LoopBinding | None = None
        self._holds = 0
        self._max_concurrency = max_concurrency
        self._limit = max_concurrency  # the concurrency allowed now (AIMD)
        self._step = 0.0  # the last hold's length: how long the limit stays before rising by one
        self._next_rise: float | None = None
        self._calling = 0  # bodies inside an attempt now (an attempt waiting to be tried again is not)
        self._call_ended: anyio.Event | None = None
        options = EphemeralOptions(
            max_concurrency=max_concurrency,
            enable_dynamic_concurrency=True,
            max_tracked_operations=check_int(max_pending, "max_pending"),
            signals=sink,
            on_signal=self._on_signal,
        )
        super().__init__(EphemeralWorkCoordinator(self._run, options))

    async def _on_enter(self, tg: TaskGroup) -> None:
        await super()._on_enter(tg)
        self._loop = LoopBinding()
        tg.start_soon(self._hold_timer)

    async def _on_clean_exit(self) -> None:
        # Drained while the hold timer still runs: the last items may have to wait out a hold.
        await self.coordinator.drain()
        await super()._on_clean_exit()

    # -- the hold -----------------------------------------------------------------------------------

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        delay = parse_retry_hint(event.signal)
        if delay is not None and self._loop is not None:
            self._loop.call(lambda: self.hold(delay))  # a body may emit from a worker thread

    def hold(self, delay: float | timedelta) -> None:
        """Start no item for ``delay`` from now (or until a later hold ends); what bodies report does this.

        A call that starts a hold (none was running) also halves ``current_concurrency`` (never below 1);
        one that only extends a running hold does not.
        """
        seconds = min(to_seconds(delay, "delay", allow_zero=True), self._max_hold)
        until = anyio.current_time() + seconds
        if self._until is not None and until <= self._until:
            return
        if self._until is None:
            self.coordinator.pause()
            self._opened = anyio.Event()
            self._set_limit(max(self._limit // 2, 1))  # multiplicative decrease, once per hold
            self._step = seconds
            self._next_rise = None
        self._until = until
        self._holds += 1
        self.coordinator.emit("rate-limit.hold")
        self._wakeup.wake()

    async def _hold_timer(self) -> None:
        while True:
            now = anyio.current_time()
            until = self._until
            if until is not None and now >= until:
                self._until = None
                if self._opened is not None:
                    self._opened.set()
                    self._opened = None
                self.coordinator.emit("rate-limit.resumed")
                self.coordinator.resume()
                if self._limit < self._max_concurrency:
                    self._next_rise = now + self._step
            elif until is not None:
                await self._wakeup.wait(until)
            elif self._next_rise is not None and now >= self._next_rise:
                self._set_limit(self._limit + 1)  # additive increase per stretch without a hint
                self._next_rise = None if self._limit >= self._max_concurrency else self._next_rise + self._step
            else:
                await self._wakeup.wait(self._next_rise)

    def _set_limit(self, limit: int) -> None:
        if limit != self._limit:
            self._limit = limit
            self.coordinator.set_max_concurrency(limit)
            self._wake_callers()

    def _wake_callers(self) -> None:
        if self._call_ended is not None:
            self._call_ended.set()
            self._call_ended = None

    async def _run(self, item: T) -> None:
        attempt = 1
        while True:
            self._calling += 1
            try:
                await self._body(item)
                return
            except Exception as error:
                delay = parse_retry_hint(error)
                if delay is None or attempt >= self.max_attempts:
                    if delay is not None:
                        self.hold(delay)
                    raise
                self.hold(delay)
            finally:
                self._calling -= 1
                self._wake_callers()
            attempt += 1
            while True:  # wait out the hold; a retry keeps its slot, but runs no more than the limit allows
                if self._opened is not None:
                    await self._opened.wait()
                elif self._calling >= self._limit:
                    if self._call_ended is None:
                        self._call_ended = anyio.Event()
                    await self._call_ended.wait()
                else:
                    break

    # -- intake and counters --------------------------------------------------------------------------

    async def process(self, item: T) -> int:
        """Accept ``item`` and return once it is queued (not run), waiting while ``max_pending`` items wait.

        Returns:
            The id of the operation that will run it.

        Raises:
            CoordinatorClosedError: The service was drained or cancelled; the item was not accepted.
        """
        return await self.coordinator.enqueue(item)

    @property
    def is_holding(self) -> bool:
        """Whether new starts are held back by a rate-limit hint now."""
        return self._until is not None

    @property
    def hold_remaining(self) -> float:
        """Seconds until the current hold ends (0 when none)."""
        return 0.0 if self._until is None else max(self._until - anyio.current_time(), 0.0)

    @property
    def current_concurrency(self) -> int:
        """How many bodies may run at once now: ``max_concurrency`` halved by each hold, then rising by one."""
        return self._limit

    @property
    def hold_count(self) -> int:
        """How many hints started or extended a hold."""
        return self._holds
