"""A result coordinator that stops everything as soon as an exit signal says the answer is known."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from anyio.abc import TaskGroup

from ._coordinator import CoordinatorClosedError
from ._events import SignalEvent
from ._matcher import PatternSet
from ._options import EphemeralOptions
from ._result import EphemeralResultCoordinator

__all__ = ("EarlyExitOptions", "EarlyExitResult", "EarlyExitResultCoordinator")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class EarlyExitOptions(Generic[R]):
    """The original's options for ``EarlyExitResultCoordinator``: the exit signals and an aggregate.

    Args:
        early_exit_signals: Globs (comma-separated alternatives allowed) whose first match stops the
            coordinator.
        on_early_exit: ``on_early_exit(signal, partial_results) -> R``, called once on the exit with the
            exit signal's name and the results so far; its value is ``EarlyExitResult.aggregated``.

    Raises:
        ValueError: ``early_exit_signals`` holds no pattern.
        TypeError: ``on_early_exit`` is not callable.
    """

    early_exit_signals: Iterable[str] | str
    on_early_exit: Callable[[str, list[R]], R] | None = None
    _patterns: PatternSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_patterns", _exit_patterns(self.early_exit_signals, "early_exit_signals"))
        if self.on_early_exit is not None and not callable(self.on_early_exit):
            raise TypeError(
                f"on_early_exit must be callable(signal, partial_results) or None, got {self.on_early_exit!r}"
            )


def _exit_patterns(signals: object, name: str) -> PatternSet:
    try:
        patterns = PatternSet(signals)  # type: ignore[arg-type]
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    if not patterns:
        raise ValueError(f"{name} must hold at least one glob pattern, got {signals!r}")
    return patterns


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
        aggregated: What ``EarlyExitOptions.on_early_exit`` returned on the exit (None without an exit
            or without the callback).
    """

    exited: bool
    exit_signal: str | None
    exit_key: str | None
    results: tuple[R, ...]
    completed_count: int
    failed_count: int
    cancelled_count: int
    aggregated: R | None = None

    @property
    def partial_results(self) -> tuple[R, ...]:
        """``results`` under the original's name."""
        return self.results


class EarlyExitResultCoordinator(EphemeralResultCoordinator[T, R], Generic[T, R]):
    """A result coordinator that stops at the first exit signal: the answer is known, the rest is waste.

    An exit signal is one matching ``exit_signals`` emitted after the coordinator was entered, on its
    sink (``options.signals``, shared or its own) or by one of its operations. On the first one it
    stops at once: running bodies are cancelled, waiting items are dropped (both counted in
    ``total_cancelled``), later ``enqueue`` calls return -1, and ``coordinator.early_exit:{signal}``
    (key: the exit signal's key) is emitted. ``await drain()`` (or ``finish()``) waits and returns the
    outcome; ``get_result()`` reports it at any time.

    Args:
        body: ``async def body(item) -> R``.
        exit_signals: Globs (comma-separated alternatives allowed) that stop the coordinator; or the
            original's ``EarlyExitOptions(early_exit_signals=..., on_early_exit=...)``.
        options: As for ``EphemeralResultCoordinator``.

    Raises:
        ValueError: ``exit_signals`` holds no pattern.
    """

    def __init__(
        self,
        body: Callable[[T], Awaitable[R]],
        exit_signals: Iterable[str] | str | EarlyExitOptions[R],
        options: EphemeralOptions | None = None,
    ) -> None:
        if isinstance(exit_signals, EarlyExitOptions):
            self._exit_on = exit_signals._patterns
            self._on_exit = exit_signals.on_early_exit
        else:
            self._exit_on = _exit_patterns(exit_signals, "exit_signals")
            self._on_exit = None
        super().__init__(body, options)
        self._exit_event: SignalEvent[Any] | None = None
        self._aggregated: R | None = None
        self._aggregate_error: Exception | None = None

    async def _on_enter(self, tg: TaskGroup) -> None:
        await super()._on_enter(tg)
        self._subscriptions.append(self._sink.subscribe(self._watch_exit))  # closed on shutdown

    def _watch_exit(self, event: SignalEvent[Any]) -> None:
        if self._exit_event is None and self._loop is not None and self._exit_on.matches(event.signal):
            self._loop.call(lambda: self._exit(event))

    def _exit(self, event: SignalEvent[Any]) -> None:
        if self._exit_event is not None or self.is_cancelled or self.is_drained:
            return
        self._exit_event = event
        if self._on_exit is not None:
            try:
                self._aggregated = self._on_exit(event.signal, self.get_results())
            except Exception as error:  # raised from drain()/finish(), not into the emitter
                self._aggregate_error = error
        sink = self._sink
        sink.emit(sink.make_event(f"coordinator.early_exit:{event.signal}", event.key, operation_id=self.id))
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
            self._aggregated,
        )

    async def drain(self) -> EarlyExitResult[R]:  # type: ignore[override]  # the original's drain returns it
        """Stop accepting items, wait until every accepted item finished or was cancelled, and report.

        Raises:
            Exception: What ``EarlyExitOptions.on_early_exit`` raised (once; when no drain was awaited,
                leaving ``async with`` raises it).
        """
        await super().drain()
        error, self._aggregate_error = self._aggregate_error, None
        if error is not None:  # raised once: by this drain, or else on leaving ``async with``
            raise error
        return self.get_result()

    finish = drain
