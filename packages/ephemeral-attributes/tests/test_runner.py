"""The job runner on asyncio and trio, in virtual time: the original examples, retries, timeouts, awaits, pins."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral.attributes import (
    EphemeralJobRunnerOptions,
    EphemeralSignalJobRunner,
    JobStats,
    ephemeral_job,
    ephemeral_jobs,
)
from ephemeral.core import PatternSet, SignalConstraints, SignalEvent, SignalSink
from ephemeral.core.testing import assert_lifecycle_faults


def names(sink: SignalSink, pattern: str | None = None) -> list[str]:
    return [event.signal for event in sink.sense(None if pattern is None else PatternSet(pattern))]


class LogWatcherJobs:
    """The original README's log watcher: errors escalate into incidents, incidents notify."""

    def __init__(self, sink: SignalSink) -> None:
        self._sink = sink
        self.lines: list[str] = []

    @ephemeral_job("log.error.*", priority=1, max_concurrency=2, lane="hot:4", emit_on_complete=["incident.created"])
    async def escalate(self, signal: SignalEvent[Any]) -> None:
        self.lines.append(f"escalating {signal.signal} for {signal.key}")
        self._sink.emit("incident.created", key=signal.key)

    @ephemeral_job("incident.created", emit_on_start=["incident.monitor.start"])
    async def notify(self, signal: SignalEvent[Any]) -> None:
        monitor = self._sink.sense("incident.monitor.start")
        self.lines.append(f"notified incident for {signal.key} after {len(monitor)} monitor start(s)")


async def test_original_log_watcher() -> None:
    sink = SignalSink()
    jobs = LogWatcherJobs(sink)
    async with EphemeralSignalJobRunner(sink, [jobs]) as runner:
        assert runner.lanes == ["default", "hot"]  # in order of the jobs, lowest priority first
        sink.emit("log.error.orders.dbfailure", key="DbFailure")
    assert jobs.lines == [
        "escalating log.error.orders.dbfailure for DbFailure",
        "notified incident for DbFailure after 1 monitor start(s)",
        "notified incident for DbFailure after 2 monitor start(s)",
    ]
    assert names(sink) == [
        "log.error.orders.dbfailure",
        "incident.created",  # raised by the body
        "incident.monitor.start",
        "incident.created",  # emit_on_complete
        "incident.monitor.start",
    ] or sorted(names(sink)) == sorted(
        ["log.error.orders.dbfailure", "incident.created", "incident.created"] + ["incident.monitor.start"] * 2
    )
    assert all(event.key == "DbFailure" for event in sink.sense())
    assert runner.get_stats() == JobStats(
        matched=3, started=3, completed=3, failed=0, retried=0, dropped=0, cancelled=0
    )
    assert runner.get_stats("LogWatcherJobs.escalate").completed == 1
    assert len(runner.get_snapshot("LogWatcherJobs.notify")) == 2


@ephemeral_jobs(signal_prefix="stage", default_lane="pipeline")
class StageJobs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    @ephemeral_job("ingest", emit_on_complete=["stage.ingest.done"])
    async def ingest(self, event: SignalEvent[Any]) -> None:
        self.lines.append(event.signal)

    @ephemeral_job("finalize")
    async def finalize(self, event: SignalEvent[Any]) -> None:
        self.lines.append("final stage")


async def test_original_stage_jobs() -> None:
    sink = SignalSink()
    stages = StageJobs()
    async with EphemeralSignalJobRunner(sink, [stages]) as runner:
        assert runner.lanes == ["pipeline"]
        sink.emit("stage.ingest")
        await anyio.sleep(1)
        assert names(sink) == ["stage.ingest", "stage.ingest.done"]
        sink.emit("stage.finalize")
    assert stages.lines == ["stage.ingest", "final stage"]


class Flaky:
    def __init__(self, failures: int, *, hang: float = 0.0) -> None:
        self.failures = failures
        self.hang = hang
        self.attempts: list[float] = []

    @ephemeral_job("work.*", max_retries=2, retry_delay_ms=100, emit_on_failure=["flaky.failed"], key_from_signal=True)
    async def work(self, event: SignalEvent[Any]) -> None:
        self.attempts.append(anyio.current_time())
        if self.hang:
            await anyio.sleep(self.hang)
        if len(self.attempts) <= self.failures:
            raise ValueError(f"attempt {len(self.attempts)}")


async def test_retries_back_off_on_the_loop_clock_and_signal() -> None:
    sink = SignalSink()
    flaky = Flaky(failures=2)
    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [flaky]) as runner:
        sink.emit("work.go", key="w1")
    assert [round(t - start, 3) for t in flaky.attempts] == [0.0, 0.1, 0.3]
    assert names(sink, "job.*") == ["job.retry:work:1", "job.retry:work:2"]
    assert all(event.key == "w1" for event in sink.sense("job.*"))
    stats = runner.get_stats()
    assert (stats.completed, stats.failed, stats.retried) == (1, 0, 2)


async def test_final_failure_emits_failure_signals_and_raises_into_the_coordinator() -> None:
    sink = SignalSink()
    flaky = Flaky(failures=10)
    async with EphemeralSignalJobRunner(sink, [flaky]) as runner:
        sink.emit("work.go", key="w1")
    assert names(sink, "job.*") == ["job.retry:work:1", "job.retry:work:2", "job.failed:work:ValueError"]
    assert names(sink, "flaky.failed") == ["flaky.failed"]
    assert runner.get_stats().failed == 1
    assert runner.coordinators["Flaky.work"].total_failed == 1
    (snapshot,) = runner.get_snapshot()
    assert isinstance(snapshot.error, ValueError) and snapshot.key == "w1"


class Swallowed:
    @ephemeral_job("x", max_retries=1, retry_delay_ms=50, swallow_exceptions=True, emit_on_failure="on.failure")
    async def always(self, event: SignalEvent[Any]) -> None:
        raise KeyError("never works")


async def test_swallowed_failure() -> None:
    sink = SignalSink()
    async with EphemeralSignalJobRunner(sink, [Swallowed()]) as runner:
        sink.emit("x")
    assert names(sink) == ["x", "job.retry:always:1", "on.failure", "job.failed:always:KeyError"]
    assert runner.coordinators["Swallowed.always"].total_failed == 0
    assert runner.get_stats().failed == 1


async def test_timeout_cancels_an_attempt_and_is_retried() -> None:
    sink = SignalSink()

    class Slow:
        def __init__(self) -> None:
            self.attempts: list[float] = []

        @ephemeral_job("slow", timeout_ms=500, max_retries=1, retry_delay_ms=100)
        async def slow(self, event: SignalEvent[Any]) -> None:
            self.attempts.append(anyio.current_time())
            await anyio.sleep(10)

    start = anyio.current_time()
    slow = Slow()
    async with EphemeralSignalJobRunner(sink, [slow]):
        sink.emit("slow")
    assert [round(t - start, 3) for t in slow.attempts] == [0.0, 0.6]
    assert names(sink, "job.*") == ["job.retry:slow:1", "job.failed:slow:TimeoutError"]
    assert round(anyio.current_time() - start, 3) == 1.1


class Awaiting:
    def __init__(self) -> None:
        self.ran: list[tuple[str, float]] = []

    @ephemeral_job("go.*", lane="one:1", await_signals=["prereq.*", "config.loaded"], await_timeout_ms=1000,
                   emit_on_failure="gate.failed")  # fmt: skip
    async def gated(self, event: SignalEvent[Any]) -> None:
        self.ran.append((event.signal, anyio.current_time()))

    @ephemeral_job("other", lane="one:1")
    async def other(self, event: SignalEvent[Any]) -> None:
        self.ran.append((event.signal, anyio.current_time()))
        await anyio.sleep(0.1)


async def test_await_signals_waits_by_subscription_without_a_lane_slot() -> None:
    sink = SignalSink()
    jobs = Awaiting()
    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [jobs]) as runner:
        sink.emit("go.first")
        await anyio.sleep(0.2)
        assert runner.awaiting_count == 1 and not jobs.ran
        sink.emit("other")  # the lane's only slot is free: the waiting job holds none
        await anyio.sleep(0.2)
        sink.emit("prereq.ready")
        await anyio.sleep(0.1)
        assert [name for name, _ in jobs.ran] == ["other"]
        sink.emit("config.loaded")  # both present now
        await anyio.lowlevel.checkpoint()
    assert [(name, round(at - start, 3)) for name, at in jobs.ran] == [("other", 0.2), ("go.first", 0.5)]


async def test_await_timeout_is_a_failure_with_its_signals() -> None:
    sink = SignalSink()
    jobs = Awaiting()
    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [jobs]) as runner:
        sink.emit("go.late", key="k")
        await anyio.sleep(2)
    assert not jobs.ran
    assert names(sink, "gate.failed,job.*") == ["gate.failed", "job.failed:gated:TimeoutError"]
    assert [e.key for e in sink.sense("gate.failed")] == ["k"]
    assert round(anyio.current_time() - start, 3) == 2.0
    assert runner.get_stats().failed == 1


async def test_leaving_the_block_cancels_invocations_still_awaiting() -> None:
    sink = SignalSink()

    class Forever:
        @ephemeral_job("go", await_signals="never.*")
        async def wait(self, event: SignalEvent[Any]) -> None:
            raise AssertionError("must not run")

    async with EphemeralSignalJobRunner(sink, [Forever()]) as runner:
        sink.emit("go")
        await anyio.sleep(5)
    assert runner.get_stats() == JobStats(
        matched=1, started=0, completed=0, failed=0, retried=0, dropped=0, cancelled=1
    )


async def test_leaving_does_not_wait_for_invocations_queued_behind_awaiting_ones() -> None:
    sink = SignalSink()
    ran: list[str] = []

    class Queued:
        @ephemeral_job("keyed", await_signals="ready", key_from_signal=True)
        async def keyed(self, event: SignalEvent[Any]) -> None:
            ran.append(event.signal)

        @ephemeral_job("single", await_signals="ready", max_concurrency=1)
        async def single(self, event: SignalEvent[Any]) -> None:
            ran.append(event.signal)

        @ephemeral_job("plain")
        async def plain(self, event: SignalEvent[Any]) -> None:
            await anyio.sleep(1)
            ran.append(event.signal)

    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [Queued()]) as runner:
        for name in ("keyed", "keyed", "single", "single", "plain"):
            sink.emit(name, key="k")
        await anyio.sleep(0.5)
        assert runner.awaiting_count == 2 and runner.pending_count == 2
    assert ran == ["plain"]  # the running job finished; the waiting ones and those behind them were cancelled
    assert round(anyio.current_time() - start, 3) == 1.0
    assert runner.get_stats() == JobStats(
        matched=5, started=1, completed=1, failed=0, retried=0, dropped=0, cancelled=4
    )


async def test_pin_until_acknowledged() -> None:
    sink = SignalSink()

    class Pinned:
        @ephemeral_job("file.ready", pin=True, key_from_signal=True)
        async def announce(self, event: SignalEvent[Any]) -> None:
            pass

    async with EphemeralSignalJobRunner(sink, [Pinned()], EphemeralJobRunnerOptions(max_tracked_operations=1)) as r:
        sink.emit("file.ready", key="f1")
        sink.emit("file.ready", key="f2")
        await anyio.sleep(1)
        assert [(s.key, s.is_pinned) for s in r.get_snapshot()] == [("f1", True), ("f2", True)]
        sink.emit("responsibility.ack.file", key="f1")
        # Pins count toward the window (1): f2's pin holds the one place, so f1 leaves once unpinned.
        assert [(s.key, s.is_pinned) for s in r.get_snapshot()] == [("f2", True)]
        sink.emit("responsibility.ack.file", key="f2")
        assert [(s.key, s.is_pinned) for s in r.get_snapshot()] == [("f2", False)]


async def test_pin_expires_after_expire_after_ms() -> None:
    sink = SignalSink()

    class Pinned:
        @ephemeral_job("file.ready", pin=True, expire_after_ms=1000)
        async def announce(self, event: SignalEvent[Any]) -> None:
            pass

    async with EphemeralSignalJobRunner(sink, [Pinned()], EphemeralJobRunnerOptions(max_tracked_operations=1)) as r:
        sink.emit("file.ready")
        sink.emit("file.ready")
        await anyio.sleep(0.5)
        assert [s.is_pinned for s in r.get_snapshot()] == [True, True]
        await anyio.sleep(0.6)
        assert [s.is_pinned for s in r.get_snapshot()] == [False]  # expired, then trimmed to the window of 1
    assert len(sink.sense("responsibility.expired")) == 2


async def test_a_job_triggered_by_its_own_completion_signal_stops() -> None:
    sink = SignalSink()
    runs: list[str] = []

    class Loop:
        @ephemeral_job("loop.*", emit_on_complete=["loop.again"])
        async def again(self, event: SignalEvent[Any]) -> None:
            runs.append(event.signal)

        @ephemeral_job("ping")
        async def ping(self, event: SignalEvent[Any]) -> None:
            runs.append(event.signal)
            sink.emit("ping")  # its own trigger, from the body

    async with EphemeralSignalJobRunner(sink, [Loop()]) as runner:
        sink.emit("loop.start")
        sink.emit("ping")
    assert sorted(runs) == ["loop.again", "loop.start", "ping"]
    assert runner.blocked_count == 1  # the body's ping (the blocked loop.again was never emitted)
    assert names(sink, "loop.*") == ["loop.start", "loop.again"]


async def test_constraints_bound_a_chain_between_jobs() -> None:
    sink = SignalSink()
    runs: list[str] = []

    class PingPong:
        @ephemeral_job("ping.*")
        async def ping(self, event: SignalEvent[Any]) -> None:
            runs.append(event.signal)
            sink.emit(f"pong.{len(runs)}")

        @ephemeral_job("pong.*")
        async def pong(self, event: SignalEvent[Any]) -> None:
            runs.append(event.signal)
            sink.emit(f"ping.{len(runs)}")  # a new name each time: only the depth limit stops it

    options = EphemeralJobRunnerOptions(signal_constraints=SignalConstraints(max_depth=6))
    async with EphemeralSignalJobRunner(sink, [PingPong()], options):
        sink.emit("ping.0")
    assert len(runs) == 6


async def test_keyed_jobs_keep_order_per_key_and_run_keys_in_parallel() -> None:
    sink = SignalSink()
    log: list[tuple[str, str, float]] = []

    class Keyed:
        @ephemeral_job("order.*", key_from_signal=True, max_concurrency=4)
        async def handle(self, event: SignalEvent[Any]) -> None:
            log.append((event.key or "", event.signal, anyio.current_time()))
            await anyio.sleep(1.0 if event.signal.endswith("slow") else 0.1)

    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [Keyed()]):
        sink.emit("order.slow", key="a")
        sink.emit("order.1", key="a")
        sink.emit("order.2", key="b")
        sink.emit("order.3", key="b")
    by_key = {key: [(name, round(at - start, 3)) for k, name, at in log if k == key] for key in "ab"}
    assert by_key == {"a": [("order.slow", 0.0), ("order.1", 1.0)], "b": [("order.2", 0.0), ("order.3", 0.1)]}


@dataclass
class Payment:
    account: str


async def test_keys_from_the_payload() -> None:
    sink = SignalSink()
    seen: list[tuple[str, str]] = []

    class ByAccount:
        @ephemeral_job("payment.*", key_from_payload="account")
        async def book(self, event: SignalEvent[Any]) -> None:
            assert isinstance(event.payload, Payment)
            seen.append((event.payload.account, event.signal))
            await anyio.sleep(0.1)

    async with EphemeralSignalJobRunner(sink, [ByAccount()]) as runner:
        for n, account in enumerate("xyx"):
            sink.emit(SignalEvent(f"payment.{n}", n, None, sink.now(), None, Payment(account)))
    assert seen == [("x", "payment.0"), ("y", "payment.1"), ("x", "payment.2")]
    assert sorted(s.key or "" for s in runner.get_snapshot()) == ["x", "x", "y"]


async def test_unkeyed_jobs_run_in_parallel_up_to_their_limit_and_the_lane() -> None:
    sink = SignalSink()
    running = {"a": 0, "b": 0, "lane": 0}
    peaks = {"a": 0, "b": 0, "lane": 0}

    class Parallel:
        async def _track(self, name: str) -> None:
            for counter in (name, "lane"):
                running[counter] += 1
                peaks[counter] = max(peaks[counter], running[counter])
            await anyio.sleep(1)
            for counter in (name, "lane"):
                running[counter] -= 1

        @ephemeral_job("a", max_concurrency=3, lane="shared:4")
        async def a(self, event: SignalEvent[Any]) -> None:
            await self._track("a")

        @ephemeral_job("b", max_concurrency=0, lane="shared:4")
        async def b(self, event: SignalEvent[Any]) -> None:
            await self._track("b")

    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [Parallel()]):
        for _ in range(6):
            sink.emit("a")
        for _ in range(6):
            sink.emit("b")
    assert peaks["a"] <= 3 and peaks["b"] <= 4 and peaks["lane"] == 4
    assert round(anyio.current_time() - start, 3) == 3.0  # 12 one-second jobs, 4 at a time, no gap
    peaks.update(a=0, lane=0)
    start = anyio.current_time()
    async with EphemeralSignalJobRunner(sink, [Parallel()]):
        for _ in range(6):
            sink.emit("a")
    assert peaks["a"] == 3 and round(anyio.current_time() - start, 3) == 2.0


@pytest.mark.real_time
async def test_signals_from_other_threads_run_their_jobs() -> None:
    sink = SignalSink()
    seen: list[str] = []

    class Threads:
        @ephemeral_job("thread.*", max_concurrency=0)
        async def record(self, event: SignalEvent[Any]) -> None:
            seen.append(event.signal)

    async with EphemeralSignalJobRunner(sink, [Threads()]):

        def emit_many(n: int) -> None:
            for i in range(20):
                sink.emit(f"thread.{n}.{i}")

        threads = [threading.Thread(target=emit_many, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()

        def join_all() -> None:
            for thread in threads:
                thread.join()

        await anyio.to_thread.run_sync(join_all)
        await anyio.to_thread.run_sync(sink.emit, "thread.from.worker")
    assert sorted(seen) == sorted([f"thread.{n}.{i}" for n in range(4) for i in range(20)] + ["thread.from.worker"])


async def test_backlog_beyond_the_window_and_its_limit() -> None:
    sink = SignalSink()
    ran: list[str] = []

    class Busy:
        @ephemeral_job("busy.*")
        async def busy(self, event: SignalEvent[Any]) -> None:
            ran.append(event.signal)
            await anyio.sleep(1)

    options = EphemeralJobRunnerOptions(max_tracked_operations=2, max_pending=3)
    async with EphemeralSignalJobRunner(sink, [Busy()], options) as runner:
        for n in range(8):
            sink.emit(f"busy.{n}")
        assert runner.pending_count == 5
    # 2 waiting in the coordinator (its window), 3 in the backlog: 5 accepted, 3 dropped and signalled
    assert ran == [f"busy.{n}" for n in range(5)]
    assert names(sink, "job.*") == ["job.dropped:busy"] * 3
    assert runner.get_stats() == JobStats(
        matched=8, started=5, completed=5, failed=0, retried=0, dropped=3, cancelled=0
    )


async def test_an_exception_in_the_block_cancels_running_and_waiting_jobs() -> None:
    sink = SignalSink()
    started: list[str] = []

    class Long:
        @ephemeral_job("long.*")
        async def long(self, event: SignalEvent[Any]) -> None:
            started.append(event.signal)
            await anyio.sleep(10)

    runner = EphemeralSignalJobRunner(sink, [Long()])
    with pytest.raises(KeyError):
        async with runner:
            sink.emit("long.1")
            sink.emit("long.2")
            await anyio.sleep(1)
            raise KeyError("stop")
    sink.emit("long.3")  # not listening any more
    await anyio.sleep(20)
    assert started == ["long.1"]
    stats = runner.get_stats()
    assert stats.matched == 2 and stats.cancelled == 2 and stats.completed == 0


async def test_an_outer_cancel_scope_at_a_random_deadline_leaves_everything_accounted() -> None:
    for deadline in (0.0, 0.05, 0.15, 0.35, 1.0):
        sink = SignalSink()

        class Steps:
            @ephemeral_job("step.*", max_concurrency=2, emit_on_complete="done")
            async def step(self, event: SignalEvent[Any]) -> None:
                await anyio.sleep(0.1)

        runner = EphemeralSignalJobRunner(sink, [Steps()])
        with anyio.move_on_after(deadline):
            async with runner:
                for n in range(6):
                    sink.emit(f"step.{n}")
        stats = runner.get_stats()
        assert stats.matched == stats.completed + stats.failed + stats.dropped + stats.cancelled, (deadline, stats)
        assert len(sink.sense("done")) == stats.completed


async def test_an_outer_cancel_counts_invocations_still_in_the_backlog() -> None:
    sink = SignalSink()

    class One:
        @ephemeral_job("one.*")
        async def one(self, event: SignalEvent[Any]) -> None:
            await anyio.sleep(10)

    # 1 running, 1 waiting in the coordinator (its window of 1), 2 in the backlog when the deadline hits
    runner = EphemeralSignalJobRunner(sink, [One()], EphemeralJobRunnerOptions(max_tracked_operations=1))
    with anyio.move_on_after(0.5):
        async with runner:
            for n in range(4):
                sink.emit(f"one.{n}")
            await anyio.sleep(0.1)
            assert runner.pending_count == 3 and runner.active_count == 1
    assert runner.get_stats() == JobStats(
        matched=4, started=1, completed=0, failed=0, retried=0, dropped=0, cancelled=4
    )
    assert runner.pending_count == 0 and runner.active_count == 0


async def test_lifecycle_faults() -> None:
    """An error or an outer deadline in the block cancels the jobs and their backlogs (each invocation
    counted once, as cancelled); a runner is entered once."""
    made: list[EphemeralSignalJobRunner] = []
    sink = SignalSink()

    class One:
        @ephemeral_job("one.*")
        async def one(self, event: SignalEvent[Any]) -> None:
            await anyio.sleep(10)

    def make() -> EphemeralSignalJobRunner:
        options = EphemeralJobRunnerOptions(max_tracked_operations=1)
        made.append(EphemeralSignalJobRunner(sink, [One()], options))
        return made[-1]

    async def use(runner: EphemeralSignalJobRunner) -> None:
        for n in range(4):
            sink.emit(f"one.{n}")
        await anyio.sleep(0.1)
        assert runner.pending_count == 3 and runner.active_count == 1

    await assert_lifecycle_faults(make, use)
    for runner in made[:2]:
        assert runner.get_stats() == JobStats(
            matched=4, started=1, completed=0, failed=0, retried=0, dropped=0, cancelled=4
        )


async def test_a_cancellation_let_out_by_the_body_is_a_failure() -> None:
    sink = SignalSink()

    class Stray:
        @ephemeral_job("x", max_retries=1, retry_delay_ms=10, emit_on_failure="stray.failed")
        async def stray(self, event: SignalEvent[Any]) -> None:
            # asyncio: a bare CancelledError nobody asked for (trio refuses to build one: TypeError)
            raise anyio.get_cancelled_exc_class()()

    runner = EphemeralSignalJobRunner(sink, [Stray()])
    with anyio.fail_after(5):  # an enclosing deadline that never runs out
        async with runner:
            sink.emit("x")
    assert runner.get_stats() == JobStats(
        matched=1, started=1, completed=0, failed=1, retried=1, dropped=0, cancelled=0
    )
    assert names(sink, "job.*,stray.*")[:2] == ["job.retry:stray:1", "stray.failed"]
    assert names(sink, "job.failed:*")[0].startswith("job.failed:stray:")


async def test_lower_priority_takes_a_contended_lane_slot_first() -> None:
    sink = SignalSink()
    ran: list[str] = []

    class Contended:
        @ephemeral_job("hold", lane="one:1")
        async def hold(self, event: SignalEvent[Any]) -> None:
            await anyio.sleep(1)

        @ephemeral_job("work.*", priority=5, lane="one:1", max_concurrency=2)
        async def late(self, event: SignalEvent[Any]) -> None:
            ran.append(f"late {event.signal}")
            await anyio.sleep(0.1)

        @ephemeral_job("work.*", priority=1, lane="one:1", max_concurrency=2)
        async def early(self, event: SignalEvent[Any]) -> None:
            ran.append(f"early {event.signal}")
            await anyio.sleep(0.1)

    async with EphemeralSignalJobRunner(sink, [Contended()]):
        sink.emit("hold")
        await anyio.sleep(0.1)
        sink.emit("work.1")
        await anyio.sleep(0.1)
        sink.emit("work.2")  # waits behind work.1's late job, but its early job has the lower priority
    assert ran == ["early work.1", "early work.2", "late work.1", "late work.2"]
