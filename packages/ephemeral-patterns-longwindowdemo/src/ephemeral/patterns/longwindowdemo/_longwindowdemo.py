"""Pushing many items through a coordinator with a large window, and showing what it keeps."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import NamedTuple

import anyio

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator
from ephemeral.core.lowlevel import check_int

__all__ = ("LongWindowDemo", "LongWindowResult")


class LongWindowResult(NamedTuple):
    """What a run of ``LongWindowDemo`` saw.

    Attributes:
        window_size: The coordinator's ``max_tracked_operations``.
        total_items: How many items went through.
        tracked_count: How many operations the coordinator still tracked once they were all done
            (never more than ``window_size``).
        completed_count: How many items completed.
        peak_tracked_count: The most operations tracked at any point of the run, sampled every 1,024
            items and at the end (at most ``window_size``, plus those running or waiting).
    """

    window_size: int
    total_items: int
    tracked_count: int
    completed_count: int
    peak_tracked_count: int


class LongWindowDemo:
    """Shows that a coordinator's memory is bounded by its window, not by how much work it ran."""

    #: The audit-trail window of the example: 10,000 operations kept for up to 24 hours.
    AUDIT_MAX_TRACKED_OPERATIONS = 10_000
    AUDIT_MAX_OPERATION_LIFETIME = timedelta(hours=24)

    @classmethod
    def audit_options(cls, **overrides: object) -> EphemeralOptions:
        """Options for a long audit window: the last 10,000 operations, each visible for 24 hours.

        Args:
            overrides: Any other ``EphemeralOptions`` field (``max_concurrency=8``, ``signals=sink``).
        """
        settings: dict[str, object] = {
            "max_tracked_operations": cls.AUDIT_MAX_TRACKED_OPERATIONS,
            "max_operation_lifetime": cls.AUDIT_MAX_OPERATION_LIFETIME,
        }
        settings.update(overrides)
        return EphemeralOptions(**settings)  # type: ignore[arg-type]

    @staticmethod
    async def run(total_items: int, window_size: int, work_delay_ms: int = 0) -> LongWindowResult:
        """Run ``total_items`` items through a coordinator whose window holds ``window_size`` operations.

        The coordinator runs ``min(cpu count, 8)`` bodies at once, each sleeping ``work_delay_ms``
        milliseconds (on the event loop's clock), with operations kept for 24 hours: only the window's
        size bounds what is kept.

        Raises:
            TypeError: An argument is not an int.
            ValueError: ``total_items`` or ``window_size`` is below 1, or ``work_delay_ms`` is negative.
        """
        check_int(total_items, "total_items")
        check_int(window_size, "window_size")
        check_int(work_delay_ms, "work_delay_ms", 0)
        delay = work_delay_ms / 1000

        async def work(item: int) -> None:
            if delay:
                await anyio.sleep(delay)

        options = LongWindowDemo.audit_options(
            max_tracked_operations=window_size, max_concurrency=min(os.cpu_count() or 1, 8)
        )
        peak = 0
        async with EphemeralWorkCoordinator(work, options) as coordinator:
            for item in range(total_items):
                await coordinator.enqueue(item)
                if item % 1024 == 0:
                    peak = max(peak, len(coordinator.get_snapshot()))
            await coordinator.drain()
            tracked = len(coordinator.get_snapshot())
            completed = coordinator.total_completed
        return LongWindowResult(window_size, total_items, tracked, completed, max(peak, tracked))
