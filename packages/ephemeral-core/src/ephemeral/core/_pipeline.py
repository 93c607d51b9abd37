"""Work in order: a dependency graph of named operations, and a pipeline of stages over the same items."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, Generic, TypeVar

import anyio

from ._checks import check_async_callable, check_optional_int
from ._clock import to_seconds
from ._coordinator import EphemeralWorkCoordinator
from ._events import SignalEvent
from ._foreach import ephemeral_for_each
from ._matcher import PatternSet
from ._options import EphemeralOptions
from ._orchestration import SignalConsensus
from ._sink import SignalSink

__all__ = (
    "DependencyCoordinator",
    "DependencyExecutionError",
    "DependencyResult",
    "PipelineResult",
    "PipelineStage",
    "StageResult",
    "StageTriggerTimeoutError",
    "StagedPipeline",
    "StagedPipelineBuilder",
)

T = TypeVar("T")


def _options(max_concurrency: int | None, tracked: int, sink: SignalSink) -> EphemeralOptions:
    """Options for an inner coordinator: a drain request on a shared sink must not cut its work short."""
    if max_concurrency is None:
        return EphemeralOptions(max_tracked_operations=tracked, signals=sink, drain_on_signals=None)
    return EphemeralOptions(
        max_concurrency=max_concurrency, max_tracked_operations=tracked, signals=sink, drain_on_signals=None
    )


# -------------------------------------------------------------------------------------- dependencies


@dataclass(frozen=True)
class DependencyResult:
    """What ``DependencyCoordinator.execute`` did.

    Attributes:
        completed: Operations that succeeded, in completion order.
        failed: The exception of each operation that raised, in failure order.
        skipped: Operations not run because an operation they depend on (directly or not) failed.
        results: What each completed operation's action returned.
    """

    completed: tuple[str, ...]
    failed: Mapping[str, Exception]
    skipped: tuple[str, ...]
    results: Mapping[str, Any]

    @property
    def succeeded(self) -> bool:
        """Whether every operation completed."""
        return not self.failed and not self.skipped


class DependencyExecutionError(Exception):
    """Raised by ``DependencyCoordinator.execute`` once every operation has finished or been skipped, if any failed.

    Attributes:
        result: The full outcome, including what completed.
        failures: The exception of each failed operation.
    """

    def __init__(self, result: DependencyResult) -> None:
        self.result = result
        self.failures = result.failed
        failed = ", ".join(f"{name} ({type(error).__name__}: {error})" for name, error in result.failed.items())
        message = f"{len(result.failed)} operation(s) failed: {failed}"
        if result.skipped:
            message += f"; skipped as dependents: {', '.join(result.skipped)}"
        super().__init__(message)

    @property
    def exceptions(self) -> tuple[Exception, ...]:
        """The failures' exceptions, in failure order."""
        return tuple(self.failures.values())


class _DependencyRun:
    """One execution of the graph: enqueues each operation once, when its last dependency succeeded."""

    def __init__(
        self,
        actions: Mapping[str, Callable[[], Awaitable[Any]]],
        dependencies: Mapping[str, tuple[str, ...]],
        sink: SignalSink,
    ) -> None:
        self.actions = actions
        self.sink = sink
        self.waiting_on = {name: len(deps) for name, deps in dependencies.items()}
        self.dependents: dict[str, list[str]] = {name: [] for name in dependencies}
        for name, deps in dependencies.items():
            for dependency in deps:
                self.dependents[dependency].append(name)
        self.completed: list[str] = []
        self.failed: dict[str, Exception] = {}
        self.skipped: dict[str, None] = {}
        self.results: dict[str, Any] = {}
        self.settled = anyio.Event()
        self.coordinator: EphemeralWorkCoordinator[str] | None = None

    def roots(self) -> list[str]:
        return [name for name, count in self.waiting_on.items() if count == 0]

    def _check_settled(self) -> None:
        if len(self.completed) + len(self.failed) + len(self.skipped) == len(self.actions):
            self.settled.set()

    async def run(self, name: str) -> None:
        sink = self.sink
        sink.emit(f"operation.start:{name}", key=name)
        try:
            self.results[name] = await self.actions[name]()
        except Exception as error:
            self.failed[name] = error
            sink.emit(f"operation.failed:{name}", key=name)
            self._skip_dependents_of(name)
            self._check_settled()
            raise  # recorded on the operation, counted as failed by the coordinator
        self.completed.append(name)
        sink.emit(f"operation.done:{name}", key=name)
        assert self.coordinator is not None
        for dependent in self.dependents[name]:
            self.waiting_on[dependent] -= 1
            if self.waiting_on[dependent] == 0 and dependent not in self.skipped:
                self.coordinator.try_enqueue(dependent)  # never full: the window holds every operation
        self._check_settled()

    def _skip_dependents_of(self, name: str) -> None:
        stack = list(self.dependents[name])
        while stack:
            dependent = stack.pop()
            if dependent in self.skipped:
                continue
            self.skipped[dependent] = None
            self.sink.emit(f"operation.skipped:{dependent}", key=dependent)
            stack.extend(self.dependents[dependent])

    def result(self) -> DependencyResult:
        return DependencyResult(tuple(self.completed), dict(self.failed), tuple(self.skipped), dict(self.results))


class DependencyCoordinator:
    """Runs named async operations once each, every one as soon as all its dependencies succeeded.

    Up to ``max_concurrency`` operations run at once, in an ``EphemeralWorkCoordinator``. An
    operation that depends on several others (a diamond) runs once. When one fails, everything that
    depends on it, directly or not, is skipped (``operation.skipped:{name}``) and the rest carries on;
    ``execute`` then raises ``DependencyExecutionError`` holding every failure.

    Signals on ``sink`` (key: the operation's name): ``operation.start:{name}``,
    ``operation.done:{name}``, ``operation.failed:{name}``, ``operation.skipped:{name}``.

    Operations are added as actions (``add(name, action, depends_on)``, ``await action()``), or, in
    the original's form, as items for one shared body: ``DependencyCoordinator(body, max_concurrency,
    sink)`` then ``add_operation(name, item, *depends_on)`` runs ``await body(item)``.

    Args:
        body: ``async def body(item)`` run by the operations added with ``add_operation``.
        max_concurrency: The most operations running at once (None: the number of CPUs).
        sink: Where the signals go; a private sink when None.

    Example:
        >>> deps = DependencyCoordinator(max_concurrency=4)
        >>> deps.add("fetch", fetch).add("parse", parse, depends_on="fetch")
        >>> result = await deps.execute()
        >>> # the original's form
        >>> deps = DependencyCoordinator(build, 4, sink)
        >>> deps.add_operation("compile", "src").add_operation("link", "obj", "compile")
        >>> await deps.execute()
    """

    def __init__(
        self,
        body: Callable[[Any], Awaitable[Any]] | None = None,
        max_concurrency: int | None = None,
        sink: SignalSink | None = None,
    ) -> None:
        check_async_callable(body, "body", optional=True)
        self._body = body
        self._max_concurrency = check_optional_int(max_concurrency, "max_concurrency")
        if sink is not None and not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink or None, got {sink!r}")
        self.signals = sink if sink is not None else SignalSink()
        self._actions: dict[str, Callable[[], Awaitable[Any]]] = {}
        self._dependencies: dict[str, tuple[str, ...]] = {}

    def add(
        self, name: str, action: Callable[[], Awaitable[Any]], depends_on: Iterable[str] | str = ()
    ) -> DependencyCoordinator:
        """Add operation ``name``, run as ``await action()`` after every operation in ``depends_on``.

        Dependencies may be added later, before ``execute``. Returns the coordinator, for chaining.

        Raises:
            ValueError: A blank or duplicate ``name``, or ``name`` in its own ``depends_on``.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if name in self._actions:
            raise ValueError(f"name {name!r} is already an operation")
        check_async_callable(action, "action")
        deps = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        for dependency in deps:
            if not isinstance(dependency, str) or not dependency:
                raise ValueError(f"depends_on must hold operation names, got {dependency!r}")
        if name in deps:
            raise ValueError(f"depends_on: operation {name!r} cannot depend on itself")
        self._actions[name] = action
        self._dependencies[name] = tuple(dict.fromkeys(deps))
        return self

    def add_operation(self, name: str, item: Any, *depends_on: str) -> DependencyCoordinator:
        """Add operation ``name``, run as ``await body(item)`` after every operation in ``depends_on``.

        The original's form of ``add``; returns the coordinator, for chaining.

        Raises:
            TypeError: The coordinator was made without a ``body``.
            ValueError: A blank or duplicate ``name``, or ``name`` in its own ``depends_on``.
        """
        body = self._body
        if body is None:
            raise TypeError(
                "add_operation needs the body given as DependencyCoordinator(body, ...); "
                "without one, use add(name, action, depends_on)"
            )
        return self.add(name, partial(body, item), depends_on)

    @property
    def names(self) -> tuple[str, ...]:
        """The operations, in the order they were added."""
        return tuple(self._actions)

    def validate(self) -> None:
        """Check the graph (``execute`` does it first).

        Raises:
            ValueError: An operation depends on an unknown one, or the dependencies form a cycle; the
                message names them.
        """
        for name, deps in self._dependencies.items():
            for dependency in deps:
                if dependency not in self._actions:
                    raise ValueError(f"operation {name!r} depends on unknown operation {dependency!r}")
        cycle = self._find_cycle()
        if cycle:
            raise ValueError(f"circular dependency: {' -> '.join(cycle)}")

    def _find_cycle(self) -> list[str]:
        """A dependency cycle as a path that returns to its start, or [] (iterative depth-first search)."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for start in self._dependencies:
            if start in state:
                continue
            path = [start]
            iterators = [iter(self._dependencies[start])]
            state[start] = 1
            while iterators:
                dependency = next(iterators[-1], None)
                if dependency is None:
                    state[path.pop()] = 2
                    iterators.pop()
                elif state.get(dependency) == 1:
                    return [*path[path.index(dependency) :], dependency]
                elif dependency not in state:
                    state[dependency] = 1
                    path.append(dependency)
                    iterators.append(iter(self._dependencies[dependency]))
        return []

    async def execute(self, *, raise_on_failure: bool = True) -> DependencyResult:
        """Run every operation once, each as soon as its dependencies succeeded; return what happened.

        Raises:
            ValueError: An unknown dependency or a cycle (nothing has run).
            DependencyExecutionError: Some operation failed (after every other one finished or was
                skipped); not raised when ``raise_on_failure`` is False.
        """
        self.validate()
        run = _DependencyRun(self._actions, self._dependencies, self.signals)
        if self._actions:
            options = _options(self._max_concurrency, len(self._actions), self.signals)
            async with EphemeralWorkCoordinator(run.run, options) as coordinator:
                run.coordinator = coordinator
                for name in run.roots():
                    await coordinator.enqueue(name)
                await run.settled.wait()
        result = run.result()
        if result.failed and raise_on_failure:
            raise DependencyExecutionError(result) from next(iter(result.failed.values()))
        return result


# ------------------------------------------------------------------------------------ staged pipeline


class StageTriggerTimeoutError(TimeoutError):
    """A pipeline stage's trigger signal did not arrive in time."""

    def __init__(self, stage: str, when_any: tuple[str, ...], timeout: float) -> None:
        self.stage = stage
        self.when_any = when_any
        self.timeout = timeout
        super().__init__(f"stage {stage!r}: no signal matching {list(when_any)!r} within {timeout:g}s")


@dataclass(frozen=True)
class PipelineStage(Generic[T]):
    """One stage of a ``StagedPipeline``: ``work`` runs over every item once its trigger (if any) was seen."""

    order: int
    name: str
    work: Callable[[T], Awaitable[Any]]
    when_any: tuple[str, ...] = ()
    trigger_timeout: float = 60.0


@dataclass(frozen=True)
class StageResult:
    """How one stage went: its items' outcomes."""

    name: str
    order: int
    completed: int
    failed: int


@dataclass(frozen=True)
class PipelineResult:
    """The stages that ran, in order."""

    stages: tuple[StageResult, ...]

    @property
    def total_failed(self) -> int:
        """Items that failed, over every stage."""
        return sum(stage.failed for stage in self.stages)


class StagedPipeline(Generic[T]):
    """Stages run one after the other over the same items; made by ``StagedPipelineBuilder.build()``.

    A stage with ``when_any`` first waits for a matching signal: one live in the sink's window, or one
    emitted (on the sink, or by an operation of an earlier stage) since ``run`` started. One that does
    not come within the stage's ``trigger_timeout`` fails the run with ``StageTriggerTimeoutError``
    (after emitting ``stage.timeout:{name}``). Each stage emits ``stage.start:{name}`` and
    ``stage.complete:{name}`` (key: the stage's name) and runs its items with ``ephemeral_for_each``.
    """

    def __init__(self, stages: tuple[PipelineStage[T], ...], sink: SignalSink, max_concurrency: int | None) -> None:
        self.stages = stages
        self.signals = sink
        self._max_concurrency = max_concurrency

    async def run(self, items: Iterable[T]) -> PipelineResult:
        """Run every stage over ``items`` (read once, then reused by each stage).

        A body that raises is counted in its stage's ``failed``; the pipeline carries on.

        Raises:
            StageTriggerTimeoutError: A stage's trigger did not come in time; later stages did not run.
        """
        values = list(items)
        sink = self.signals
        triggers = [PatternSet(stage.when_any) for stage in self.stages]
        seen = [False] * len(self.stages)

        def on_signal(event: SignalEvent[Any]) -> None:
            for index, trigger in enumerate(triggers):
                if trigger and not seen[index] and trigger.matches(event.signal):
                    seen[index] = True  # a flag per stage: safe from any thread, nothing else is kept

        results: list[StageResult] = []
        with sink.subscribe(on_signal):
            for index, stage in enumerate(self.stages):
                if stage.when_any and not seen[index]:
                    outcome = await SignalConsensus.wait_for_quorum(sink, stage.when_any, 1, stage.trigger_timeout)
                    if not outcome.reached and not seen[index]:
                        sink.emit(f"stage.timeout:{stage.name}", key=stage.name)
                        raise StageTriggerTimeoutError(stage.name, stage.when_any, stage.trigger_timeout)
                sink.emit(f"stage.start:{stage.name}", key=stage.name)
                options = _options(self._max_concurrency, 200, sink)
                metrics = await ephemeral_for_each(values, stage.work, options)
                sink.emit(f"stage.complete:{stage.name}", key=stage.name)
                results.append(StageResult(stage.name, stage.order, metrics.total_completed, metrics.total_failed))
        return PipelineResult(tuple(results))


class StagedPipelineBuilder(Generic[T]):
    """Builds a ``StagedPipeline``: stages ordered by ``order``, each optionally waiting for a signal.

    Args:
        sink: Where stage signals go and triggers are looked for; a private sink when None.
        max_concurrency: The most items a stage runs at once (default: the number of CPUs).
        trigger_timeout: How long a triggered stage waits for its signal by default.

    Example:
        >>> pipeline = (
        ...     StagedPipelineBuilder[str](sink)
        ...     .add_stage(0, fetch, name="fetch")
        ...     .add_stage(1, index, name="index", when_any="fetch.ready")
        ...     .build()
        ... )
        >>> await pipeline.run(urls)
    """

    def __init__(
        self,
        sink: SignalSink | None = None,
        *,
        max_concurrency: int | None = None,
        trigger_timeout: float | timedelta = 60.0,
    ) -> None:
        if sink is not None and not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink or None, got {sink!r}")
        self._sink = sink
        self._max_concurrency = check_optional_int(max_concurrency, "max_concurrency")
        self._trigger_timeout = to_seconds(trigger_timeout, "trigger_timeout")
        self._stages: list[PipelineStage[T]] = []

    def add_stage(
        self,
        order: int,
        work: Callable[[T], Awaitable[Any]],
        *,
        name: str | None = None,
        when_any: Iterable[str] | str | None = None,
        trigger_timeout: float | timedelta | None = None,
    ) -> StagedPipelineBuilder[T]:
        """Add a stage running ``await work(item)`` for every item; returns the builder, for chaining.

        Args:
            order: Where the stage runs; lower first, ties in the order added.
            work: The stage's body.
            name: The stage's name in signals (default ``stage-{order}``).
            when_any: Globs; the stage waits for a matching signal before it starts.
            trigger_timeout: Overrides the builder's ``trigger_timeout`` for this stage.

        Raises:
            ValueError: A duplicate or blank name.
        """
        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"order must be an int, got {order!r}")
        check_async_callable(work, "work")
        stage_name = f"stage-{order}" if name is None else name
        if not isinstance(stage_name, str) or not stage_name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if any(stage.name == stage_name for stage in self._stages):
            raise ValueError(f"name {stage_name!r} is already a stage")
        timeout = self._trigger_timeout if trigger_timeout is None else to_seconds(trigger_timeout, "trigger_timeout")
        try:
            patterns = PatternSet(when_any).patterns
        except TypeError as error:
            raise TypeError(f"when_any: {error}") from None
        self._stages.append(PipelineStage(order, stage_name, work, patterns, timeout))
        return self

    async def execute(self, items: Iterable[T]) -> PipelineResult:
        """Build the pipeline and run it over ``items`` (the original's form of ``build().run(items)``).

        Raises:
            ValueError: No stage was added.
            StageTriggerTimeoutError: A stage's trigger did not come in time.
        """
        return await self.build().run(items)

    def build(self) -> StagedPipeline[T]:
        """The pipeline, with its stages sorted by order.

        Raises:
            ValueError: No stage was added.
        """
        if not self._stages:
            raise ValueError("add at least one stage before build()")
        stages = tuple(sorted(self._stages, key=lambda stage: stage.order))
        return StagedPipeline(stages, self._sink if self._sink is not None else SignalSink(), self._max_concurrency)
