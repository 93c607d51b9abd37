"""Routing signals to async handlers by glob pattern, off the emitting path."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio.abc import TaskGroup

from ._async_handlers import AsyncSignalQueue
from ._checks import check_async_callable, check_int
from ._events import SignalEvent
from ._hooks import EventHook, Subscription
from ._lifecycle import CoordinatorClosedError, TaskGroupOwner
from ._loop import LoopBinding
from ._matcher import GlobPattern, compile_pattern
from ._options import EphemeralOptions
from ._sink import SignalSink

__all__ = ("SignalDispatcher",)

_log = logging.getLogger("ephemeral.core")
_Self = TypeVar("_Self", bound="SignalDispatcher")

#: ``async def handler(event)``.
SignalHandler = Callable[[SignalEvent[Any]], Awaitable[object]]


class _Rule:
    """One registration: a glob and its handler (called by the dispatcher, never by the hook)."""

    __slots__ = ("glob", "handler")

    def __init__(self, glob: GlobPattern, handler: SignalHandler) -> None:
        self.glob = glob
        self.handler = handler

    def __call__(self, event: SignalEvent[Any]) -> bool:
        return self.glob.matches(event.signal)


class SignalDispatcher(TaskGroupOwner):
    """Runs async handlers for the signals matching their glob patterns, with bounded concurrency and backlog.

    Every handler whose pattern matches a signal runs for it, in registration order; one that raises
    is logged and counted in ``failed_count`` and the others still run. Signals are handled
    concurrently, up to ``max_concurrency`` at once (1 handles them strictly in arrival order). At most
    ``max_queued`` signals wait; beyond that the oldest waiting one is dropped and counted in
    ``dropped_count``, as is every signal dispatched while the dispatcher is not running.

    Use it as ``async with SignalDispatcher(sink) as dispatcher:``; it owns the task group its
    handlers run in. ``flush()`` waits until everything dispatched so far has been handled and leaves
    the dispatcher running; leaving the block does the same, then stops.

    The original's form ``SignalDispatcher(options)`` takes an ``EphemeralOptions``: its
    ``max_concurrency`` and, as the backlog, its ``max_tracked_operations`` (its ``signals`` sink is not
    attached: ``attach`` one, or pass ``sink``).

    Args:
        sink: A sink to ``attach`` to at once (more can be attached later); or the original's options.
        max_concurrency: How many signals are handled at once (default: the number of CPUs).
        max_queued: How many signals may wait for a handler.

    Raises:
        TypeError: Options given together with ``max_concurrency`` or ``max_queued``.

    Example:
        >>> async with SignalDispatcher(sink) as dispatcher:
        ...     dispatcher.register("order.*", handle_order)
        ...     sink.emit("order.placed", key="o-1")
        ...     await dispatcher.flush()
    """

    def __init__(
        self,
        sink: SignalSink | EphemeralOptions | None = None,
        max_concurrency: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        if isinstance(sink, EphemeralOptions):
            if max_concurrency is not None or max_queued is not None:
                raise TypeError("give options alone, or sink with max_concurrency and max_queued, not both")
            max_concurrency, max_queued, sink = sink.max_concurrency, sink.max_tracked_operations, None
        if max_queued is None:
            max_queued = 1000
        if max_concurrency is None:
            max_concurrency = os.cpu_count() or 1
        concurrency = check_int(max_concurrency, "max_concurrency")
        self._queue = AsyncSignalQueue(self._handle, None, concurrency, check_int(max_queued, "max_queued"))
        self._rules: EventHook[SignalEvent[Any]] = EventHook("signal dispatcher rule")
        self._attached: list[Subscription] = []
        self._tg: TaskGroup | None = None
        self._entered = False
        self._closed = False
        self.failed_count = 0
        if sink is not None:
            self.attach(sink)

    # -- lifecycle --------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._entered = True
        self._tg = tg
        self._queue.start(tg, LoopBinding())

    async def _on_clean_exit(self) -> None:
        await self.flush()

    def _on_close(self) -> None:
        self.close()

    def close(self) -> None:
        """Detach from every sink and stop; signals still waiting are dropped (and counted). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscription in self._attached:
            subscription.close()
        self._attached.clear()
        self._queue.close()

    # -- registration -----------------------------------------------------------------------------

    def register(self, pattern: str, handler: SignalHandler) -> Subscription:
        """Run ``await handler(event)`` for every dispatched signal whose name matches the glob ``pattern``.

        Registering the same pattern again adds another handler; each registration is removed by
        closing the ``Subscription`` it returned.

        Raises:
            ValueError: ``pattern`` is blank.
            TypeError: ``handler`` is not callable.
        """
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(f"pattern must be a non-blank glob, got {pattern!r}")
        check_async_callable(handler, "handler")
        return self._rules.connect(_Rule(compile_pattern(pattern), handler))

    @property
    def patterns(self) -> list[str]:
        """The registered patterns, in registration order."""
        return [rule.glob.pattern for rule in self._rules.handlers if isinstance(rule, _Rule)]

    # -- dispatching ------------------------------------------------------------------------------

    def attach(self, sink: SignalSink) -> Subscription:
        """Dispatch every signal emitted on ``sink`` from now on, until the returned handle is closed."""
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if self._closed:
            raise CoordinatorClosedError("the SignalDispatcher is closed")
        subscription = sink.subscribe(self.dispatch)
        self._attached.append(subscription)
        return subscription

    def dispatch(self, event: SignalEvent[Any]) -> bool:
        """Queue ``event`` for the handlers matching it; callable from any thread.

        Returns:
            True when accepted (queued, or matched by no handler); False when the dispatcher is not
            running (a signal some handler wanted is then counted in ``dropped_count``).
        """
        if not any(rule(event) for rule in self._rules.handlers):
            return self._tg is not None and not self._closed
        return self._queue.offer(event)

    async def _handle(self, event: SignalEvent[Any]) -> None:
        for rule in self._rules.handlers:
            if not rule(event):
                continue
            assert isinstance(rule, _Rule)
            try:
                await rule.handler(event)
            except Exception:
                self.failed_count += 1
                _log.exception("signal handler %r failed for %s", rule.handler, event.signal)

    async def flush(self) -> None:
        """Wait until every signal dispatched so far (and any dispatched meanwhile) has been handled."""
        await self._queue.wait_idle()

    wait_idle = flush

    # -- counters ---------------------------------------------------------------------------------

    @property
    def queued_count(self) -> int:
        """Signals waiting for their handlers."""
        return self._queue.queued_count

    @property
    def processed_count(self) -> int:
        """Signals whose matching handlers have all run (whether or not they raised)."""
        return self._queue.processed_count

    @property
    def dropped_count(self) -> int:
        """Signals never fully handled (dropped from a full queue, refused, or cut short by an error).

        That is: pushed out of a full queue, dispatched while not running, or still waiting (or being
        handled) when an error stopped the dispatcher.
        """
        return self._queue.dropped_count
