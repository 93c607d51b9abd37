"""An object that owns no task: usable until closed, ``async with`` optional."""

from __future__ import annotations

from typing import TypeVar

from anyio.abc import AsyncResource

from ._lifecycle import CoordinatorClosedError

__all__ = ("ClosableResource",)

_Self = TypeVar("_Self", bound="ClosableResource")


class ClosableResource(AsyncResource):
    """An ``anyio.abc.AsyncResource`` that owns no task: usable at once, until it is closed.

    ``async with`` is optional; leaving the block, or ``aclose()``, closes it: ``_on_close()`` releases
    what it holds, once (closing again is a no-op). Once closed, entering raises
    ``CoordinatorClosedError``, as does every method that calls ``_check_open()`` first, with the
    message ``_closed_message()`` gives. (An object that owns background tasks is a ``TaskGroupOwner``.)
    """

    _closed = False

    async def __aenter__(self: _Self) -> _Self:
        self._check_open()
        return self

    async def aclose(self) -> None:
        """Close: release what the object holds and refuse further use. Idempotent."""
        if not self._closed:
            self._closed = True
            self._on_close()

    @property
    def closed(self) -> bool:
        """Whether it has been closed (``aclose()``, or the ``async with`` block left)."""
        return self._closed

    def _check_open(self) -> None:
        """Raise ``CoordinatorClosedError`` once closed."""
        if self._closed:
            raise CoordinatorClosedError(self._closed_message())

    def _closed_message(self) -> str:
        return f"this {type(self).__name__} is closed"

    def _on_close(self) -> None:
        """What closing releases (nothing by default)."""
