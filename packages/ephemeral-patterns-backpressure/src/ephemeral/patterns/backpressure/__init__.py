"""Signal-driven backpressure: ``backpressure.*`` signals hold new work back, for a bounded time, dropping nothing.

``SignalDrivenBackpressure.create(body, sink, max_concurrency=4)`` runs ``body`` for each enqueued item; while
a signal matching ``backpressure.*`` is live on ``sink`` no new item starts, and once one has been live for
``max_defer`` work goes ahead anyway and ``deferral.expired`` is emitted.
"""

from __future__ import annotations

from ._backpressure import DEFERRAL_EXPIRED as DEFERRAL_EXPIRED, SignalDrivenBackpressure as SignalDrivenBackpressure

__all__ = ("DEFERRAL_EXPIRED", "SignalDrivenBackpressure")
