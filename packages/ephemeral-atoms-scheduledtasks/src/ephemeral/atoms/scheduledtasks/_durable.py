"""DurableTaskAtom: tasks kept in a store, claimed and handled on a coordinator, retried, never lost."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralKeyedWorkCoordinator,
    EphemeralOptions,
    SignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import (
    AtomBase,
    BackoffPolicy,
    TimeBase,
    Wakeup,
    check_async_callable,
    check_int,
    loop_clock,
)

from ._store import DurableTask, InMemoryTaskStore, StoredTask, TaskStore

__all__ = ("DurableTaskAtom",)

_Self = TypeVar("_Self", bound="DurableTaskAtom")
_log = logging.getLogger("ephemeral.atoms.scheduledtasks")
_OUTAGE_WAIT = 1.0  # seconds between attempts to read a store that failed


def _not_open() -> RuntimeError:
    return RuntimeError("enter the atom first: `async with DurableTaskAtom(handler) as atom:`")


def _key_of(stored: StoredTask) -> str:
    return stored.task.key if stored.task.key is not None else stored.task.name


class DurableTaskAtom(AtomBase[EphemeralKeyedWorkCoordinator[StoredTask, str]]):
    """Runs ``async def handler(task)`` for every ``DurableTask`` put in its store, one at a time by default.

    ``enqueue`` puts a task in the store (on disk, for the durable stores, before it returns); the atom
    claims due tasks while it has a free slot (``max_concurrency``) and runs each as an operation of its
    coordinator, keyed by the task's key (its name when it has none). The operation emits
    ``task.started:{name}``, then the task's own signal, then ``task.completed:{name}`` or
    ``task.failed:{name}``. A handler that raises is tried again after ``retry_delay * 2**(n-1)`` (or what a
    ``BackoffPolicy`` given as ``retry_delay`` says) until it has failed ``max_attempts`` times; a handler
    that never finished (the process died) runs again when the store hands the task out again (at the next
    start, or when its lease expires).

    Args:
        handler: ``async def handler(task: DurableTask)``.
        store: Where tasks wait: None keeps them in memory (lost with the process); ``SqliteTaskStore`` or
            ``PostgresTaskStore`` keep them on disk.
        max_concurrency: How many handlers run at once.
        max_attempts: How many times a failing handler is tried.
        retry_delay: The wait before the first retry, doubled for each further one (seconds or timedelta), or
            a ``BackoffPolicy`` (from ``ephemeral.core.lowlevel``) for another curve, a cap or jitter.
        signals: A shared sink for the operations' signals.
        clock: ``clock()`` -> aware UTC datetime, for retry times in local stores; by default the loop's
            clock (virtual time drives it).

    Raises:
        TypeError: ``handler`` is not callable or ``store`` is not a ``TaskStore``.
        ValueError: ``max_concurrency`` or ``max_attempts`` < 1, ``retry_delay`` < 0.
    """

    def __init__(
        self,
        handler: Callable[[DurableTask], Awaitable[object]],
        store: TaskStore | None = None,
        *,
        max_concurrency: int = 1,
        max_attempts: int = 1,
        retry_delay: float | timedelta | BackoffPolicy = 1.0,
        signals: SignalSink | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        check_async_callable(handler, "handler")
        if store is None:
            store = InMemoryTaskStore()
        elif not isinstance(store, TaskStore):
            raise TypeError(f"store must be a TaskStore (InMemoryTaskStore, SqliteTaskStore, ...), got {store!r}")
        check_int(max_concurrency, "max_concurrency", minimum=1)
        check_int(max_attempts, "max_attempts", minimum=1)
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning an aware datetime, got {clock!r}")
        self._backoff = (
            retry_delay if isinstance(retry_delay, BackoffPolicy) else BackoffPolicy(retry_delay, name="retry_delay")
        )
        self._handler = handler
        self._store = store
        self._max_attempts = max_attempts
        self._clock = clock
        self._now: Callable[[], datetime] = clock if clock is not None else TimeBase(loop_clock()).now
        self._worker = uuid.uuid4().hex
        options = EphemeralOptions(
            max_concurrency=max_concurrency,
            max_concurrency_per_key=max_concurrency,
            signals=signals,
            drain_on_signals=None,
        )
        super().__init__(EphemeralKeyedWorkCoordinator(_key_of, self._run, options))
        self._slots = anyio.Semaphore(max_concurrency)
        self._claimed = 0
        self._adding = 0  # enqueue calls under way
        self._intake = 0  # changes whenever an enqueue starts or ends
        self._loop_clock = loop_clock()
        self._wakeup = Wakeup(self._loop_clock)
        self._idle = False
        self._idle_changed: anyio.Event | None = None
        self._tg: TaskGroup | None = None
        self._open = False
        self._accepting = True  # False after complete(): enqueue refuses, stored tasks still run
        self._claiming = True  # False once drain() has seen the store empty: the pump stops

    @property
    def store(self) -> TaskStore:
        """The store the atom's tasks wait in."""
        return self._store

    # -- lifecycle --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        self._loop_clock = loop_clock()
        self._wakeup = Wakeup(self._loop_clock)
        if self._clock is None:
            self._now = TimeBase(self._loop_clock).now
        await self._store.open()
        try:
            async with super()._outer_context():  # the coordinator's block, around the pump's
                yield
        finally:
            with anyio.CancelScope(shield=True):
                await self._store.close()

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._idle_changed = anyio.Event()
        self._tg = tg
        tg.start_soon(self._pump)
        self._open = True

    def _on_close(self) -> None:
        """Leave: stop claiming, let running handlers finish (cancel them on an exception), close the store."""
        self._open = False
        changed, self._idle_changed = self._idle_changed, None
        if changed is not None:
            changed.set()  # a wait_for_idle still waiting wakes and raises: the atom is no longer open

    # -- intake -----------------------------------------------------------------------------------

    async def enqueue(self, task: DurableTask) -> bool:
        """Store ``task`` for handling; with a durable store it is on disk when this returns.

        Returns:
            False when the store already holds the same ``(name, scheduled_at)``: it runs once.

        Raises:
            TypeError: ``task`` is not a ``DurableTask``.
            RuntimeError: The atom is not open.
            CoordinatorClosedError: ``complete()`` or ``drain()`` was called.
        """
        if not isinstance(task, DurableTask):
            raise TypeError(f"task must be a DurableTask, got {task!r}")
        if not self._open:
            raise _not_open()
        if not self._accepting:
            raise CoordinatorClosedError("DurableTaskAtom has been completed; no new tasks are accepted")
        self._adding += 1
        self._intake += 1
        self._set_idle(False)
        try:
            return await self._store.add(task, self._now())
        finally:
            self._adding -= 1
            self._intake += 1
            self._poke()

    def complete(self) -> None:
        """Stop accepting tasks (``enqueue`` raises ``CoordinatorClosedError``); stored ones still run."""
        self._accepting = False

    async def drain(self) -> None:
        """``complete()``, then wait until every stored task has run (its last attempt included)."""
        if self._idle_changed is None:
            raise _not_open()
        self.complete()
        await self.wait_for_idle()
        self._claiming = False
        self._poke()
        await self.coordinator.drain()

    async def wait_for_idle(self) -> None:
        """Wait until no task is running and none is waiting to be claimed; the atom stays open."""
        while not self._idle:
            changed = self._idle_changed
            if changed is None:
                raise _not_open()
            await changed.wait()
        if self._idle_changed is None:
            raise _not_open()

    # -- claiming ---------------------------------------------------------------------------------

    def _poke(self) -> None:
        self._wakeup.wake()

    def _set_idle(self, idle: bool) -> None:
        if idle != self._idle:
            self._idle = idle
            if self._idle_changed is not None:
                self._idle_changed.set()
                self._idle_changed = anyio.Event()

    async def _pump(self) -> None:
        """Claim a due task whenever a slot is free, and hand it to the coordinator."""
        store = self._store
        while True:
            await self._slots.acquire()
            try:
                while True:
                    if not self._claiming:
                        await anyio.sleep_forever()  # drained: nothing more is handed to the coordinator
                    now = self._now()
                    intake = self._intake
                    try:
                        stored = await store.claim(self._worker, now)
                        if stored is not None:
                            break
                        wait = await store.next_due(now)
                    except Exception:
                        _log.warning("could not read the task store; trying again in %g s", _OUTAGE_WAIT, exc_info=True)
                        wait = _OUTAGE_WAIT
                    else:
                        if wait is None and self._claimed == 0 and self._adding == 0 and intake == self._intake:
                            self._set_idle(True)  # nothing was stored while the store was being read
                    timeout = min(math.inf if wait is None else wait, store.poll_interval or math.inf)
                    await self._wakeup.wait(None if timeout == math.inf else self._loop_clock() + timeout)
                self._set_idle(False)
            except BaseException:
                self._slots.release()
                raise
            self._claimed += 1
            try:
                await self.coordinator.enqueue(stored)
            except BaseException:
                self._claimed -= 1
                self._slots.release()
                raise

    async def _run(self, stored: StoredTask) -> None:
        """One attempt: the operation's signals around the handler, then the outcome recorded in the store."""
        task = stored.task
        operation = current_operation()
        store = self._store
        try:
            if operation is not None:
                operation.emit(f"task.started:{task.name}")
                operation.emit(task.signal)
            try:
                await self._call_handler(stored)
            except Exception as error:
                retry = stored.attempt < self._max_attempts
                delay = self._backoff.delay(stored.attempt) if retry else None
                _log.warning(
                    "task %r (%s) failed on attempt %d%s",
                    task.name,
                    task.scheduled_at.isoformat(),
                    stored.attempt,
                    f"; retrying in {delay:g} s" if delay is not None else "; giving up",
                    exc_info=error,
                )
                with anyio.CancelScope(shield=True):
                    await store.fail(stored, self._worker, self._now(), delay, f"{type(error).__name__}: {error}")
                if operation is not None:
                    operation.emit(f"task.failed:{task.name}")
                raise
            with anyio.CancelScope(shield=True):
                held = await store.finish(stored, self._worker, self._now())
            if not held:
                _log.warning("task %r (%s) finished after its lease was lost", task.name, task.scheduled_at)
            if operation is not None:
                operation.emit(f"task.completed:{task.name}")
        finally:
            self._claimed -= 1
            self._slots.release()
            self._poke()

    async def _call_handler(self, stored: StoredTask) -> None:
        """The handler, with its lease renewed while it runs when the store's claims expire."""
        lease = self._store.lease
        if lease is None:
            await self._handler(stored.task)
            return
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_lease, stored, lease)
            try:
                await self._handler(stored.task)
            except Exception as error:
                failure = error  # raised below, not wrapped in an exception group
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _keep_lease(self, stored: StoredTask, lease: float) -> None:
        while True:
            await anyio.sleep(lease / 3)
            try:
                if not await self._store.renew(stored, self._worker):
                    _log.warning("task %r (%s) lost its lease", stored.task.name, stored.task.scheduled_at)
                    return
            except Exception:
                _log.warning("could not renew the lease of task %r", stored.task.name, exc_info=True)
