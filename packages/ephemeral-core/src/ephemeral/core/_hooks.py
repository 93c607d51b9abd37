"""Synchronous event hooks whose handlers are isolated from one another."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ("EventHook", "Subscription", "call_isolated")

_log = logging.getLogger("ephemeral.core")
_reentry = threading.local()
T = TypeVar("T")

#: Nested calls (a handler emitting, whose handler emits, ...) beyond this are dropped and logged.
MAX_REENTRY = 64


def call_isolated(callback: Callable[..., object] | None, *args: object) -> None:
    """Call a user callback, if any; an exception it raises is logged, never propagated."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        _log.exception("callback %r failed", callback)


class Subscription:
    """Handle returned by ``connect``/``subscribe``: call it, ``close()`` it or leave its ``with`` block."""

    __slots__ = ("_remove",)

    def __init__(self, remove: Callable[[], None]) -> None:
        self._remove: Callable[[], None] | None = remove

    def close(self) -> None:
        """Disconnect; later calls do nothing."""
        remove, self._remove = self._remove, None
        if remove is not None:
            remove()

    __call__ = close

    @property
    def closed(self) -> bool:
        """Whether the handler has been disconnected."""
        return self._remove is None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventHook(Generic[T]):
    """A list of handlers called in order with each event; safe to connect and fire from any thread.

    A handler that raises is logged and counted in ``errors``; the others still run, and whoever
    fired the event never sees the exception.
    """

    __slots__ = ("_lock", "errors", "handlers", "label")

    def __init__(self, label: str) -> None:
        self.handlers: tuple[Callable[[T], object], ...] = ()
        self._lock = threading.Lock()
        self.errors = 0
        self.label = label

    def connect(self, handler: Callable[[T], object]) -> Subscription:
        """Call ``handler(event)`` for every event from now on; the returned handle disconnects it."""
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        with self._lock:
            self.handlers = (*self.handlers, handler)

        def remove() -> None:
            with self._lock:
                handlers = list(self.handlers)
                for index, existing in enumerate(handlers):
                    if existing is handler:
                        del handlers[index]
                        break
                self.handlers = tuple(handlers)

        return Subscription(remove)

    def __bool__(self) -> bool:
        return bool(self.handlers)

    def fire(self, event: T) -> None:
        """Call every handler with ``event``."""
        depth = getattr(_reentry, "depth", 0)
        if depth >= MAX_REENTRY:
            _log.error("%s: dropped %r after %d nested events (a handler loop?)", self.label, event, depth)
            return
        _reentry.depth = depth + 1
        try:
            for handler in self.handlers:
                try:
                    handler(event)
                except Exception:
                    self.errors += 1
                    _log.exception("%s: handler %r failed", self.label, handler)
        finally:
            _reentry.depth = depth
