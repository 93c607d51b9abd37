"""Waves of work started by signals: each stage runs when a signal matching its trigger is emitted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._checks import check_async_callable
from ._coordinator import CoordinatorMetrics, EphemeralWorkCoordinator
from ._events import SignalEvent, SignalPropagation
from ._hooks import Subscription
from ._lifecycle import TaskGroupOwner
from ._loop import LoopBinding
from ._matcher import PatternSet
from ._operation import current_operation
from ._options import EphemeralOptions
from ._sink import SignalSink, next_id

__all__ = ("SignalStage", "SignalWaveExecutor")

#: The stage whose run is emitting, in that run's task (and the tasks and threads it starts). Sinks
#: call subscribers on the emitting task, so the executor knows which stage a signal comes from.
_emitting_stage: ContextVar[str | None] = ContextVar("ephemeral_emitting_stage", default=None)


def _names(field: str, value: Iterable[str] | str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{field} must hold non-empty signal names, got {name!r}")
    return names


@dataclass(frozen=True)
class SignalStage:
    """A stage of a ``SignalWaveExecutor``.

    Attributes:
        name: The stage's name, used in its lifecycle signals.
        trigger: A glob (comma-separated alternatives allowed) or several; each matching signal starts a run.
        work: ``async def work(trigger_event)``; cancelled by the executor's early exit.
        emit_on_start: Signals emitted when a run starts (after ``stage.start:{name}``).
        emit_on_complete: Signals emitted when ``work`` returns (before ``stage.complete:{name}``).
        emit_on_failure: Signals emitted when ``work`` raises (before ``stage.fail:{name}:{error type}``).
    """

    name: str
    trigger: Iterable[str] | str
    work: Callable[[SignalEvent[Any]], Awaitable[Any]]
    emit_on_start: Iterable[str] | str = ()
    emit_on_complete: Iterable[str] | str = ()
    emit_on_failure: Iterable[str] | str = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        check_async_callable(self.work, "work")
        try:
            trigger = PatternSet(self.trigger).patterns
        except TypeError as error:
            raise TypeError(f"trigger: {error}") from None
        if not trigger:
            raise ValueError(f"trigger must hold at least one glob pattern, got {self.trigger!r}")
        object.__setattr__(self, "trigger", trigger)
        for field in ("emit_on_start", "emit_on_complete", "emit_on_failure"):
            object.__setattr__(self, field, _names(field, getattr(self, field)))


class SignalWaveExecutor(TaskGroupOwner):
    """Runs stages when signals matching their triggers are emitted on a sink; one wave starts the next.

    Each matching signal starts one run of the stage, through an inner ``EphemeralWorkCoordinator``
    bounded by ``max_concurrent_stages``. A run emits on the sink (key: the trigger's key):
    ``stage.start:{name}``, the stage's ``emit_on_start``, then after ``work`` its ``emit_on_complete``
    and ``stage.complete:{name}``; or its ``emit_on_failure`` and ``stage.fail:{name}:{error type}``;
    or ``stage.cancel:{name}`` when cancelled. Those signals may trigger other stages.

    Runaway waves cannot happen: a stage never triggers itself (not from its lifecycle signals, nor
    from anything its ``work`` emits, on the sink or through ``current_operation()``), and a stage is
    not triggered again by a signal whose causal chain (``SignalEvent.propagation``) already went
    through one of its runs, so even ``trigger="*"`` on every stage ends.

    A signal matching ``early_exit_signals`` ends everything: the executor stops listening, cancels
    running work and every waiting run, and emits ``stage.exit:{signal}`` (key: the signal's key).

    Use it as an async context manager. Leaving the block waits until no run is running or waiting
    (the wave has settled), then stops listening; an exception in the block cancels everything.

    Args:
        sink: The sink whose signals trigger stages and on which stage signals are emitted.
        stages: The stages (distinct names).
        early_exit_signals: Globs that stop the executor.
        max_concurrent_stages: The most runs at once.
        max_waiting_runs: The most triggered runs waiting for a slot; beyond it triggers are dropped
            (counted in ``dropped_count``).

    Raises:
        ValueError: No stage, duplicate stage names, or a bound below 1.
    """

    def __init__(
        self,
        sink: SignalSink,
        stages: Iterable[SignalStage],
        *,
        early_exit_signals: Iterable[str] | str | None = None,
        max_concurrent_stages: int = 4,
        max_waiting_runs: int = 1000,
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        self._stages = tuple(stages)
        if not self._stages:
            raise ValueError("stages must hold at least one SignalStage")
        for stage in self._stages:
            if not isinstance(stage, SignalStage):
                raise TypeError(f"stages must hold SignalStage objects, got {stage!r}")
        names = [stage.name for stage in self._stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stages must have distinct names, got {names!r}")
        self._triggers = [(stage, PatternSet(stage.trigger)) for stage in self._stages]
        self._exit_on = PatternSet(early_exit_signals)
        self.signals = sink
        self._coordinator: EphemeralWorkCoordinator[tuple[SignalStage, SignalEvent[Any]]] = EphemeralWorkCoordinator(
            self._run,
            EphemeralOptions(
                max_concurrency=max_concurrent_stages,
                max_tracked_operations=max_waiting_runs,
                signals=sink,
                drain_on_signals=None,
            ),
        )
        self._loop: LoopBinding | None = None
        self._subscription: Subscription | None = None
        self._exit_signal: SignalEvent[Any] | None = None
        self._outstanding = 0
        self._settled: anyio.Event | None = None
        self._dropped = 0

    # -- lifecycle ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        async with self._coordinator:
            yield

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._loop = LoopBinding()
        self._subscription = self.signals.subscribe(self._on_signal)

    async def _on_clean_exit(self) -> None:
        await self.wait_settled()

    def _on_error_exit(self) -> None:
        self._coordinator.cancel()  # at once: no waiting run may start while the block unwinds

    def _on_close(self) -> None:
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self._wake_settled()

    async def wait_settled(self) -> None:
        """Wait until no run is running or waiting (or the executor exited early)."""
        while self._outstanding and self._exit_signal is None:
            self._settled = settled = anyio.Event()
            await settled.wait()

    def _wake_settled(self) -> None:
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    # -- triggering -----------------------------------------------------------------------------

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        origin = _emitting_stage.get()  # read on the emitting task or thread, before hopping to the loop
        if self._loop is not None:
            self._loop.call(lambda: self._dispatch(event, origin))

    def _dispatch(self, event: SignalEvent[Any], origin: str | None) -> None:
        coordinator = self._coordinator
        if self._exit_signal is not None or coordinator.is_completed or event.operation_id == coordinator.id:
            return
        if self._exit_on.matches(event.signal):
            self._exit(event)
            return
        path = event.propagation.path if event.propagation is not None else ()
        for stage, trigger in self._triggers:
            if stage.name == origin or not trigger.matches(event.signal) or f"stage.start:{stage.name}" in path:
                continue
            if coordinator.try_enqueue((stage, event)):
                self._outstanding += 1
            else:
                self._dropped += 1

    def _exit(self, event: SignalEvent[Any]) -> None:
        self._exit_signal = event
        self._stop_listening()
        chain = event.propagation if event.propagation is not None else SignalPropagation.root(event.signal)
        name = f"stage.exit:{event.signal}"
        self.signals.emit(SignalEvent(name, next_id(), event.key, self.signals.now(), chain.extend(name)))
        self._coordinator.cancel()

    # -- running --------------------------------------------------------------------------------

    async def _run(self, job: tuple[SignalStage, SignalEvent[Any]]) -> None:
        stage, trigger = job
        sink = self.signals
        operation_id = current_operation().id
        chain = trigger.propagation if trigger.propagation is not None else SignalPropagation.root(trigger.signal)
        started = f"stage.start:{stage.name}"
        chain = chain.extend(started)  # everything the run emits was caused by the run's start

        def emit(name: str) -> None:
            path = chain if name == started else chain.extend(name)
            sink.emit(SignalEvent(name, operation_id, trigger.key, sink.now(), path))

        token = _emitting_stage.set(stage.name)
        try:
            emit(started)
            for name in stage.emit_on_start:
                emit(name)
            await stage.work(trigger)
        except anyio.get_cancelled_exc_class():
            emit(f"stage.cancel:{stage.name}")
            raise
        except Exception as error:
            for name in stage.emit_on_failure:
                emit(name)
            emit(f"stage.fail:{stage.name}:{type(error).__name__}")
            raise  # recorded on the operation, counted as failed
        else:
            for name in stage.emit_on_complete:
                emit(name)
            emit(f"stage.complete:{stage.name}")
        finally:
            _emitting_stage.reset(token)
            self._outstanding -= 1
            if not self._outstanding:
                self._wake_settled()

    # -- state ----------------------------------------------------------------------------------

    @property
    def stages(self) -> tuple[SignalStage, ...]:
        """The stages."""
        return self._stages

    @property
    def exited(self) -> bool:
        """Whether an early-exit signal stopped the executor."""
        return self._exit_signal is not None

    @property
    def exit_signal(self) -> str | None:
        """The name of the early-exit signal that stopped the executor, if any."""
        return None if self._exit_signal is None else self._exit_signal.signal

    @property
    def dropped_count(self) -> int:
        """Triggers dropped because ``max_waiting_runs`` runs were already waiting."""
        return self._dropped

    def get_metrics(self) -> CoordinatorMetrics:
        """The inner coordinator's counters: runs completed, failed, cancelled, ..."""
        return self._coordinator.get_metrics()
