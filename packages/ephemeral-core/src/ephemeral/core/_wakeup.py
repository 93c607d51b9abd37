"""Sleeping until a deadline or until woken, with the one rounding rule virtual clocks need.

Every background loop in the family (the coordinator's age sweep, the responsibility timer, the
persistent window's writer, batching and the storage writers) sleeps "until the next thing is due, or
until something changes". ``Wakeup`` is that sleep, written once; ``sleep_time`` and ``time_until`` hold
the rule every sleep on the loop's clock follows:

* Sleeps end on whole microseconds of the loop's clock. Finer means nothing to a timer, and virtual
  clocks tick in microseconds: looptime 0.7 hangs forever on a timer that falls between two of its
  ticks, which ``now + delay`` in floating point easily does (``1.0 + 0.500001`` is
  ``1.5000010000000001``). ``sleep`` and ``Wakeup.wait`` round the absolute deadline, not only the delay.
* A sleep towards a deadline ends a microsecond past it, so clock arithmetic rounding can never wake a
  loop just short of its deadline, where it would find nothing due and sleep zero seconds again (under a
  virtual clock time would not move and the loop would spin).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from ._clock import loop_clock

__all__ = ("Wakeup", "sleep", "sleep_time", "time_until")

#: The resolution of every sleep, in seconds.
_RESOLUTION = 1e-6


def sleep_time(seconds: float) -> float:
    """``seconds`` as a sleep: never negative, rounded to whole microseconds."""
    return round(seconds, 6) if seconds > 0 else 0.0


def time_until(deadline: float, now: float) -> float:
    """How long to sleep, from clock reading ``now``, to wake just past clock reading ``deadline``.

    A microsecond past the deadline, in whole microseconds: a loop woken by this sleep finds its
    deadline passed on the same clock (at worst, within floating-point error, one more microsecond's
    sleep settles it: a loop never spins without time moving).
    """
    return round(max(deadline - now, 0.0) + _RESOLUTION, 6)


def _deadline_after(seconds: float) -> float:
    """The loop's absolute deadline ``seconds`` from now, on a whole microsecond (never in the past)."""
    now = anyio.current_time()
    return max(round(now + seconds, 6), now) if seconds > 0 else now


async def sleep(seconds: float) -> None:
    """``anyio.sleep`` that wakes on a whole microsecond of the loop's clock (see the module's rule)."""
    await anyio.sleep_until(_deadline_after(seconds))


class Wakeup:
    """One task sleeps (``await wakeup.wait(deadline)``) until a deadline passes or another task wakes it.

    A ``wake()`` while nobody sleeps is kept: the next ``wait`` returns at once. So a loop that checks its
    state and then waits never misses a change made between the two (a wake from another thread, relayed
    onto the loop, included). Loops re-check their state after every wait; a wait is a hint, never a
    promise that something changed.

    Deadlines are readings of ``clock`` (by default the running loop's clock, ``loop_clock()``, resolved
    at the first wait), and sleeps follow ``time_until``.

    ``wake`` must be called from the event loop's thread: another thread relays its wake through the
    loop (``LoopBinding.call``), only while ``waiting`` if it must not block, passing ``ready`` to
    ``wait``. One task waits at a time.
    """

    __slots__ = ("_clock", "_event", "_pending")

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable or None, got {clock!r}")
        self._clock = clock
        self._event: anyio.Event | None = None
        self._pending = False

    @property
    def waiting(self) -> bool:
        """Whether a task is sleeping in ``wait``."""
        return self._event is not None

    def wake(self) -> None:
        """End the current wait, or the next one when nobody is waiting."""
        event = self._event
        if event is None:
            self._pending = True
        else:
            self._event = None
            event.set()

    async def wait(self, deadline: float | None = None, *, ready: Callable[[], bool] | None = None) -> bool:
        """Sleep until woken or until the clock passes ``deadline`` (None: no deadline).

        Args:
            deadline: A reading of the clock, or None.
            ready: Checked once the task counts as ``waiting``; when true, return at once. For wakers on
                other threads that relay a wake only while someone waits: a change made just before
                the task started waiting is seen here instead of being missed.

        Returns:
            True when woken (or a wake was pending, or ``ready()``), False when the deadline passed.
        """
        if self._pending:
            self._pending = False
            return True
        self._event = event = anyio.Event()
        try:
            if ready is not None and ready():
                return True
            if deadline is None:
                await event.wait()
                return True
            clock = self._clock
            if clock is None:
                clock = self._clock = loop_clock()
            with anyio.CancelScope(deadline=_deadline_after(time_until(deadline, clock()))):
                await event.wait()
            return event.is_set()
        finally:
            if self._event is event:
                self._event = None

    def __repr__(self) -> str:
        state = "waiting" if self._event is not None else "pending" if self._pending else "idle"
        return f"<Wakeup {state}>"
