"""Reaching the event loop from callbacks that may run on other threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio.from_thread
import anyio.lowlevel
from anyio import RunFinishedError

__all__ = ("LoopBinding",)


class LoopBinding:
    """Captures the running loop so that sync callbacks from any thread can act in it.

    Create it inside the loop. ``call(fn)`` runs ``fn`` at once when already on the loop's thread,
    and otherwise hands it to the loop and waits for it to run there.
    """

    __slots__ = ("_thread", "_token")

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()

    @property
    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the loop's thread."""
        return threading.get_ident() == self._thread

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop; a loop that has finished ignores it."""
        if threading.get_ident() == self._thread:
            fn()
            return
        try:
            anyio.from_thread.run_sync(fn, token=self._token)
        except RunFinishedError:
            pass
