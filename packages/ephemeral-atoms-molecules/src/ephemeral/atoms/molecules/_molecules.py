"""Molecules: ordered steps run when a signal arrives, and triggers that run an action per signal."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NamedTuple, TypeVar

from anyio.abc import TaskGroup

from ephemeral.core import (
    CoordinatorClosedError,
    GlobPattern,
    SignalConstraints,
    SignalDispatcher,
    SignalEvent,
    SignalSink,
    Subscription,
)
from ephemeral.core.lowlevel import (
    EventHook,
    TaskGroupOwner,
    caused_event,
    check_callable,
    check_optional_int,
    compile_pattern,
    next_id,
)

__all__ = (
    "AtomTrigger",
    "MoleculeBlueprint",
    "MoleculeBlueprintBuilder",
    "MoleculeContext",
    "MoleculeFailure",
    "MoleculeRunner",
    "MoleculeStep",
    "TriggerAction",
    "TriggerCondition",
)

_log = logging.getLogger("ephemeral.atoms.molecules")
_Trigger = TypeVar("_Trigger", bound="AtomTrigger")

#: One step of a molecule: ``async def step(ctx)`` (a plain ``def step(ctx)`` works too).
MoleculeStep = Callable[["MoleculeContext"], "Awaitable[object] | None"]
#: A blueprint's extra test on the trigger signal, on top of its glob.
TriggerCondition = Callable[[SignalEvent[Any]], bool]
#: What an ``AtomTrigger`` runs for each matching signal: ``async def action(signal)``.
TriggerAction = Callable[[SignalEvent[Any]], "Awaitable[object] | None"]


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not value.strip():
        raise ValueError(f"{name} must not be blank, got {value!r}")
    return value


async def _call(function: Callable[[Any], Awaitable[object] | None], argument: object) -> None:
    """Call a step or an action, awaiting what it returns when that is awaitable."""
    result = function(argument)
    if inspect.isawaitable(result):
        await result


# -- blueprints ------------------------------------------------------------------------------------


class MoleculeBlueprint:
    """A named molecule: the glob its trigger signal must match and the steps run, in order, for each one.

    Steps can be added and removed after ``build()``; each run takes the steps as they are when it
    starts, so a change never affects a run already going.

    Args:
        name: The molecule's name (in hooks, logs and the payload of ``molecule.*`` signals).
        trigger_pattern: One glob on signal names (``"order.*"``); commas are not alternatives here.
        steps: The steps, each ``async def step(ctx)``; at least one.
        condition: An optional predicate on the trigger signal; the molecule runs only when it holds.

    Raises:
        TypeError: ``name`` or ``trigger_pattern`` is not a str, or a step or the condition is not callable.
        ValueError: ``name`` or ``trigger_pattern`` is blank, or ``steps`` is empty.
    """

    __slots__ = ("_condition", "_glob", "_lock", "_name", "_steps")

    def __init__(
        self,
        name: str,
        trigger_pattern: str,
        steps: Iterable[MoleculeStep],
        condition: TriggerCondition | None = None,
    ) -> None:
        self._name = _text("name", name)
        self._glob: GlobPattern = compile_pattern(_text("trigger_pattern", trigger_pattern))
        collected = tuple(steps)
        for step in collected:
            check_callable(step, "step")
        if not collected:
            raise ValueError("steps must hold at least one step")
        if condition is not None:
            check_callable(condition, "condition")
        self._steps: tuple[MoleculeStep, ...] = collected
        self._condition = condition
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The molecule's name."""
        return self._name

    @property
    def trigger_pattern(self) -> str:
        """The glob a signal must match to start the molecule."""
        return self._glob.pattern

    @property
    def condition(self) -> TriggerCondition | None:
        """The extra predicate on the trigger signal, if any."""
        return self._condition

    @property
    def steps(self) -> tuple[MoleculeStep, ...]:
        """The steps, in the order a run takes them."""
        return self._steps

    def add_atom(self, step: MoleculeStep) -> MoleculeBlueprint:
        """Append ``step``; runs starting from now on include it. Returns the blueprint."""
        check_callable(step, "step")
        with self._lock:
            self._steps = (*self._steps, step)
        return self

    def remove_atoms(self, predicate: Callable[[MoleculeStep], bool]) -> int:
        """Remove every step for which ``predicate(step)`` is true; return how many were removed."""
        check_callable(predicate, "predicate")
        with self._lock:
            kept = tuple(step for step in self._steps if not predicate(step))
            removed = len(self._steps) - len(kept)
            self._steps = kept
        return removed

    def matches(self, signal: SignalEvent[Any]) -> bool:
        """Whether ``signal`` starts this molecule: its name matches the glob and the condition holds."""
        return self._glob.matches(signal.signal) and (self._condition is None or bool(self._condition(signal)))

    def __repr__(self) -> str:
        return f"MoleculeBlueprint({self._name!r}, {self.trigger_pattern!r}, steps={len(self._steps)})"


class MoleculeBlueprintBuilder:
    """Builds a ``MoleculeBlueprint``: ``MoleculeBlueprintBuilder("order", "order.placed").add_atom(pay).build()``.

    Args:
        name: The molecule's name.
        trigger_pattern: One glob on signal names.

    Raises:
        TypeError: An argument is not a str.
        ValueError: An argument is blank.
    """

    __slots__ = ("_conditions", "_name", "_pattern", "_steps")

    def __init__(self, name: str, trigger_pattern: str) -> None:
        self._name = _text("name", name)
        self._pattern = _text("trigger_pattern", trigger_pattern)
        self._steps: list[MoleculeStep] = []
        self._conditions: list[TriggerCondition] = []

    def add_atom(self, step: MoleculeStep) -> MoleculeBlueprintBuilder:
        """Append ``step`` (``async def step(ctx)``); returns the builder."""
        check_callable(step, "step")
        self._steps.append(step)
        return self

    def remove_atoms(self, predicate: Callable[[MoleculeStep], bool]) -> int:
        """Remove every step for which ``predicate(step)`` is true; return how many were removed."""
        check_callable(predicate, "predicate")
        kept = [step for step in self._steps if not predicate(step)]
        removed = len(self._steps) - len(kept)
        self._steps = kept
        return removed

    def with_condition(self, condition: TriggerCondition) -> MoleculeBlueprintBuilder:
        """Also require ``condition(signal)`` of the trigger signal (conditions add up); returns the builder."""
        check_callable(condition, "condition")
        self._conditions.append(condition)
        return self

    def build(self) -> MoleculeBlueprint:
        """Return a blueprint with a copy of the steps so far.

        Raises:
            ValueError: No step was added.
        """
        if not self._steps:
            raise ValueError("steps: at least one atom step is required (call add_atom)")
        return MoleculeBlueprint(self._name, self._pattern, list(self._steps), _all_of(tuple(self._conditions)))


def _all_of(conditions: tuple[TriggerCondition, ...]) -> TriggerCondition | None:
    """One predicate requiring every condition (None when there is none)."""
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]

    def condition(signal: SignalEvent[Any]) -> bool:
        return all(test(signal) for test in conditions)

    return condition


# -- runs ------------------------------------------------------------------------------------------


class MoleculeContext:
    """What every step of one molecule run sees: the trigger signal, a shared ``state`` dict, the services.

    Attributes:
        blueprint: The molecule being run.
        trigger_signal: The signal that started this run.
        signals: The runner's sink.
        services: The runner's ``services`` (None when it was given none).
        state: A dict shared by the steps of this run only.
    """

    __slots__ = ("_constraints", "blueprint", "services", "signals", "state", "trigger_signal")

    def __init__(
        self,
        blueprint: MoleculeBlueprint,
        trigger_signal: SignalEvent[Any],
        signals: SignalSink,
        services: Any = None,
        constraints: SignalConstraints | None = None,
    ) -> None:
        self.blueprint = blueprint
        self.trigger_signal = trigger_signal
        self.signals = signals
        self.services = services
        self.state: dict[str, Any] = {}
        self._constraints = constraints

    def emit(self, signal: str, key: str | None = None) -> bool:
        """Emit ``signal`` on the sink, caused by the trigger signal (its propagation chain records that).

        Subject to the runner's ``signal_constraints``: by default a step cannot emit a signal already
        in its causal chain (re-emitting its own trigger would start the molecule again, forever), nor
        extend a chain beyond 10 signals.

        Returns:
            True when emitted; False when the constraints blocked it (their ``on_blocked`` is told why).
        """
        _text("signal", signal)
        return _emit_caused(self.signals, self._constraints, signal, self.trigger_signal, key, None)

    def __repr__(self) -> str:
        return f"MoleculeContext({self.blueprint.name!r}, trigger={self.trigger_signal.signal!r})"


def _emit_caused(
    sink: SignalSink,
    constraints: SignalConstraints | None,
    signal: str,
    cause: SignalEvent[Any],
    key: str | None,
    payload: object,
) -> bool:
    event = caused_event(
        signal, cause, operation_id=next_id(), key=key, timestamp=sink.now(), constraints=constraints, payload=payload
    )
    if event is None:
        return False
    sink.emit(event)
    return True


class MoleculeFailure(NamedTuple):
    """What ``molecule_failed`` handlers receive: ``blueprint, context, error, step_index = failure``."""

    blueprint: MoleculeBlueprint
    context: MoleculeContext
    error: Exception
    step_index: int


class MoleculeRunner(TaskGroupOwner):
    """Runs each blueprint's steps, in order, for every signal on the sink that matches its trigger pattern.

    Use it as ``async with MoleculeRunner(sink, [blueprint]) as runner:``; it owns the tasks molecules
    run in. Each blueprint listens through its own ``SignalDispatcher``: runs of one blueprint for
    different signals go concurrently, at most ``max_concurrency`` at once, with at most ``max_queued``
    signals waiting (beyond that the oldest waiting one is dropped and counted in ``dropped_count``).
    Blueprints do not wait for one another.

    A run fires ``molecule_started`` (with its ``MoleculeContext``), then runs the steps one after the
    other; then it fires ``molecule_completed``, or, at the first step that raises, stops and fires
    ``molecule_failed`` with a ``MoleculeFailure``. The exception never reaches the emitter and other
    runs carry on. The runner also emits ``molecule.started``, ``molecule.completed`` and
    ``molecule.failed`` on the sink (``molecule.cancelled`` for a run cut short by shutdown), with the
    trigger's key, the blueprint's name as payload and the trigger in their propagation chain.

    ``AtomTrigger(sink, pattern, action, runner=runner)`` attaches a trigger to the runner: its
    actions run in the runner's tasks and the runner's drain waits for them too.

    Leaving the block waits until no molecule or attached trigger action is running or waiting,
    including those started by signals that other molecules emitted, then stops; an exception in the
    block cancels the runs in flight instead (counted in ``cancelled_count``).

    Args:
        sink: The sink whose signals start molecules and on which their signals are emitted.
        blueprints: The molecules, at least one.
        services: Anything steps need (a service locator, a dict of clients, ...), as ``ctx.services``.
        max_concurrency: The most runs of one blueprint at once (and of attached trigger actions);
            default: the number of CPUs.
        max_queued: The most signals waiting per blueprint.
        signal_constraints: Limits on the causal chains of ``ctx.emit`` and of the ``molecule.*``
            signals; the default blocks cycles and chains beyond 10 signals, so a molecule cannot keep
            re-triggering itself. None lifts every limit.

    Raises:
        TypeError: ``sink`` is not a ``SignalSink``, a blueprint is not a ``MoleculeBlueprint``, or an
            option has the wrong type.
        ValueError: ``blueprints`` is empty, or ``max_concurrency`` or ``max_queued`` is below 1.

    Example:
        >>> async with MoleculeRunner(sink, [blueprint]) as runner:
        ...     sink.emit("order.placed", key="order-42")
        ...     await runner.wait_idle()
    """

    def __init__(
        self,
        sink: SignalSink,
        blueprints: Iterable[MoleculeBlueprint],
        services: Any = None,
        *,
        max_concurrency: int | None = None,
        max_queued: int = 1000,
        signal_constraints: SignalConstraints | None = SignalConstraints.DEFAULT,
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if isinstance(blueprints, (MoleculeBlueprint, str, bytes)) or not isinstance(blueprints, Iterable):
            raise TypeError(f"blueprints must be an iterable of MoleculeBlueprint, got {blueprints!r}")
        collected = tuple(blueprints)
        for blueprint in collected:
            if not isinstance(blueprint, MoleculeBlueprint):
                raise TypeError(f"blueprints must hold MoleculeBlueprint objects, got {blueprint!r}")
        if not collected:
            raise ValueError("blueprints must hold at least one MoleculeBlueprint")
        if signal_constraints is not None and not isinstance(signal_constraints, SignalConstraints):
            raise TypeError(f"signal_constraints must be SignalConstraints or None, got {signal_constraints!r}")
        self._max_concurrency = check_optional_int(max_concurrency, "max_concurrency")
        queued = check_optional_int(max_queued, "max_queued")
        if queued is None:
            raise TypeError("max_queued must be an int, got None")
        self._max_queued = queued
        self._sink = sink
        self._blueprints = collected
        self._services = services
        self._constraints = signal_constraints
        self.molecule_started: EventHook[MoleculeContext] = EventHook("molecule_started")
        self.molecule_completed: EventHook[MoleculeContext] = EventHook("molecule_completed")
        self.molecule_failed: EventHook[MoleculeFailure] = EventHook("molecule_failed")
        self._dispatchers: list[SignalDispatcher] = []
        self._triggers: SignalDispatcher | None = None
        self._entered = False
        self._closed = False
        self._started = 0
        self._completed = 0
        self._failed = 0
        self._cancelled = 0
        self._active = 0

    # -- lifecycle --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        self._entered = True
        try:
            async with AsyncExitStack() as stack:
                for blueprint in self._blueprints:
                    dispatcher = await stack.enter_async_context(
                        SignalDispatcher(max_concurrency=self._max_concurrency, max_queued=self._max_queued)
                    )
                    dispatcher.register(blueprint.trigger_pattern, self._runner_for(blueprint))
                    self._dispatchers.append(dispatcher)
                self._triggers = await stack.enter_async_context(
                    SignalDispatcher(max_concurrency=self._max_concurrency, max_queued=self._max_queued)
                )
                yield
        finally:
            self._closed = True

    async def _on_enter(self, tg: TaskGroup) -> None:
        # Attached last, once everything is in place, in blueprint order.
        for dispatcher in self._all_dispatchers():
            dispatcher.attach(self._sink)

    async def _on_clean_exit(self) -> None:
        await self.wait_idle()

    def _on_close(self) -> None:
        self._close_dispatchers()

    def _close_dispatchers(self) -> None:
        self._closed = True
        for dispatcher in self._all_dispatchers():
            dispatcher.close()

    def _all_dispatchers(self) -> list[SignalDispatcher]:
        return [*self._dispatchers, *((self._triggers,) if self._triggers is not None else ())]

    async def wait_idle(self) -> None:
        """Wait until no molecule or attached trigger action is running or waiting; the runner keeps running.

        Signals that molecules emit while it waits are waited for too, however long the cascade.
        """
        dispatchers = self._all_dispatchers()
        while True:
            before = sum(d.processed_count + d.dropped_count for d in dispatchers)
            for dispatcher in dispatchers:
                await dispatcher.flush()
            after = sum(d.processed_count + d.dropped_count for d in dispatchers)
            if after == before and not any(d.queued_count for d in dispatchers):
                return

    @property
    def is_running(self) -> bool:
        """Whether the runner has been entered and not yet left."""
        return self._entered and not self._closed

    def _trigger_dispatcher(self) -> SignalDispatcher:
        """The dispatcher attached triggers register with (the runner must be running)."""
        if self._closed:
            raise CoordinatorClosedError("the MoleculeRunner is closed")
        if not self.is_running or self._triggers is None:
            raise RuntimeError("the MoleculeRunner is not running (use it in `async with` first)")
        return self._triggers

    # -- runs ---------------------------------------------------------------------------------------

    def _runner_for(self, blueprint: MoleculeBlueprint) -> Callable[[SignalEvent[Any]], Awaitable[None]]:
        async def run(signal: SignalEvent[Any]) -> None:
            await self._run(blueprint, signal)

        return run

    def _lifecycle(self, name: str, blueprint: MoleculeBlueprint, trigger: SignalEvent[Any]) -> None:
        _emit_caused(self._sink, self._constraints, name, trigger, trigger.key, blueprint.name)

    async def _run(self, blueprint: MoleculeBlueprint, trigger: SignalEvent[Any]) -> None:
        condition = blueprint.condition
        if condition is not None:
            try:
                if not condition(trigger):
                    return
            except Exception:
                _log.exception("molecule %r: the condition raised for %s; not started", blueprint.name, trigger)
                return
        context = MoleculeContext(blueprint, trigger, self._sink, self._services, self._constraints)
        steps = blueprint.steps
        self._started += 1
        self._active += 1
        index = 0
        try:
            self.molecule_started.fire(context)
            self._lifecycle("molecule.started", blueprint, trigger)
            for step in steps:
                await _call(step, context)
                index += 1
        except Exception as error:
            self._failed += 1
            _log.warning("molecule %r failed at step %d for %s", blueprint.name, index, trigger.signal, exc_info=error)
            self.molecule_failed.fire(MoleculeFailure(blueprint, context, error, index))
            self._lifecycle("molecule.failed", blueprint, trigger)
        except BaseException:
            self._cancelled += 1
            self._lifecycle("molecule.cancelled", blueprint, trigger)
            raise
        else:
            self._completed += 1
            self.molecule_completed.fire(context)
            self._lifecycle("molecule.completed", blueprint, trigger)
        finally:
            self._active -= 1

    # -- views --------------------------------------------------------------------------------------

    @property
    def signals(self) -> SignalSink:
        """The runner's sink."""
        return self._sink

    @property
    def blueprints(self) -> tuple[MoleculeBlueprint, ...]:
        """The blueprints, in registration order."""
        return self._blueprints

    @property
    def services(self) -> Any:
        """What steps see as ``ctx.services``."""
        return self._services

    @property
    def started_count(self) -> int:
        """Runs started so far."""
        return self._started

    @property
    def completed_count(self) -> int:
        """Runs whose every step finished."""
        return self._completed

    @property
    def failed_count(self) -> int:
        """Runs stopped by a step that raised."""
        return self._failed

    @property
    def cancelled_count(self) -> int:
        """Runs cut short by the runner's shutdown."""
        return self._cancelled

    @property
    def active_count(self) -> int:
        """Runs in progress (``started == completed + failed + cancelled + active``)."""
        return self._active

    @property
    def dropped_count(self) -> int:
        """Trigger signals never run: pushed out of a full backlog, or arriving while the runner was closed."""
        return sum(dispatcher.dropped_count for dispatcher in self._dispatchers)


# -- triggers --------------------------------------------------------------------------------------


class AtomTrigger(TaskGroupOwner):
    """Runs ``await action(signal)`` for every signal on ``sink`` whose name matches ``pattern``.

    Two ways to run it:

    - On its own, as an async context manager: ``async with AtomTrigger(sink, "order.*", action):``.
      It owns a ``SignalDispatcher``: at most ``max_concurrency`` actions at once, at most
      ``max_queued`` signals waiting. Leaving the block waits for the actions already triggered.
    - Attached to a running ``MoleculeRunner`` with ``runner=``: active from construction until
      ``close()`` (or the end of a ``with`` block, as the .NET ``using var``). Its actions run in the
      runner's tasks, and the runner's drain waits for them as well as for the molecules they start.

    An action that raises is logged and counted in ``failed_count``; later signals still run it.
    Actions start in signal order; with more than one at once they may finish in any order.

    Args:
        sink: The sink to listen to.
        pattern: One glob on signal names (commas are not alternatives here).
        action: ``async def action(signal)`` (a plain function works too).
        runner: A running ``MoleculeRunner`` on the same sink to attach to.
        max_concurrency: Own dispatcher only: the most actions at once (default: the number of CPUs).
        max_queued: Own dispatcher only: the most signals waiting (default 1000).

    Raises:
        TypeError: ``sink`` is not a ``SignalSink``, ``pattern`` not a str, ``action`` not callable,
            ``runner`` not a ``MoleculeRunner``.
        ValueError: ``pattern`` is blank, ``runner`` listens to another sink, or ``max_concurrency``/
            ``max_queued`` is given with ``runner`` or is below 1.
        RuntimeError: ``runner`` is not running.
    """

    def __init__(
        self,
        sink: SignalSink,
        pattern: str,
        action: TriggerAction,
        *,
        runner: MoleculeRunner | None = None,
        max_concurrency: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        self._glob = compile_pattern(_text("pattern", pattern))
        check_callable(action, "action")
        concurrency = check_optional_int(max_concurrency, "max_concurrency")
        queued = check_optional_int(max_queued, "max_queued")
        self._sink = sink
        self._action = action
        self._runner = runner
        self._dispatcher: SignalDispatcher | None = None
        self._registration: Subscription | None = None
        self._entered = False
        self._closed = False
        self._completed = 0
        self._failed = 0
        if runner is None:
            self._dispatcher = SignalDispatcher(max_concurrency=concurrency, max_queued=queued or 1000)
            self._dispatcher.register(self._glob.pattern, self._fire)
            return
        if not isinstance(runner, MoleculeRunner):
            raise TypeError(f"runner must be a MoleculeRunner or None, got {runner!r}")
        if concurrency is not None or queued is not None:
            raise ValueError("max_concurrency and max_queued apply only without runner= (the runner's are used)")
        if runner.signals is not sink:
            raise ValueError("sink must be the runner's sink when runner= is given")
        self._registration = runner._trigger_dispatcher().register(self._glob.pattern, self._fire)

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self: _Trigger) -> _Trigger:
        if self._runner is None:
            raise RuntimeError("an AtomTrigger without runner= runs in `async with` (it owns its tasks)")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        self._entered = True
        dispatcher = self._dispatcher
        if dispatcher is None:
            yield
            return
        if self._closed:
            raise CoordinatorClosedError("the AtomTrigger is closed")
        try:
            async with dispatcher:
                dispatcher.attach(self._sink)
                yield
        finally:
            self._closed = True

    def _on_close(self) -> None:
        if self._dispatcher is None:
            self.close()  # on its own dispatcher, leaving that dispatcher's block stops it once it has flushed

    def close(self) -> None:
        """Stop listening; idempotent.

        Attached to a runner, actions already triggered still finish (the runner waits for them). On
        its own dispatcher, signals still waiting are dropped; use the ``async with`` exit to wait.
        """
        self._closed = True
        if self._registration is not None:
            self._registration.close()
        if self._dispatcher is not None and self._entered:
            self._dispatcher.close()

    @property
    def closed(self) -> bool:
        """Whether the trigger has stopped listening."""
        return self._closed

    # -- actions ------------------------------------------------------------------------------------

    async def _fire(self, signal: SignalEvent[Any]) -> None:
        try:
            await _call(self._action, signal)
        except Exception:
            self._failed += 1
            _log.exception("trigger %r: the action failed for %s", self._glob.pattern, signal.signal)
        else:
            self._completed += 1

    async def wait_idle(self) -> None:
        """Wait until every action triggered so far has finished (on the runner, until it is idle)."""
        if self._dispatcher is not None:
            await self._dispatcher.flush()
        elif self._runner is not None:
            await self._runner.wait_idle()

    @property
    def pattern(self) -> str:
        """The glob signals must match."""
        return self._glob.pattern

    @property
    def completed_count(self) -> int:
        """Actions that finished without raising."""
        return self._completed

    @property
    def failed_count(self) -> int:
        """Actions that raised."""
        return self._failed

    @property
    def dropped_count(self) -> int:
        """Own dispatcher only: signals never acted on (full backlog, or arriving while not running)."""
        return 0 if self._dispatcher is None else self._dispatcher.dropped_count

    def __repr__(self) -> str:
        mode = "runner" if self._runner is not None else "own tasks"
        return f"AtomTrigger({self._glob.pattern!r}, {mode}, closed={self._closed})"
