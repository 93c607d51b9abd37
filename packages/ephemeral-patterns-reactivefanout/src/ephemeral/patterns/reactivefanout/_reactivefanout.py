"""ReactiveFanOutPipeline: two work coordinators, the first one's limit driven by the second one's backlog."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, NamedTuple, TypeVar

import anyio

from ephemeral.core import CoordinatorMetrics, EphemeralOptions, EphemeralWorkCoordinator, SignalSink
from ephemeral.core.lowlevel import TaskGroupOwner, check_async_callable, check_int

__all__ = ("ReactiveFanOutMetrics", "ReactiveFanOutPipeline")

T = TypeVar("T")


class ReactiveFanOutMetrics(NamedTuple):
    """The counters of both stages: ``stage1, stage2 = pipeline.get_metrics()``.

    An item accepted by ``enqueue`` is counted by stage 1 (failed in ``pre_stage_work``, cancelled, or
    completed once stage 2 accepted it) and then, once, by stage 2. Once the pipeline is closed:
    ``stage1.total_completed == stage2.total_enqueued`` and every item is accounted for by
    ``stage1.total_failed + stage1.total_cancelled + stage2.total_completed + stage2.total_failed +
    stage2.total_cancelled == stage1.total_enqueued``.
    """

    stage1: CoordinatorMetrics
    stage2: CoordinatorMetrics


class ReactiveFanOutPipeline(TaskGroupOwner, Generic[T]):
    """Two stages of work: stage 1 slows down while stage 2 has a backlog, and speeds up once it clears.

    Stage 1 runs ``pre_stage_work(item)`` (if given), up to ``stage1_max_concurrency`` at once, then
    hands the item to stage 2, which runs ``stage2_work(item)`` up to ``stage2_max_concurrency`` at
    once. Whenever stage 2's backlog (items accepted and not started) changes, the pipeline looks at it:
    at ``backpressure_threshold`` or more, stage 1 drops to ``stage1_min_concurrency`` and
    ``stage2.backpressure`` is emitted on the sink (key: the backlog); once the backlog is below
    ``relief_threshold`` and ``adjust_cooldown_ms`` have passed since the last change, stage 1 returns
    to ``stage1_max_concurrency`` and ``stage2.relieved`` is emitted. Running bodies are never
    interrupted by a change. A failing ``stage2_work`` emits ``stage2.failed``.

    Memory is bounded by the thresholds, whatever is offered: stage 2 holds at most
    ``2 * backpressure_threshold`` waiting items (a stage-1 body hands over only when there is room),
    and stage 1 at most ``max_pending`` (default ``2 * backpressure_threshold``), beyond which
    ``enqueue`` waits. No item is lost or run twice: leaving the block finishes stage 1 first, then
    stage 2; an exception cancels both, and every item is counted (see ``ReactiveFanOutMetrics``).

    Args:
        stage2_work: ``async def stage2_work(item)``, the slow part.
        pre_stage_work: ``async def pre_stage_work(item)``, run in stage 1 before the hand-over.
        stage1_max_concurrency: Stage 1's limit without backpressure.
        stage1_min_concurrency: Stage 1's limit under backpressure.
        stage2_max_concurrency: Stage 2's limit.
        backpressure_threshold: Stage 2's backlog at which stage 1 throttles.
        relief_threshold: Stage 2's backlog below which stage 1 recovers.
        adjust_cooldown_ms: The least time between a throttle and the recovery after it.
        sink: Where ``stage2.backpressure``, ``stage2.relieved`` and ``stage2.failed`` go, shared by both
            stages (None: a private sink, ``pipeline.signals``).
        max_pending: How many items may wait in stage 1 before ``enqueue`` waits.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A limit is below 1, ``stage1_min_concurrency`` exceeds ``stage1_max_concurrency``,
            ``relief_threshold`` is below 1 or above ``backpressure_threshold``, or ``adjust_cooldown_ms``
            is negative.
    """

    def __init__(
        self,
        *,
        stage2_work: Callable[[T], Awaitable[object]],
        pre_stage_work: Callable[[T], Awaitable[object]] | None = None,
        stage1_max_concurrency: int = 8,
        stage1_min_concurrency: int = 1,
        stage2_max_concurrency: int = 4,
        backpressure_threshold: int = 32,
        relief_threshold: int = 8,
        adjust_cooldown_ms: int = 200,
        sink: SignalSink | None = None,
        max_pending: int | None = None,
    ) -> None:
        check_async_callable(stage2_work, "stage2_work")
        check_async_callable(pre_stage_work, "pre_stage_work", optional=True)
        if sink is not None and not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink or None, got {sink!r}")
        check_int(stage1_max_concurrency, "stage1_max_concurrency")
        check_int(stage1_min_concurrency, "stage1_min_concurrency")
        check_int(stage2_max_concurrency, "stage2_max_concurrency")
        check_int(backpressure_threshold, "backpressure_threshold")
        check_int(relief_threshold, "relief_threshold")
        check_int(adjust_cooldown_ms, "adjust_cooldown_ms", 0)
        if stage1_min_concurrency > stage1_max_concurrency:
            raise ValueError(
                f"stage1_min_concurrency ({stage1_min_concurrency}) must not exceed "
                f"stage1_max_concurrency ({stage1_max_concurrency})"
            )
        if relief_threshold > backpressure_threshold:
            raise ValueError(
                f"relief_threshold ({relief_threshold}) must not exceed "
                f"backpressure_threshold ({backpressure_threshold})"
            )
        if max_pending is None:
            max_pending = 2 * backpressure_threshold
        check_int(max_pending, "max_pending")
        self._work = stage2_work
        self._pre = pre_stage_work
        self.stage1_max_concurrency = stage1_max_concurrency
        self.stage1_min_concurrency = stage1_min_concurrency
        self.backpressure_threshold = backpressure_threshold
        self.relief_threshold = relief_threshold
        self._cooldown = adjust_cooldown_ms / 1000
        self._sink = sink if sink is not None else SignalSink()
        self._throttled = False
        self._changed_at = -float("inf")
        self._stage2: EphemeralWorkCoordinator[T] = EphemeralWorkCoordinator(
            self._run_stage2,
            EphemeralOptions(
                max_concurrency=stage2_max_concurrency,
                max_tracked_operations=2 * backpressure_threshold,
                signals=self._sink,
            ),
        )
        self._stage1: EphemeralWorkCoordinator[T] = EphemeralWorkCoordinator(
            self._run_stage1,
            EphemeralOptions(
                max_concurrency=stage1_max_concurrency,
                enable_dynamic_concurrency=True,
                max_tracked_operations=max_pending,
                signals=self._sink,
            ),
        )

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        async with self._stage2, self._stage1:  # stage 1 is left first: it drains into stage 2
            yield

    def _on_error_exit(self) -> None:
        self.cancel()  # at once: no waiting item may start while the block unwinds

    async def _run_stage1(self, item: T) -> None:
        if self._pre is not None:
            await self._pre(item)
        await self._stage2.enqueue(item)
        self._adjust()

    async def _run_stage2(self, item: T) -> None:
        self._adjust()  # the backlog just shrank by one
        try:
            await self._work(item)
        except Exception:
            self._sink.emit("stage2.failed")
            raise

    def _adjust(self) -> None:
        backlog = self._stage2.pending_count
        if backlog >= self.backpressure_threshold:
            if not self._throttled:
                self._throttled = True
                self._changed_at = anyio.current_time()
                self._stage1.set_max_concurrency(self.stage1_min_concurrency)
                self._sink.emit("stage2.backpressure", key=str(backlog))
        elif self._throttled and backlog < self.relief_threshold:
            now = anyio.current_time()
            if now - self._changed_at >= self._cooldown:
                self._throttled = False
                self._changed_at = now
                self._stage1.set_max_concurrency(self.stage1_max_concurrency)
                self._sink.emit("stage2.relieved", key=str(backlog))

    async def enqueue(self, item: T) -> int:
        """Accept ``item`` into stage 1, waiting while ``max_pending`` items wait there.

        Returns:
            The id of its stage-1 operation.

        Raises:
            CoordinatorClosedError: The pipeline was drained or cancelled; the item was not accepted.
        """
        return await self._stage1.enqueue(item)

    async def drain(self) -> None:
        """Stop accepting items and wait until stage 1 has handed every item over and stage 2 has run them."""
        await self._stage1.drain()
        await self._stage2.drain()

    def cancel(self) -> None:
        """Refuse new items and cancel what waits or runs in both stages (counted as cancelled)."""
        self._stage1.cancel()
        self._stage2.cancel()

    @property
    def is_throttled(self) -> bool:
        """Whether stage 1 runs at its minimum because of stage 2's backlog."""
        return self._throttled

    @property
    def stage1_current_max_concurrency(self) -> int:
        """Stage 1's limit now."""
        return self._stage1.current_max_concurrency

    @property
    def stage1_pending(self) -> int:
        """Items waiting in stage 1."""
        return self._stage1.pending_count

    @property
    def stage2_pending(self) -> int:
        """Stage 2's backlog: items handed over and not started."""
        return self._stage2.pending_count

    @property
    def signals(self) -> SignalSink:
        """The sink both stages use."""
        return self._sink

    def get_metrics(self) -> ReactiveFanOutMetrics:
        """The counters of both stages."""
        return ReactiveFanOutMetrics(self._stage1.get_metrics(), self._stage2.get_metrics())
