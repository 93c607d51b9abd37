"""Readers that hold back while an update runs and resume when it is done, without a lock.

``await SignalCoordinatedReads.run(read_count=10, update_count=1)`` runs reads on a coordinator that defers
on ``update.in-progress`` and updates that raise that signal while they work, retract it and emit
``update.done``. Run ``python -m ephemeral.patterns.signalcoordinatedreads`` to watch it.
"""

from __future__ import annotations

from ._signalcoordinatedreads import (
    CoordinatedReadsResult as CoordinatedReadsResult,
    SignalCoordinatedReads as SignalCoordinatedReads,
)

__all__ = ("CoordinatedReadsResult", "SignalCoordinatedReads")
