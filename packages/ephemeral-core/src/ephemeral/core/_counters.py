"""The counters of a coordinator (or an atom): one small class, snapshotted by ``get_metrics()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ._workers import Dispatcher

__all__ = ("REFUSED", "CoordinatorMetrics", "CounterViews", "OutcomeCounters", "Refused")


class Refused(int):
    """What ``enqueue`` returns for an item a policy refused: -1, and falsy.

    A policy is a full priority lane, a live cancel signal at an atom, an early exit. It equals -1, as
    the original's ``SignalAwareAtom`` returns, and it is falsy, so both ``if await c.enqueue(x):`` and
    ``== -1`` read right. An accepted item gets its operation id (> 0).
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "REFUSED"


#: What ``enqueue`` returns for an item a policy refused (see ``Refused``).
REFUSED = Refused(-1)


class OutcomeCounters:
    """How many items were accepted and how each one ended; every accepted item ends exactly once.

    ``completed + failed + skipped + cancelled + in flight == enqueued`` at all times.
    """

    __slots__ = ("cancelled", "completed", "enqueued", "failed", "skipped")

    def __init__(self) -> None:
        self.enqueued = 0
        self.completed = 0
        self.failed = 0
        self.skipped = 0
        self.cancelled = 0

    def metrics(self, pending: int, active: int, completed: bool, paused: bool, drained: bool) -> CoordinatorMetrics:
        """These counts with the coordinator's state, as one ``CoordinatorMetrics``."""
        return CoordinatorMetrics(
            pending,
            active,
            self.enqueued,
            self.completed,
            self.failed,
            self.skipped,
            self.cancelled,
            completed,
            paused,
            drained,
        )

    @property
    def finished(self) -> int:
        """Items that ended, however."""
        return self.completed + self.failed + self.skipped + self.cancelled

    def __repr__(self) -> str:
        return (
            f"OutcomeCounters(enqueued={self.enqueued}, completed={self.completed}, failed={self.failed}, "
            f"skipped={self.skipped}, cancelled={self.cancelled})"
        )


class CoordinatorMetrics(NamedTuple):
    """Counters of a coordinator at one moment.

    Once a coordinator is drained or cancelled,
    ``total_completed + total_failed + total_skipped + total_cancelled == total_enqueued``.
    """

    pending_count: int
    active_count: int
    total_enqueued: int
    total_completed: int
    total_failed: int
    total_skipped: int
    total_cancelled: int
    is_completed: bool
    is_paused: bool
    is_drained: bool


class CounterViews:
    """The public counters of a coordinator, read from its dispatcher (``_run``)."""

    _run: Dispatcher

    @property
    def pending_count(self) -> int:
        """Accepted items not started yet."""
        return len(self._run.queue)

    @property
    def active_count(self) -> int:
        """Bodies running now."""
        return self._run.pool.active

    @property
    def total_enqueued(self) -> int:
        """Items accepted."""
        return self._run.counts.enqueued

    @property
    def total_completed(self) -> int:
        """Bodies that returned."""
        return self._run.counts.completed

    @property
    def total_failed(self) -> int:
        """Bodies that raised."""
        return self._run.counts.failed

    @property
    def total_skipped(self) -> int:
        """Items dropped because a ``cancel_on_signals`` signal was live when they reached the front."""
        return self._run.counts.skipped

    @property
    def total_cancelled(self) -> int:
        """Items cancelled by ``cancel()`` or an error closing the coordinator, waiting or running."""
        return self._run.counts.cancelled

    @property
    def is_completed(self) -> bool:
        """Whether intake has stopped."""
        return self._run.completed

    @property
    def is_paused(self) -> bool:
        """Whether the coordinator is paused."""
        return self._run.paused

    @property
    def is_cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._run.cancelled

    @property
    def is_drained(self) -> bool:
        """Whether intake has stopped and every accepted item has finished."""
        return self._run.is_drained

    def get_metrics(self) -> CoordinatorMetrics:
        """All counters at once."""
        run = self._run
        return run.counts.metrics(len(run.queue), run.pool.active, run.completed, run.paused, run.is_drained)
