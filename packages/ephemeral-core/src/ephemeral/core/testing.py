"""Helpers for testing code built on ephemeral, as ``trio.testing`` / ``structlog.testing`` are.

* ``ConcurrencyProbe``: ``with probe:`` around a body's work counts the calls running at once; ``peak``
  is the most seen, for asserting a concurrency limit.
* ``Gate``: an async body that holds every call until ``set()``.
* ``Recorder``: a list that is also an async body (``await recorder(item)`` waits ``delay``, then appends).
* ``ManualClock``: a monotonic clock the test moves by hand, for the ``clock=`` of caches, sinks,
  aggregation windows and responsibility managers.
* ``python_blocks``/``output_blocks``, ``run_readme_examples`` and ``arun_readme_examples``: run every
  ```python block of a README, in order and in one namespace, and return what they printed; an example
  that promises output (it calls ``print`` or the README shows its output) and prints nothing fails.
  ``run_module_as_script``: what ``python -m module`` prints, run in this process.
* ``assert_accounted``: every item a coordinator or atom accepted was completed, failed, skipped or
  cancelled, and nothing is left pending or running.
* ``assert_lifecycle_faults``: an object owning background tasks keeps the fault rules: an exception
  inside ``async with`` leaves it unchanged with every task ended, an outer deadline is absorbed by its
  scope, a second entry is refused, closing again is a no-op.
* ``postgres_test_dsn``, ``run_postgres_sql`` and ``postgres_test_tables``: a real PostgreSQL server for
  the database packages' tests (the test is skipped when there is none); they import psycopg and pytest
  when called, so core depends on neither.
* ``tcp_proxy(host, port)`` / ``TcpProxy``: a TCP proxy on 127.0.0.1 in front of a server, stopped
  (every connection closed, new ones refused) and started again on the same port: a server outage for
  one test, without touching the shared server.

Time-based tests run in virtual time: the repository's pytest configuration runs each async test on
asyncio (looptime) and trio (``MockClock``), so ``anyio.sleep`` takes no real time.
"""

from __future__ import annotations

from ._testing import (
    ConcurrencyProbe as ConcurrencyProbe,
    Gate as Gate,
    ManualClock as ManualClock,
    ReadmeExample as ReadmeExample,
    Recorder as Recorder,
    TcpProxy as TcpProxy,
    arun_readme_examples as arun_readme_examples,
    assert_accounted as assert_accounted,
    assert_lifecycle_faults as assert_lifecycle_faults,
    output_blocks as output_blocks,
    postgres_test_dsn as postgres_test_dsn,
    postgres_test_tables as postgres_test_tables,
    python_blocks as python_blocks,
    run_module_as_script as run_module_as_script,
    run_postgres_sql as run_postgres_sql,
    run_readme_examples as run_readme_examples,
    tcp_proxy as tcp_proxy,
)

__all__ = (
    "ConcurrencyProbe",
    "Gate",
    "ManualClock",
    "ReadmeExample",
    "Recorder",
    "TcpProxy",
    "arun_readme_examples",
    "assert_accounted",
    "assert_lifecycle_faults",
    "output_blocks",
    "postgres_test_dsn",
    "postgres_test_tables",
    "python_blocks",
    "run_module_as_script",
    "run_postgres_sql",
    "run_readme_examples",
    "tcp_proxy",
)
