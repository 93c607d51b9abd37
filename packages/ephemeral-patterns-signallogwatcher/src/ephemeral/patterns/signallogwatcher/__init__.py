"""Call back on every signal matching a glob, as it is emitted.

``SignalLogWatcher(sink, on_match=callback, pattern="error.*")`` is an async context manager: inside its
block, ``on_match(event)`` (sync or async) runs once for each matching signal, in emission order.
"""

from __future__ import annotations

from ._signallogwatcher import SignalLogWatcher as SignalLogWatcher

__all__ = ("SignalLogWatcher",)
