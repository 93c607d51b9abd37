"""Job runners on svcs, started by the application's lifespan: the ``di`` extra (``ephemeral-attributes[di]``).

The Python edition of ``services.AddEphemeralSignalJobRunner<T>()``::

    @svcs.fastapi.lifespan
    async def lifespan(app: FastAPI, registry: svcs.Registry) -> AsyncGenerator[dict[str, object], None]:
        add_ephemeral_signal_job_runner(registry, LogWatcherJobs)
        async with ephemeral_lifespan(registry):  # starts the runner; drains it at shutdown
            yield {}

``add_ephemeral_signal_job_runner`` builds one instance of each job class when the application
starts (resolved from the registry if registered there, else built by calling the class with the
services its ``__init__`` parameters name by type); ``add_ephemeral_scoped_job_runner`` builds a new
one in a new ``svcs.Container`` for every invocation. Both register a ``SignalSink`` if the registry
has none, and register the runner with ``ephemeral.core.di.add_lifespan_service``, so
``ephemeral_lifespan`` starts it with the coordinators and drains it at shutdown.
"""

from __future__ import annotations

try:
    from ._di import (
        EphemeralScopedJobRunner as EphemeralScopedJobRunner,
        add_ephemeral_scoped_job_runner as add_ephemeral_scoped_job_runner,
        add_ephemeral_signal_job_runner as add_ephemeral_signal_job_runner,
    )
except ImportError as error:
    if error.name is None or error.name.partition(".")[0] != "svcs":
        raise
    raise ImportError(
        'ephemeral.attributes.di needs svcs, which is not installed: pip install "ephemeral-attributes[di]"',
        name=error.name,
    ) from error

__all__ = ("EphemeralScopedJobRunner", "add_ephemeral_scoped_job_runner", "add_ephemeral_signal_job_runner")
