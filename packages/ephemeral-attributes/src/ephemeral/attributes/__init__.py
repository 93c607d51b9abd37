"""Declarative signal jobs: ``@ephemeral_job`` methods run whenever a matching signal reaches a sink.

Decorate ``async def`` methods with ``@ephemeral_job("log.error.*", lane="hot:4", ...)`` and hand the
objects to an ``EphemeralSignalJobRunner(sink, targets)``: each matching signal runs the job in core's
coordinators, with lanes, per-job limits, per-key order, retries, timeouts, awaited signals and pins.
DI helpers for svcs live in ``ephemeral.attributes.di`` (the ``di`` extra).
"""

from __future__ import annotations

from ._jobs import (
    EphemeralJobDescriptor as EphemeralJobDescriptor,
    EphemeralJobScanner as EphemeralJobScanner,
    KeySource as KeySource,
    ephemeral_job as ephemeral_job,
    ephemeral_jobs as ephemeral_jobs,
    parse_lane as parse_lane,
)
from ._runner import (
    EphemeralJobRunnerOptions as EphemeralJobRunnerOptions,
    EphemeralSignalJobRunner as EphemeralSignalJobRunner,
    JobStats as JobStats,
)

__all__ = (
    "EphemeralJobDescriptor",
    "EphemeralJobRunnerOptions",
    "EphemeralJobScanner",
    "EphemeralSignalJobRunner",
    "JobStats",
    "KeySource",
    "ephemeral_job",
    "ephemeral_jobs",
    "parse_lane",
)
