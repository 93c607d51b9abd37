"""Random signal storms: lane and job limits hold, keys keep order, and every matched signal runs once."""

from __future__ import annotations

from typing import Any, cast

import anyio
from hypothesis import HealthCheck, given, settings, strategies as st

from ephemeral.attributes import EphemeralSignalJobRunner, ephemeral_job
from ephemeral.core import SignalEvent, SignalSink

TRIGGERS = ("a.*", "*.x", "b.*", "c,a.y")
NAMES = ("a.x", "a.y", "b.x", "c")
job_specs = st.lists(
    st.tuples(
        st.sampled_from(TRIGGERS),
        st.integers(0, 3),  # max_concurrency (0: none)
        st.sampled_from(["one:1", "two:2", "free"]),
        st.booleans(),  # key_from_signal
    ),
    min_size=1,
    max_size=4,
)
steps = st.one_of(
    st.tuples(
        st.just("emit"),
        st.sampled_from(NAMES),
        st.sampled_from([None, "k1", "k2"]),
        st.sampled_from([0.0, 0.01, 0.3, 1.0]),
        st.booleans(),
    ),
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.05, 0.5])),
)


class Storm:
    """Job bodies that record what ran, when, and how many ran at once per job and per lane."""

    def __init__(self, specs: list[tuple[str, int, str, bool]]) -> None:
        self.specs = specs
        self.running_jobs: dict[int, int] = {}
        self.running_lanes: dict[str, int] = {}
        self.running_keys: dict[tuple[int, str], int] = {}
        self.started: list[tuple[int, int, str | None]] = []  # (job, seq, key)
        self.violations: list[str] = []

    async def run(self, index: int, event: SignalEvent[Any]) -> None:
        _, limit, lane, keyed = self.specs[index]
        seq, duration, fails = cast("tuple[int, float, bool]", event.payload)
        self.started.append((index, seq, event.key))
        lane_name, _, lane_limit = lane.partition(":")
        self.running_jobs[index] = self.running_jobs.get(index, 0) + 1
        self.running_lanes[lane_name] = self.running_lanes.get(lane_name, 0) + 1
        if limit and self.running_jobs[index] > limit:
            self.violations.append(f"job {index} ran {self.running_jobs[index]} at once (limit {limit})")
        if lane_limit and self.running_lanes[lane_name] > int(lane_limit):
            self.violations.append(f"lane {lane} ran {self.running_lanes[lane_name]} at once")
        if keyed and event.key is not None:
            slot = (index, event.key)
            self.running_keys[slot] = self.running_keys.get(slot, 0) + 1
            if self.running_keys[slot] > 1:
                self.violations.append(f"job {index} ran key {event.key} {self.running_keys[slot]} at once")
        try:
            await anyio.sleep(duration)
            if fails:
                raise ValueError(seq)
        finally:
            if keyed and event.key is not None:
                self.running_keys[(index, event.key)] -= 1
            self.running_jobs[index] -= 1
            self.running_lanes[lane_name] -= 1


def storm_class(specs: list[tuple[str, int, str, bool]]) -> type[Storm]:
    attributes: dict[str, Any] = {}
    for index, (trigger, limit, lane, keyed) in enumerate(specs):

        async def body(self: Storm, event: SignalEvent[Any], index: int = index) -> None:
            await self.run(index, event)

        body.__name__ = f"job{index}"
        attributes[f"job{index}"] = ephemeral_job(trigger, max_concurrency=limit, lane=lane, key_from_signal=keyed)(
            body
        )
    return type("StormJobs", (Storm,), attributes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=job_specs, schedule=st.lists(steps, max_size=30))
async def test_random_storms(specs: list[tuple[str, int, str, bool]], schedule: list[tuple[Any, ...]]) -> None:
    sink = SignalSink(max_capacity=100_000)
    storm = storm_class(specs)(specs)
    emitted: list[tuple[int, str, str | None, bool]] = []
    async with EphemeralSignalJobRunner(sink, [storm]) as runner:
        jobs = sorted(runner.jobs, key=lambda job: int(job.method_name[3:]))
        for step in schedule:
            if step[0] == "sleep":
                await anyio.sleep(step[1])
                continue
            _, name, key, duration, fails = step
            seq = len(emitted)
            emitted.append((seq, name, key, fails))
            sink.emit(SignalEvent(name, seq, key, sink.now(), None, (seq, duration, fails)))
    assert storm.violations == []
    expected = sorted(
        (index, seq, key) for seq, name, key, _ in emitted for index, job in enumerate(jobs) if job.matches(name)
    )
    assert sorted(storm.started) == expected  # every matched signal ran exactly once
    for index, (_, _, _, keyed) in enumerate(specs):
        if keyed:
            for key in ("k1", "k2"):
                order = [seq for job, seq, k in storm.started if job == index and k == key]
                assert order == sorted(order), f"job {index} key {key}: {order}"
    failures = sum(1 for index, seq, _ in expected if emitted[seq][3])
    assert len(sink.sense("job.failed:*")) == failures  # each failure left its signal
    stats = runner.get_stats()
    assert stats.matched == len(expected) == stats.completed + stats.failed
    assert (stats.failed, stats.dropped, stats.cancelled) == (failures, 0, 0)
