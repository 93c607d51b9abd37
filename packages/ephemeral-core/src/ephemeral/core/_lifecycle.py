"""One lifecycle for every object that owns background tasks for the length of its ``async with`` block.

``TaskGroupOwner`` holds the rules once: an object is entered once; it must be entered before use (the
"enter me first" message is written here); leaving the block cleanly drains it; leaving it with an
exception or a cancellation aborts it; its resources are released exactly once, whatever happened; and
its task group is always closed inside the block's own cancel scope, so an outer cancel scope firing at
any moment leaves every scope in order (anyio's ``AsyncContextManagerMixin`` nests the steps as one
``async with`` would). Objects that only close things use ``anyio.abc.AsyncResource`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar, cast

import anyio
from anyio import AsyncContextManagerMixin
from anyio.abc import TaskGroup

__all__ = ("CoordinatorClosedError", "TaskGroupOwner", "owned_task_group")

_Self = TypeVar("_Self", bound="TaskGroupOwner")


class CoordinatorClosedError(anyio.ClosedResourceError, RuntimeError):
    """The object (a coordinator, an atom, a storage, ...) no longer accepts work.

    It was completed, cancelled or closed, or a cancellation reached it; the work offered in that call
    was not accepted.

    It is both a ``RuntimeError`` and an ``anyio.ClosedResourceError``, so code catching either keeps working.
    """


@asynccontextmanager
async def owned_task_group() -> AsyncIterator[TaskGroup]:
    """A task group whose tasks are background work: cancelled when the block ends, however it ends.

    An exception raised in the block leaves it unchanged (not wrapped in an exception group); a
    cancellation goes through the task group, which absorbs its own and passes an outer one on.
    """
    tg = anyio.create_task_group()
    await tg.__aenter__()
    try:
        yield tg
    except BaseException as error:
        tg.cancel_scope.cancel()
        if isinstance(error, anyio.get_cancelled_exc_class()):
            if await tg.__aexit__(type(error), error, error.__traceback__):
                return  # the task group absorbed a cancellation of its own scope
        else:
            await tg.__aexit__(None, None, None)  # the block's own exception carries on, unwrapped
        raise
    tg.cancel_scope.cancel()
    await tg.__aexit__(None, None, None)


class TaskGroupOwner(AsyncContextManagerMixin):
    """Base of every object that runs background tasks while its ``async with`` block runs.

    Subclasses fill in four steps; the order and the error handling live here, once:

    - ``_on_enter(tg)``: start background tasks in ``tg`` (the object is usable once it returns). If it
      raises, ``_on_close()`` runs and the exception leaves ``async with``.
    - ``_on_clean_exit()``: the block ended without an exception: finish the accepted work (background tasks
      still run).
    - ``_on_error_exit()``: the block, or ``_on_clean_exit()``, raised or was cancelled: stop at once (synchronous).
    - ``_on_close()``: always, exactly once, after the steps above and before the background tasks are
      cancelled: release subscriptions and views (synchronous).

    An object is entered once; a second ``async with`` raises ``RuntimeError``.
    """

    #: 0: never entered; 1: inside its block; 2: closed.
    _owner_state = 0
    #: The object errors name instead of this one: the one the user holds (an atom, for its coordinator).
    _shown_as: TaskGroupOwner | None = None

    @property
    def _shown_name(self) -> str:
        """The class name errors show: that of the object the user called."""
        return type(self if self._shown_as is None else self._shown_as).__name__

    # The mixin's ``__aenter__`` is final for type checkers; this one only checks first, so that a second
    # entry inside the block gets the family's message too, not the mixin's "has already been entered".
    async def __aenter__(self: _Self) -> _Self:  # type: ignore[misc]
        self._check_first_entry()
        return cast(_Self, await super().__aenter__())

    def _check_first_entry(self) -> None:
        if self._owner_state:
            name = type(self).__name__
            raise RuntimeError(f"{'an' if name[:1] in 'AEIOU' else 'a'} {name} can be entered only once")

    @asynccontextmanager
    async def __asynccontextmanager__(self: _Self) -> AsyncIterator[_Self]:
        self._check_first_entry()
        self._owner_state = 1
        async with self._outer_context(), owned_task_group() as tg:
            try:
                await self._on_enter(tg)
            except BaseException:
                self._owner_close()
                raise
            try:
                yield self
                await self._on_clean_exit()
            except BaseException:
                self._on_error_exit()
                raise
            finally:
                self._owner_close()

    def _owner_close(self) -> None:
        self._owner_state = 2
        self._on_close()

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        """What the object's own task group runs inside (for example an inner object it wraps)."""
        yield

    def _not_entered(self, noun: str = "object", alias: str = "obj") -> RuntimeError:
        """The "enter me first" error: ``enter the <noun> first: `async with <Class>(...) as <alias>:```."""
        if self._shown_as is not None:
            return self._shown_as._not_entered()
        return RuntimeError(f"enter the {noun} first: `async with {type(self).__name__}(...) as {alias}:`")

    async def _on_enter(self, tg: TaskGroup) -> None:
        """Start the background tasks in ``tg``."""

    async def _on_clean_exit(self) -> None:
        """The block ended cleanly: finish the accepted work."""

    def _on_error_exit(self) -> None:
        """The block raised or was cancelled: stop at once."""

    def _on_close(self) -> None:
        """Release what the object holds (runs once, before its background tasks are cancelled)."""
