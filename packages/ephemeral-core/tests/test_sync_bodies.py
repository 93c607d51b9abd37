"""A plain ``def`` where an async function is awaited is refused at construction, naming the argument."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ephemeral.core import (
    EphemeralKeyedWorkCoordinator,
    EphemeralResultCoordinator,
    EphemeralWorkCoordinator,
    PriorityWorkCoordinator,
)


def plain(item: Any) -> None:
    """A sync body: awaiting its result would fail every item."""


@pytest.mark.parametrize(
    "build",
    [
        lambda: EphemeralWorkCoordinator(plain),  # type: ignore[arg-type]
        lambda: EphemeralKeyedWorkCoordinator(lambda item: "k", plain),  # type: ignore[arg-type]
        lambda: EphemeralResultCoordinator(plain),  # type: ignore[arg-type]
        lambda: PriorityWorkCoordinator(plain),  # type: ignore[arg-type]
    ],
    ids=["work", "keyed", "result", "priority"],
)
def test_every_coordinator_refuses_a_sync_body(build: Callable[[], object]) -> None:
    with pytest.raises(TypeError, match=r"body must be an async function \(async def\), got <function plain"):
        build()
