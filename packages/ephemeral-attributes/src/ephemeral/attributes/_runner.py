"""The signal job runner: matches each signal against the jobs' triggers and runs them in coordinators."""

from __future__ import annotations

import contextlib
import heapq
import math
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ephemeral.core import (
    DEFAULT_ACK_PATTERN,
    EphemeralKeyedWorkCoordinator,
    EphemeralOperation,
    EphemeralOperationSnapshot,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    PatternSet,
    ResponsibilitySignalManager,
    SignalConstraints,
    SignalEvent,
    SignalPropagation,
    SignalSink,
    Subscription,
    TypedSignalSink,
    current_operation,
)
from ephemeral.core.lowlevel import (
    LoopBinding,
    PatternIndex,
    TaskGroupOwner,
    caused_event,
    check_int,
    to_seconds,
)

from ._jobs import EphemeralJobDescriptor, EphemeralJobScanner

__all__ = ("EphemeralJobRunnerOptions", "EphemeralSignalJobRunner", "JobStats")


#: The causal chain of the invocation whose body is running in this task (or a thread it started):
#: a signal emitted there is a consequence of the invocation's trigger.
_current_chain: ContextVar[SignalPropagation | None] = ContextVar("ephemeral_job_chain", default=None)


@dataclass(frozen=True, kw_only=True)
class EphemeralJobRunnerOptions:
    """How a job runner runs its jobs. Every field is checked at construction.

    Attributes:
        max_tracked_operations: Per job: how many finished invocations stay visible in its window,
            and how many may wait in its coordinator.
        max_operation_lifetime: How long a finished invocation stays visible (None: until pushed out).
        max_pending: Per job: invocations that may wait beyond ``max_tracked_operations``; a signal
            arriving when that is full is dropped for that job, counted and signalled
            (``job.dropped:{method}``).
        max_concurrency: The limit of a job declared with ``max_concurrency=0`` in a lane without one.
        signal_constraints: Limits on causal chains: a signal caused by a job (emitted by its body or
            its ``emit_on_*``) whose chain these refuse runs no job, so a job whose completion signal
            matches its own trigger runs once more at most, not forever.
        ack_pattern: The ack signal of pinned jobs (its key: the trigger's key, else the operation id).
    """

    max_tracked_operations: int = 200
    max_operation_lifetime: float | timedelta | None = 300.0
    max_pending: int = 10_000
    max_concurrency: int = 64
    signal_constraints: SignalConstraints = SignalConstraints.DEFAULT
    ack_pattern: str = DEFAULT_ACK_PATTERN

    def __post_init__(self) -> None:
        check_int(self.max_tracked_operations, "max_tracked_operations")
        check_int(self.max_pending, "max_pending", 0)
        check_int(self.max_concurrency, "max_concurrency")
        if self.max_operation_lifetime is not None:
            to_seconds(self.max_operation_lifetime, "max_operation_lifetime")
        if not isinstance(self.signal_constraints, SignalConstraints):
            raise TypeError(f"signal_constraints must be SignalConstraints, got {self.signal_constraints!r}")
        if not isinstance(self.ack_pattern, str) or not PatternSet(self.ack_pattern):
            raise ValueError(f"ack_pattern must be a non-empty glob, got {self.ack_pattern!r}")


class JobStats(NamedTuple):
    """What happened to the invocations of a job (or of all of them).

    Every matched signal ends exactly once as completed, failed, dropped or cancelled (once the runner
    has closed): ``matched == completed + failed + dropped + cancelled``.
    """

    matched: int
    started: int
    completed: int
    failed: int
    retried: int
    dropped: int
    cancelled: int


class _Solo:
    """The group of an invocation with no key: its own, so it runs beside the others."""

    __slots__ = ()

    def __str__(self) -> str:
        return "none"


class _Invocation:
    __slots__ = ("chain", "event", "group", "job", "key")

    def __init__(self, job: _Job, event: SignalEvent[Any], chain: SignalPropagation, key: str | None) -> None:
        self.job = job
        self.event = event
        self.chain = chain
        self.key = key
        self.group: object = key if key is not None else _Solo()


class _Waiter:
    """An invocation waiting for its awaited signals: woken by a matching signal or by closing."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()


class _Closing(Exception):
    """The runner is closing while an invocation waits for its ``await_signals``."""


class _LaneGate:
    """A lane's N slots: a freed slot goes to the waiting attempt of lowest job priority, first come among equals."""

    __slots__ = ("_free", "_sequence", "_waiting")

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._sequence = 0
        self._waiting: list[tuple[int, int, anyio.Event]] = []  # a heap

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            await anyio.lowlevel.checkpoint()  # as a semaphore: a checkpoint even when free
        else:
            self._sequence += 1
            entry = (priority, self._sequence, anyio.Event())
            heapq.heappush(self._waiting, entry)
            try:
                await entry[2].wait()
            except BaseException:
                if entry[2].is_set():
                    self._release()  # handed a slot while being cancelled: pass it on
                else:
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        if self._waiting:
            heapq.heappop(self._waiting)[2].set()  # the slot passes straight to the next
        else:
            self._free += 1


class _Job:
    """A job's live state: its coordinator, lane gate, backlog, awaited patterns and counters."""

    def __init__(self, descriptor: EphemeralJobDescriptor, gate: _LaneGate | None) -> None:
        self.descriptor = descriptor
        self.gate = gate
        self.awaited = [PatternSet(pattern) for pattern in descriptor.await_signals]
        self.coordinator: EphemeralWorkCoordinator[_Invocation] | EphemeralKeyedWorkCoordinator[_Invocation, Any]
        self.responsibility: ResponsibilitySignalManager | None = None
        self.backlog: deque[_Invocation] = deque()
        self.feeding = False
        self.matched = self.started = self.completed = self.failed = 0
        self.retried = self.dropped = self.cancelled = 0

    def stats(self) -> JobStats:
        cancelled = self.cancelled + self.coordinator.total_cancelled
        return JobStats(self.matched, self.started, self.completed, self.failed, self.retried, self.dropped, cancelled)


class EphemeralSignalJobRunner(TaskGroupOwner):
    """Runs the ``@ephemeral_job`` methods of ``targets`` whenever a matching signal reaches ``sink``.

    Every signal emitted on the sink (from any thread, from a job, from a logging handler) is matched
    once against the jobs' triggers through a pattern index (the cost does not grow with every job
    checking every signal), and each matching job gets an invocation, in priority order. Each job runs
    in its own coordinator: at most ``max_concurrency`` invocations at once, in order per key for keyed
    jobs (``key_from_signal``, ``key_from_payload``, ``operation_key``) and in parallel otherwise. Jobs
    sharing a lane ``"name:N"`` share a gate of N. Retries back off ``retry_delay_ms * 2**(n-1)`` on the
    loop's clock; ``timeout_ms`` cancels an attempt; ``await_signals`` waits by subscription, holding
    no lane slot; ``pin=True`` keeps the invocation in its job's window until acknowledged.

    Use it as ``async with EphemeralSignalJobRunner(sink, [LogWatcherJobs(sink)]) as runner:``. Leaving the
    block cancels the invocations waiting on ``await_signals`` (counted), waits until every other
    accepted invocation (and what it set off) has finished, then stops listening. An exception leaving
    the block cancels everything.

    Args:
        sink: The sink whose signals trigger jobs and receives their signals (a typed sink's untyped one).
        targets: Objects with ``@ephemeral_job`` methods.
        options: ``EphemeralJobRunnerOptions``.

    Raises:
        TypeError: ``sink`` is not a sink, ``targets`` is not a collection of objects, or a class is
            given where an instance is expected.
        ValueError: No decorated method was found, or two jobs give one lane different limits.
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any],
        targets: Iterable[object],
        options: EphemeralJobRunnerOptions | None = None,
    ) -> None:
        if isinstance(sink, TypedSignalSink):
            sink = sink.untyped
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if options is None:
            options = EphemeralJobRunnerOptions()
        elif not isinstance(options, EphemeralJobRunnerOptions):
            raise TypeError(f"options must be EphemeralJobRunnerOptions or None, got {options!r}")
        if isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable):
            raise TypeError(f"targets must be a collection of objects with @ephemeral_job methods, got {targets!r}")
        self._sink = sink
        self.options = options
        descriptors = EphemeralJobScanner.scan_all(self._check_targets(list(targets)))
        if not descriptors:
            raise ValueError("No attributed jobs were discovered: decorate async methods with @ephemeral_job")
        self._lanes: dict[str, int | None] = {}
        owners: dict[str, str] = {}
        for descriptor in descriptors:
            limit = descriptor.lane_max_concurrency
            earlier = self._lanes.get(descriptor.lane)
            if earlier is not None and limit is not None and earlier != limit:
                raise ValueError(
                    f"job {descriptor.name!r}: lane {descriptor.lane!r} has limit {limit}, but "
                    f"{owners[descriptor.lane]!r} gives it {earlier}"
                )
            if earlier is None:
                self._lanes[descriptor.lane] = limit
                owners[descriptor.lane] = descriptor.name
        self._descriptors = descriptors
        self._jobs: dict[str, _Job] = {}
        self._index: PatternIndex[_Job] = PatternIndex()
        self._subscription: Subscription | None = None
        self._loop: LoopBinding | None = None
        self._tg: TaskGroup | None = None
        self._closing = False
        self._awaits_closed = False
        self._cancelled = False
        self._in_flight = 0
        self._awaiting = 0
        self._waiters: set[_Waiter] = set()
        self._idle: anyio.Event | None = None
        self.blocked_count = 0

    def _check_targets(self, targets: list[object]) -> list[object]:
        for target in targets:
            if isinstance(target, type):
                raise TypeError(
                    f"targets must be objects, got the class {target.__qualname__}: pass an instance "
                    "(EphemeralScopedJobRunner builds one per invocation from classes)"
                )
        return targets

    # -- what there is to see ---------------------------------------------------------------------

    @property
    def jobs(self) -> list[EphemeralJobDescriptor]:
        """The jobs found on the targets, lowest priority first."""
        return list(self._descriptors)

    @property
    def lanes(self) -> list[str]:
        """The lane names, in order of first use."""
        return list(self._lanes)

    def lane_limit(self, lane: str) -> int | None:
        """The lane's limit (``"hot:4"`` -> 4), or None when it has none."""
        return self._lanes[lane]

    @property
    def coordinators(self) -> dict[str, EphemeralWorkCoordinator[Any] | EphemeralKeyedWorkCoordinator[Any, Any]]:
        """Each job's coordinator, by job name (``"{class}.{method}"``), while running."""
        return {name: job.coordinator for name, job in self._jobs.items()}

    @property
    def pending_count(self) -> int:
        """Invocations accepted and not started (queued in a coordinator or waiting for room)."""
        return sum(job.coordinator.pending_count + len(job.backlog) for job in self._jobs.values())

    @property
    def active_count(self) -> int:
        """Invocations running (waiting for awaited signals or a lane slot, backing off, or in the body)."""
        return sum(job.coordinator.active_count for job in self._jobs.values())

    @property
    def awaiting_count(self) -> int:
        """Invocations waiting for their ``await_signals``."""
        return self._awaiting

    def get_stats(self, job: str | None = None) -> JobStats:
        """Counters of one job (by name) or of all of them."""
        if job is not None:
            return self._job(job).stats()
        totals = [sum(values) for values in zip(*(j.stats() for j in self._jobs.values()), strict=True)]
        return JobStats(*totals) if totals else JobStats(0, 0, 0, 0, 0, 0, 0)

    def get_snapshot(self, job: str | None = None) -> list[EphemeralOperationSnapshot[Any]]:
        """Recent invocations (running, finished, pinned) of one job or of all, oldest first."""
        jobs = [self._job(job)] if job is not None else list(self._jobs.values())
        snapshots = [snapshot for j in jobs for snapshot in j.coordinator.get_snapshot()]
        snapshots.sort(key=lambda snapshot: snapshot.started)
        return snapshots

    def _job(self, name: str) -> _Job:
        job = self._jobs.get(name)
        if job is None:
            raise KeyError(f"no job named {name!r}; jobs are {list(self._jobs)}")
        return job

    # -- lifecycle --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        self._loop = LoopBinding()
        options = self.options
        gates = {lane: _LaneGate(limit) for lane, limit in self._lanes.items() if limit is not None}
        async with contextlib.AsyncExitStack() as stack:
            names: set[str] = set()
            for descriptor in self._descriptors:
                name = descriptor.name
                while name in names:  # two targets of one class
                    name += "'"
                names.add(name)
                job = _Job(descriptor, gates.get(descriptor.lane))
                await stack.enter_async_context(self._coordinator_for(job, name))
                if descriptor.is_pinned:
                    job.responsibility = await stack.enter_async_context(
                        ResponsibilitySignalManager(
                            job.coordinator, self._sink, descriptor.expire_after, options.ack_pattern
                        )
                    )
                self._jobs[name] = job
                self._index.add(descriptor.effective_trigger_signal, job)
            try:
                yield
            finally:  # the feeders have stopped (an outer cancellation leaves through here too)
                self._cancel_backlogs()

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._tg = tg  # feeders run here: stopped before the coordinators drain or cancel
        self._subscription = self._sink.subscribe(self._on_signal)

    async def _on_clean_exit(self) -> None:
        self._release_waiters()  # waiting for await_signals ends now: their slots go to the next
        await self._wait_quiet()

    def _on_close(self) -> None:
        self._stop_listening()  # waiters for await_signals are released too

    def _coordinator_for(
        self, job: _Job, name: str
    ) -> EphemeralWorkCoordinator[_Invocation] | EphemeralKeyedWorkCoordinator[_Invocation, Any]:
        descriptor = job.descriptor
        limit = descriptor.effective_max_concurrency or descriptor.lane_max_concurrency or self.options.max_concurrency
        options = EphemeralOptions(
            max_concurrency=limit,
            max_concurrency_per_key=1,
            max_tracked_operations=self.options.max_tracked_operations,
            max_operation_lifetime=self.options.max_operation_lifetime,
            signals=self._sink,
            signal_constraints=self.options.signal_constraints,
            drain_on_signals=None,
            coordinator_id=f"job:{name}",
        )
        if descriptor.is_keyed:
            job.coordinator = EphemeralKeyedWorkCoordinator(_group_of, self._run, options)
        else:
            job.coordinator = EphemeralWorkCoordinator(self._run, options)
        return job.coordinator

    async def drain(self) -> None:
        """Wait until every accepted invocation, and whatever it set off, has finished (as leaving does).

        Invocations waiting on ``await_signals`` are cancelled first; the runner keeps listening.
        """
        self._release_waiters()
        await self._wait_quiet()

    def cancel(self) -> None:
        """Stop listening and cancel every accepted invocation, waiting or running (counted as cancelled)."""
        self._cancelled = True
        self._stop_listening()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        for job in self._jobs.values():
            job.cancelled += len(job.backlog)
            job.backlog.clear()
            job.coordinator.cancel()
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.set()

    async def _wait_quiet(self) -> None:
        """Wait until every accepted invocation, and whatever it set off, has finished."""
        while self._in_flight > 0 and not self._cancelled:
            self._idle = anyio.Event()
            await self._idle.wait()

    def _check_idle(self) -> None:
        idle = self._idle
        if idle is not None and self._in_flight <= 0:
            self._idle = None
            idle.set()

    def _release_waiters(self) -> None:
        self._awaits_closed = True
        for waiter in list(self._waiters):
            waiter.event.set()

    def _stop_listening(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self._closing = True
        self._release_waiters()

    def _cancel_backlogs(self) -> None:
        """Count the invocations never handed to their coordinator as cancelled."""
        for job in self._jobs.values():
            job.cancelled += len(job.backlog)
            self._in_flight -= len(job.backlog)
            job.backlog.clear()

    # -- intake ---------------------------------------------------------------------------------

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        """Sink subscriber (any thread): find the matching jobs and hand their invocations to the loop."""
        if self._closing:
            return
        jobs = self._index.match(event.signal)
        parent = _current_chain.get()
        if parent is not None:  # emitted by a job: a consequence of its trigger, subject to the constraints
            if self.options.signal_constraints.should_block(event.signal, parent) is not None:
                if jobs:
                    self.blocked_count += 1
                return
            chain = parent.extend(event.signal)
        else:
            chain = event.propagation or SignalPropagation.root(event.signal)
        if not jobs:
            return
        loop = self._loop
        assert loop is not None
        if loop.on_loop_thread:
            self._dispatch(jobs, event, chain)
        else:
            loop.call(lambda: self._dispatch(jobs, event, chain))

    def _dispatch(self, jobs: list[_Job], event: SignalEvent[Any], chain: SignalPropagation) -> None:
        if self._closing:
            return
        for job in jobs:
            invocation = _Invocation(job, event, chain, job.descriptor.extract_key(event))
            job.matched += 1
            self._in_flight += 1
            if not job.backlog and job.coordinator.try_enqueue(invocation):
                continue
            if len(job.backlog) >= self.options.max_pending:
                job.dropped += 1
                self._in_flight -= 1
                self._emit(f"job.dropped:{job.descriptor.method_name}", invocation, event.operation_id)
                continue
            job.backlog.append(invocation)
            if not job.feeding and self._tg is not None:
                job.feeding = True
                self._tg.start_soon(self._feed, job)
        self._check_idle()

    async def _feed(self, job: _Job) -> None:
        """Hand a job's backlog to its coordinator in order, waiting for room."""
        try:
            while job.backlog:
                await job.coordinator.enqueue(job.backlog[0])
                job.backlog.popleft()
        finally:
            job.feeding = False

    # -- one invocation -------------------------------------------------------------------------

    def _emit(self, signal: str, invocation: _Invocation, operation_id: int) -> None:
        event = caused_event(
            signal,
            invocation.chain,
            operation_id=operation_id,
            key=invocation.event.key,
            timestamp=self._sink.now(),
            constraints=self.options.signal_constraints,
        )
        if event is not None:
            self._sink.emit(event)

    async def _run(self, invocation: _Invocation) -> None:
        job = invocation.job
        descriptor = job.descriptor
        operation = current_operation()
        token = _current_chain.set(invocation.chain)
        try:
            if job.responsibility is not None:
                ack_key = invocation.key if invocation.key is not None else str(operation.id)
                job.responsibility.pin_until_queried(operation.id, None, ack_key, descriptor.name)
            if job.awaited:
                try:
                    await self._await_signals(job, descriptor.await_timeout)
                except _Closing:
                    job.cancelled += 1
                    return
                except TimeoutError as error:
                    self._fail(invocation, operation, error)
                    if descriptor.swallow_exceptions:
                        return
                    raise
            job.started += 1
            for signal in descriptor.emit_on_start:
                self._emit(signal, invocation, operation.id)
            await self._attempts(invocation, operation)
        finally:
            _current_chain.reset(token)
            self._in_flight -= 1
            self._check_idle()

    async def _attempts(self, invocation: _Invocation, operation: EphemeralOperation) -> None:
        job = invocation.job
        descriptor = job.descriptor
        spec = descriptor.spec
        attempts = spec.max_retries + 1
        timeout = spec.timeout_ms / 1000 if spec.timeout_ms else None
        for attempt in range(1, attempts + 1):
            try:
                if job.gate is None and timeout is None:
                    await self._invoke(descriptor, invocation.event)
                else:
                    gate = job.gate.slot(descriptor.effective_priority) if job.gate is not None else None
                    async with gate if gate is not None else contextlib.nullcontext():
                        with anyio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
                            await self._invoke(descriptor, invocation.event)
            except BaseException as error:
                if not isinstance(error, Exception) and not _stray_cancellation(error):
                    raise  # the runner's own cancellation, or KeyboardInterrupt and the like
                if attempt < attempts:
                    job.retried += 1
                    self._emit(f"job.retry:{descriptor.method_name}:{attempt}", invocation, operation.id)
                    await anyio.sleep(spec.retry_delay_ms * 2 ** (attempt - 1) / 1000)
                    continue
                self._fail(invocation, operation, error)
                if descriptor.swallow_exceptions:
                    return
                raise
            else:
                job.completed += 1
                for signal in descriptor.emit_on_complete:
                    self._emit(signal, invocation, operation.id)
                return

    def _fail(self, invocation: _Invocation, operation: EphemeralOperation, error: BaseException) -> None:
        job = invocation.job
        job.failed += 1
        for signal in job.descriptor.emit_on_failure:
            self._emit(signal, invocation, operation.id)
        self._emit(f"job.failed:{job.descriptor.method_name}:{type(error).__name__}", invocation, operation.id)

    async def _await_signals(self, job: _Job, limit: timedelta | None) -> None:
        """Wait until every awaited glob is live on the sink, woken by the sink's signals (no polling)."""
        sink = self._sink
        patterns = job.awaited

        def ready() -> bool:
            return all(sink.detect(pattern) for pattern in patterns)

        if ready():
            return
        waiter = _Waiter()
        loop = self._loop
        assert loop is not None

        def on_signal(event: SignalEvent[Any]) -> None:
            if any(pattern.matches(event.signal) for pattern in patterns):
                loop.call(lambda: waiter.event.set())

        self._awaiting += 1
        self._waiters.add(waiter)
        try:
            deadline = anyio.fail_after(limit.total_seconds()) if limit is not None else contextlib.nullcontext()
            with sink.subscribe(on_signal), deadline:
                while not ready():
                    if self._awaits_closed:
                        raise _Closing
                    await waiter.event.wait()
                    waiter.event = anyio.Event()
        finally:
            self._awaiting -= 1
            self._waiters.discard(waiter)

    async def _invoke(self, descriptor: EphemeralJobDescriptor, event: SignalEvent[Any]) -> None:
        """Call the job's method on its target (the scoped runner builds the target per call)."""
        await descriptor.method(descriptor.target, event)


def _stray_cancellation(error: BaseException) -> bool:
    """Whether ``error`` is a cancellation the body let out while nothing cancelled it (a failure)."""
    return isinstance(error, anyio.get_cancelled_exc_class()) and anyio.current_effective_deadline() != -math.inf


def _group_of(invocation: _Invocation) -> object:
    return invocation.group
