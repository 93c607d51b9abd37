"""A demo of ephemeral's bounded operation window: memory stays flat however much work flows through.

``await LongWindowDemo.run(total_items=100_000, window_size=10_000)`` pushes the items through a coordinator
whose window keeps the last ``window_size`` operations and reports how many it still tracks.
``LongWindowDemo.audit_options()`` are the options of a long audit window (10,000 operations, 24 hours).
Run ``python -m ephemeral.patterns.longwindowdemo`` to watch it.
"""

from __future__ import annotations

from ._longwindowdemo import LongWindowDemo as LongWindowDemo, LongWindowResult as LongWindowResult

__all__ = ("LongWindowDemo", "LongWindowResult")
