"""Declaring jobs: the decorators, the scanner's merge rules, keys, lanes, and bad declarations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ephemeral.attributes import (
    EphemeralJobRunnerOptions,
    EphemeralJobScanner,
    EphemeralSignalJobRunner,
    KeySource,
    ephemeral_job,
    ephemeral_jobs,
    parse_lane,
)
from ephemeral.core import SignalEvent, SignalSink

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def event(signal: str, key: str | None = None, payload: object = None) -> SignalEvent[Any]:
    return SignalEvent(signal, 1, key, NOW, None, payload)


class ThreeJobs:
    @ephemeral_job("a.*")
    async def first(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("b.*")
    async def second(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("c.*")
    async def _private(self, event: SignalEvent[Any]) -> None:
        pass

    async def not_a_job(self, event: SignalEvent[Any]) -> None:
        pass


@ephemeral_jobs(signal_prefix="myprefix", default_priority=5, default_max_concurrency=2, default_lane="io")
class Prefixed:
    @ephemeral_job("order.*")
    async def defaults(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("order.x", priority=10, max_concurrency=4, lane="cpu:8")
    async def overrides(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("order.y", priority=0, max_concurrency=1)
    async def explicit_zero_and_one(self, event: SignalEvent[Any]) -> None:
        pass


def test_scanner_finds_public_and_private_jobs() -> None:
    jobs = EphemeralJobScanner.scan(ThreeJobs())
    assert [job.method_name for job in jobs] == ["first", "second", "_private"]
    assert jobs[0].name == "ThreeJobs.first"
    assert jobs[0].lane == "default" and jobs[0].lane_max_concurrency is None
    assert (jobs[0].effective_priority, jobs[0].effective_max_concurrency) == (0, 1)


def test_class_defaults_and_method_overrides() -> None:
    jobs = {job.method_name: job for job in EphemeralJobScanner.scan(Prefixed())}
    defaults = jobs["defaults"]
    assert defaults.effective_trigger_signal == "myprefix.order.*"
    assert (defaults.effective_priority, defaults.effective_max_concurrency) == (5, 2)
    assert (defaults.lane, defaults.lane_max_concurrency) == ("io", None)
    overrides = jobs["overrides"]
    assert (overrides.effective_priority, overrides.effective_max_concurrency) == (10, 4)
    assert (overrides.lane, overrides.lane_max_concurrency) == ("cpu", 8)
    # A method may choose the values that happen to be the decorator's own defaults.
    explicit = jobs["explicit_zero_and_one"]
    assert (explicit.effective_priority, explicit.effective_max_concurrency) == (0, 1)
    assert [job.method_name for job in EphemeralJobScanner.scan(Prefixed())] == [
        "explicit_zero_and_one",
        "defaults",
        "overrides",
    ]


def test_matching() -> None:
    (job,) = [j for j in EphemeralJobScanner.scan(ThreeJobs()) if j.method_name == "first"]
    assert job.matches(event("a.created")) and job.matches("a.updated")
    assert not job.matches(event("b.created"))
    defaults = EphemeralJobScanner.scan(Prefixed())[1]
    assert defaults.matches("myprefix.order.created") and not defaults.matches("order.created")


@dataclass
class Customer:
    id: str


@dataclass
class Order:
    order_id: str
    customer: Customer


class Keys:
    @ephemeral_job("k", key_from_signal=True)
    async def by_signal(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("k", key_from_payload="order_id")
    async def by_payload(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("k", key_from_payload=KeySource("customer.id"), key_from_signal=True)
    async def nested(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("k", key_from_payload=KeySource())
    async def whole(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("k", operation_key="static-key")
    async def static(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("k")
    async def unkeyed(self, event: SignalEvent[Any]) -> None:
        pass


def test_key_extraction() -> None:
    jobs = {job.method_name: job for job in EphemeralJobScanner.scan(Keys())}
    order = Order("ORD-123", Customer("CUST-789"))
    assert jobs["by_signal"].extract_key(event("k", "my-key")) == "my-key"
    assert jobs["by_payload"].extract_key(event("k", "ignored", order)) == "ORD-123"
    assert jobs["by_payload"].extract_key(event("k"), {"order_id": 7}) == "7"
    assert jobs["nested"].extract_key(event("k", "sig", order)) == "CUST-789"
    assert jobs["nested"].extract_key(event("k", "sig")) == "sig"  # no payload: the signal's key
    assert jobs["whole"].extract_key(event("k", None, 42)) == "42"
    assert jobs["static"].extract_key(event("k", "ignored")) == "static-key"
    assert jobs["unkeyed"].extract_key(event("k", "ignored")) is None
    assert not jobs["unkeyed"].is_keyed and jobs["static"].is_keyed


class Described:
    @ephemeral_job(
        "x",
        timeout_ms=5000,
        pin=True,
        expire_after_ms=1000,
        await_signals=["prereq.*"],
        await_timeout_ms=500,
        max_retries=2,
        retry_delay_ms=50,
        emit_on_start="s",
        emit_on_complete=["c1", "c2"],
        emit_on_failure=("f",),
        swallow_exceptions=True,
    )
    async def job(self, event: SignalEvent[Any]) -> None:
        pass


def test_descriptor_settings() -> None:
    (job,) = EphemeralJobScanner.scan(Described())
    assert job.timeout == timedelta(seconds=5)
    assert job.is_pinned and job.expire_after == timedelta(seconds=1)
    assert job.await_signals == ("prereq.*",) and job.await_timeout == timedelta(milliseconds=500)
    assert (job.max_retries, job.retry_delay) == (2, timedelta(milliseconds=50))
    assert (job.emit_on_start, job.emit_on_complete, job.emit_on_failure) == (("s",), ("c1", "c2"), ("f",))
    assert job.swallow_exceptions
    (plain,) = [j for j in EphemeralJobScanner.scan(ThreeJobs()) if j.method_name == "first"]
    assert plain.timeout is None and plain.expire_after is None and plain.await_timeout is None


def test_lane_parsing() -> None:
    assert parse_lane("fast") == ("fast", None)
    assert parse_lane("slow:4") == ("slow", 4)
    for bad in ("", " x", "x:abc", "x:0", ":3", "x:-1"):
        with pytest.raises(ValueError, match="lane"):
            parse_lane(bad)


class FastSlow:
    @ephemeral_job("a", lane="fast")
    async def fast(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("b", lane="slow:4")
    async def slow(self, event: SignalEvent[Any]) -> None:
        pass

    @ephemeral_job("c", lane="slow")
    async def also_slow(self, event: SignalEvent[Any]) -> None:
        pass


def test_runner_lanes() -> None:
    runner = EphemeralSignalJobRunner(SignalSink(), [FastSlow()])
    assert runner.lanes == ["fast", "slow"]
    assert (runner.lane_limit("fast"), runner.lane_limit("slow")) == (None, 4)


def test_bad_declarations_name_the_method() -> None:
    with pytest.raises(TypeError, match="sync_job"):

        class Sync:
            @ephemeral_job("x")
            def sync_job(self, event: SignalEvent[Any]) -> None:
                pass

    with pytest.raises(TypeError, match="trigger"):
        ephemeral_job(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trigger"):
        ephemeral_job(" ")
    with pytest.raises(ValueError, match=r"max_concurrency must be >= 0"):

        class Negative:
            @ephemeral_job("x", max_concurrency=-1)
            async def negative(self, event: SignalEvent[Any]) -> None:
                pass

    with pytest.raises(ValueError, match=r"Lane\.bad_lane.*hot:many"):

        class Lane:
            @ephemeral_job("x", lane="hot:many")
            async def bad_lane(self, event: SignalEvent[Any]) -> None:
                pass

    with pytest.raises(ValueError, match="retry_delay_ms"):
        ephemeral_job("x", retry_delay_ms=-5)(Described.job)
    with pytest.raises(TypeError, match="timeout_ms"):
        ephemeral_job("x", timeout_ms=1.5)(Described.job)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signal_prefix"):
        ephemeral_jobs(signal_prefix="")
    with pytest.raises(ValueError, match="default_lane"):
        ephemeral_jobs(default_lane="x:y")
    with pytest.raises(ValueError, match="emit_on_complete"):
        ephemeral_job("x", emit_on_complete=[""])(Described.job)


def test_bad_runners() -> None:
    sink = SignalSink()
    with pytest.raises(ValueError, match="No attributed jobs"):
        EphemeralSignalJobRunner(sink, [object()])
    with pytest.raises(TypeError, match="instance"):
        EphemeralSignalJobRunner(sink, [ThreeJobs])
    with pytest.raises(TypeError, match="sink"):
        EphemeralSignalJobRunner("sink", [ThreeJobs()])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="targets"):
        EphemeralSignalJobRunner(sink, ThreeJobs())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options"):
        EphemeralSignalJobRunner(sink, [ThreeJobs()], options={})  # type: ignore[arg-type]

    class Other:
        @ephemeral_job("z", lane="slow:2")
        async def other(self, event: SignalEvent[Any]) -> None:
            pass

    with pytest.raises(ValueError, match="lane 'slow'"):
        EphemeralSignalJobRunner(sink, [FastSlow(), Other()])
    with pytest.raises(ValueError, match="max_pending"):
        EphemeralJobRunnerOptions(max_pending=-1)
    with pytest.raises(TypeError, match="signal_constraints"):
        EphemeralJobRunnerOptions(signal_constraints=None)  # type: ignore[arg-type]
