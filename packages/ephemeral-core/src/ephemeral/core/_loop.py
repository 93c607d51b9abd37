"""Reaching the event loop from callbacks that may run on other threads."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any, TypeVar

import anyio.from_thread
import anyio.lowlevel

try:  # anyio finds the running library through sniffio when it is installed
    import sniffio as _sniffio

    sniffio: ModuleType | None = _sniffio
except ImportError:  # pragma: no cover (anyio >= 4.12 does not need it)
    sniffio = None

__all__ = ("LoopBinding",)

T = TypeVar("T")

_log = logging.getLogger("ephemeral.core")


class LoopBinding:
    """Captures the running loop so that sync callbacks from any thread can act in it.

    Create it inside the loop. ``call(fn)`` runs ``fn`` at once when already on the loop's thread, and
    otherwise hands it to the loop without waiting (``loop.call_soon_threadsafe`` on asyncio,
    ``TrioToken.run_sync_soon`` on trio): a thread emitting a signal never waits for the loop, so a loop
    thread that waits synchronously for that thread cannot deadlock with it. Calls from one thread run
    in the order they were made; one that raises is logged. ``call_and_wait(fn)`` waits for the result.
    """

    __slots__ = ("_post", "_thread", "_token")

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        native: Any = self._token.native_token  # trio's TrioToken, or the asyncio loop
        self._post: Callable[[Callable[[], object]], object] = (
            native.run_sync_soon if hasattr(native, "run_sync_soon") else partial(_post_asyncio, native)
        )

    @property
    def on_loop_thread(self) -> bool:
        """Whether the caller runs on the loop's thread."""
        return threading.get_ident() == self._thread

    def call(self, fn: Callable[[], object]) -> bool:
        """Run ``fn`` on the loop: now when on its thread, else soon, without waiting for it.

        Returns:
            False when the loop has finished (``fn`` is dropped), else True.
        """
        if threading.get_ident() == self._thread:
            fn()
            return True
        try:
            self._post(partial(_run_logged, fn))
        except RuntimeError:  # asyncio: the loop is closed; trio: RunFinishedError (a RuntimeError)
            return False
        return True

    def call_and_wait(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the loop and return its result, waiting for it when called from another thread.

        Raises:
            anyio.RunFinishedError: The loop has finished (from another thread only).
        """
        if threading.get_ident() == self._thread:
            return fn()
        return anyio.from_thread.run_sync(fn, token=self._token)


def _run_logged(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        _log.exception("callback %r handed to the event loop failed", fn)


def _post_asyncio(loop: Any, fn: Callable[[], object]) -> None:
    """``call_soon_threadsafe`` with the async library named, so anyio calls work inside ``fn``."""
    context = contextvars.copy_context()
    if sniffio is not None:
        context.run(sniffio.current_async_library_cvar.set, "asyncio")
    loop.call_soon_threadsafe(context.run, fn)
