"""The counters of a coordinator (or an atom): one small class, snapshotted by ``get_metrics()``."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ("REFUSED", "CoordinatorMetrics", "OutcomeCounters", "Refused")


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
