"""The test kit behind ``ephemeral.core.testing``: clock, README runners, accounting, lifecycle, PostgreSQL."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import runpy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import anyio
import anyio.abc

from ._checks import check_float

T = TypeVar("T")

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


class ManualClock:
    """A monotonic clock in seconds that moves only when the test says so.

    Pass it as the ``clock=`` of a component and call ``advance`` to let time pass::

        clock = ManualClock()
        cache = EphemeralLruCache(EphemeralLruCacheOptions(default_ttl=10, clock=clock))
        clock.advance(11)

    Args:
        start: The first reading.
    """

    __slots__ = ("value",)

    def __init__(self, start: float = 1000.0) -> None:
        self.value = check_float(start, "start")

    def __call__(self) -> float:
        """The current reading."""
        return self.value

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and return the new reading.

        Raises:
            ValueError: ``seconds`` is negative: a monotonic clock never goes back.
        """
        self.value += check_float(seconds, "seconds", minimum=0.0)
        return self.value

    def __repr__(self) -> str:
        return f"ManualClock({self.value!r})"


class ConcurrencyProbe:
    """Counts the calls running at once: ``with probe:`` around a body's work; ``peak`` is the most seen.

    For asserting a concurrency limit (and that it is reached)::

        probe = ConcurrencyProbe()

        async def body(item: int) -> None:
            with probe:
                await anyio.sleep(0.05)

        ...  # run 10 items with max_concurrency=3
        assert probe.peak == 3
    """

    __slots__ = ("peak", "running")

    def __init__(self) -> None:
        self.running = 0
        """Calls inside the probe now."""
        self.peak = 0
        """The most calls inside the probe at once so far."""

    def __enter__(self) -> ConcurrencyProbe:
        self.running += 1
        if self.running > self.peak:
            self.peak = self.running
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.running -= 1

    def __repr__(self) -> str:
        return f"ConcurrencyProbe(running={self.running}, peak={self.peak})"


class Gate:
    """An async body that holds every call until ``set()``: an ``anyio.Event`` to pass where a body goes.

    For keeping work running (or waiting) while a test looks at it::

        gate = Gate()
        async with EphemeralWorkCoordinator(gate, EphemeralOptions(max_concurrency=2)) as coordinator:
            for item in range(3):
                await coordinator.enqueue(item)
            ...  # two are running, one waits
            gate.set()

    Make it inside the event loop, as an ``anyio.Event``.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    async def __call__(self, *args: object) -> None:
        """Wait until the gate is set (whatever the arguments)."""
        await self._event.wait()

    def set(self) -> None:
        """Let every waiting and later call through."""
        self._event.set()

    def is_set(self) -> bool:
        """Whether ``set()`` has been called."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Wait until the gate is set."""
        await self._event.wait()


class Recorder(list[T]):
    """A list that is also an async body: ``await recorder(item)`` waits ``delay`` seconds, then appends.

    For a coordinator's or handler's body whose only job in a test is to take time and record::

        processed: Recorder[int] = Recorder(delay=0.01)
        async with EphemeralWorkCoordinator(processed) as coordinator:
            await coordinator.enqueue(1)
        assert processed == [1]
    """

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = check_float(delay, "delay", minimum=0.0)

    async def __call__(self, item: T) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        self.append(item)

    def __repr__(self) -> str:
        return f"Recorder({list(self)!r}, delay={self.delay!r})"


# -- README examples ------------------------------------------------------------------------------

_PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```", re.S | re.M)
#: An output block: ```text (or ```console/```output), or a bare ``` block right after a line ending
#: in "prints", "prints:" or "Output:".
_OUTPUT_BLOCK = re.compile(
    r"^```(?:text|console|output)[ \t]*\n(.*?)^```|(?:prints|[Oo]utput):?\s*\n\s*\n?```[ \t]*\n(.*?)^```", re.S | re.M
)
#: The last statement of a script-like example: ``anyio.run(main)``, possibly under a ``__main__`` guard.
_RUN_MAIN = re.compile(r"\n(?:if __name__ == [\"']__main__[\"']:\s*\n\s+)?anyio\.run\(\s*main\s*(?:,[^)]*)?\)\s*$")


class ReadmeExample(NamedTuple):
    """One ```python block of a README: its code, its first line number, and the output shown after it."""

    code: str
    line: int
    shown_output: str | None


def _text(readme: str | os.PathLike[str]) -> tuple[str, str]:
    path = Path(readme)
    return path.read_text(encoding="utf-8"), str(path)


def python_blocks(readme: str | os.PathLike[str]) -> list[ReadmeExample]:
    """The ```python blocks of the README at ``readme``, in order, each with the output the README shows.

    A block's shown output is the first output block (```text, ```console, ```output, or a bare ```
    block after a line ending in "prints" or "Output:") between it and the next ```python block.
    """
    text, _ = _text(readme)
    matches = list(_PYTHON_BLOCK.finditer(text))
    examples = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        shown = _OUTPUT_BLOCK.search(text, match.end(), end)
        output = None if shown is None else (shown.group(1) if shown.group(1) is not None else shown.group(2))
        line = text.count("\n", 0, match.start(1)) + 1
        examples.append(ReadmeExample(match.group(1), line, output))
    return examples


def output_blocks(readme: str | os.PathLike[str]) -> list[str]:
    """The output each example of the README shows, for the examples that show one, in order."""
    return [example.shown_output for example in python_blocks(readme) if example.shown_output is not None]


def _promises_output(example: ReadmeExample) -> bool:
    return example.shown_output is not None or "print(" in example.code


@contextlib.contextmanager
def _capturing(cwd: str | os.PathLike[str] | None) -> Iterator[io.StringIO]:
    out = io.StringIO()
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            _chdir(stack, cwd)
        stack.enter_context(contextlib.redirect_stdout(out))
        yield out


def _chdir(stack: contextlib.ExitStack, cwd: str | os.PathLike[str]) -> None:
    """``contextlib.chdir`` (Python 3.11+), for 3.10 too."""
    previous = os.getcwd()
    os.chdir(cwd)
    stack.callback(os.chdir, previous)


def _check_printed(example: ReadmeExample, source: str, printed: str) -> None:
    if _promises_output(example) and not printed.strip():
        raise AssertionError(f"{source}:{example.line}: the example promises output but printed nothing")


def _compile(example: ReadmeExample, code: str, source: str) -> Any:
    # Line numbers in tracebacks point into the README.
    return compile("\n" * (example.line - 1) + code, source, "exec", dont_inherit=True)


def run_readme_examples(
    readme: str | os.PathLike[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> str:
    """Run every ```python block of a README as written, in order and in one namespace; return the output.

    Each block runs as a script would (``__name__ == "__main__"``, its own ``anyio.run(main)``
    included), with stdout captured. Use it from a sync test.

    Args:
        readme: The README's path.
        cwd: Run in this directory (for examples that write files).
        namespace: Extra globals for the examples.

    Raises:
        AssertionError: The README has no ```python block, or an example that promises output (it calls
            ``print`` or the README shows its output) printed nothing.
        Exception: Whatever an example raised.
    """
    examples = python_blocks(readme)
    _, source = _text(readme)
    if not examples:
        raise AssertionError(f"{source} has no ```python example")
    scope: dict[str, Any] = {"__name__": "__main__", **(namespace or {})}
    printed: list[str] = []
    for example in examples:
        with _capturing(cwd) as out:
            exec(_compile(example, example.code, source), scope)
        _check_printed(example, source, out.getvalue())
        printed.append(out.getvalue())
    return "".join(printed)


async def arun_readme_examples(
    readme: str | os.PathLike[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> str:
    """``run_readme_examples`` inside the running event loop, for async tests.

    A block ending in ``anyio.run(main)`` (or running it under a ``__main__`` guard) has its ``main()``
    awaited instead, so the example runs on the test's backend and clock (virtual time).

    Raises:
        AssertionError: As for ``run_readme_examples``.
        Exception: Whatever an example raised.
    """
    examples = python_blocks(readme)
    _, source = _text(readme)
    if not examples:
        raise AssertionError(f"{source} has no ```python example")
    scope: dict[str, Any] = {"__name__": "readme", **(namespace or {})}
    printed: list[str] = []
    for example in examples:
        code, runs_main = _RUN_MAIN.subn("\n", example.code.rstrip())
        with _capturing(cwd) as out:
            exec(_compile(example, code, source), scope)
            if runs_main:
                await scope["main"]()
        _check_printed(example, source, out.getvalue())
        printed.append(out.getvalue())
    return "".join(printed)


def run_module_as_script(name: str) -> str:
    """Run the module ``name`` as ``python -m name`` would, in this process; return what it printed."""
    with _capturing(None) as out:
        runpy.run_module(name, run_name="__main__")
    return out.getvalue()


# -- accounting -----------------------------------------------------------------------------------


def assert_accounted(subject: Any, *, closed: bool = True) -> None:
    """Assert that every item ``subject`` accepted is accounted for.

    ``enqueued == completed + failed + skipped + cancelled`` and, when ``closed`` (the default: check
    after leaving ``async with``), nothing is pending or running any more.

    Args:
        subject: A coordinator, an atom (its ``coordinator`` is read), or a ``CoordinatorMetrics``.
        closed: Also require that nothing is pending or active.

    Raises:
        AssertionError: Items went missing (the message shows every counter).
        TypeError: ``subject`` is none of those.
    """
    metrics = subject
    if hasattr(metrics, "coordinator") and not hasattr(metrics, "get_metrics"):
        metrics = metrics.coordinator
    if hasattr(metrics, "get_metrics"):
        metrics = metrics.get_metrics()
    names = ("total_enqueued", "total_completed", "total_failed", "total_skipped", "total_cancelled")
    if not all(hasattr(metrics, name) for name in (*names, "pending_count", "active_count")):
        raise TypeError(f"subject must be a coordinator, an atom or CoordinatorMetrics, got {subject!r}")
    enqueued, completed, failed, skipped, cancelled = (getattr(metrics, name) for name in names)
    counts = (
        f"enqueued={enqueued} completed={completed} failed={failed} skipped={skipped} "
        f"cancelled={cancelled} pending={metrics.pending_count} active={metrics.active_count}"
    )
    if closed and (metrics.pending_count or metrics.active_count):
        raise AssertionError(f"items are still pending or running: {counts}")
    unsettled = metrics.pending_count + metrics.active_count if not closed else 0
    if enqueued != completed + failed + skipped + cancelled + unsettled:
        raise AssertionError(f"accepted items are not accounted for: {counts}")


# -- lifecycle faults -----------------------------------------------------------------------------


class _RaisedInBlock(Exception):
    """The error ``assert_lifecycle_faults`` raises inside the block."""


def _task_ids() -> set[int]:
    return {task.id for task in anyio.get_running_tasks()}


def _check_no_task_left(before: set[int], rule: str) -> None:
    left = [task for task in anyio.get_running_tasks() if task.id not in before]
    if left:
        raise AssertionError(f"{rule}: tasks the object started still run: {[task.name for task in left]}")


async def _check_entry_refused(obj: AbstractAsyncContextManager[Any], where: str) -> None:
    try:
        async with obj:
            pass
    except RuntimeError:
        return
    raise AssertionError(f"a second `async with` {where} the first was not refused")


async def assert_lifecycle_faults(
    make: Callable[[], AbstractAsyncContextManager[Any]],
    use: Callable[[Any], Awaitable[object]] | None = None,
    *,
    nested_entry: bool = False,
) -> None:
    """Assert the fault rules of an object that owns background tasks or resources for its ``async with``.

    Each rule runs on a fresh object from ``make()``; ``use(obj)``, when given, runs first in each block
    (to start work in the background):

    1. an exception raised inside the block leaves ``async with`` as itself (not wrapped in an exception
       group), and no task the object started is left running;
    2. an outer cancel scope whose deadline fires inside the block catches the cancellation, and no task
       the object started is left running;
    3. entering again refuses with ``RuntimeError`` (``CoordinatorClosedError`` is one): after the block,
       and inside it too unless ``nested_entry`` (for objects shared by nested users);
    4. closing again is a no-op: the object's ``aclose()`` or ``close()``, when it has one, returns after
       the block, twice.

    Raises:
        AssertionError: A rule does not hold (the message names it).
    """
    # 1. An exception inside the block.
    before = _task_ids()
    error = _RaisedInBlock("raised inside the block")
    try:
        async with make() as obj:
            if use is not None:
                await use(obj)
            raise error
    except _RaisedInBlock as caught:
        if caught is not error:
            raise AssertionError("an exception raised inside the block left it as another one") from caught
    except BaseException as other:
        raise AssertionError(f"an exception raised inside the block left it as {other!r}") from other
    else:
        raise AssertionError("an exception raised inside the block was swallowed")
    _check_no_task_left(before, "after an exception inside the block")

    # 2. An outer deadline inside the block.
    before = _task_ids()
    with anyio.move_on_after(1) as scope:
        async with make() as obj:
            if use is not None:
                await use(obj)
            await anyio.sleep_forever()
    if not scope.cancelled_caught:
        raise AssertionError("an outer deadline firing inside the block did not reach its cancel scope")
    _check_no_task_left(before, "after an outer deadline inside the block")

    # 3. and 4. A second entry, a second close.
    obj = make()
    async with obj:
        if not nested_entry:
            await _check_entry_refused(obj, "inside")
    await _check_entry_refused(obj, "after")
    for name in ("aclose", "close"):
        close = getattr(obj, name, None)
        if callable(close):
            for _ in range(2):
                result = close()
                if inspect.isawaitable(result):
                    await result
            break


# -- PostgreSQL -----------------------------------------------------------------------------------

#: The environment variable naming the test server, and its default.
POSTGRES_DSN_VARIABLE = "EPHEMERAL_TEST_POSTGRES_DSN"
POSTGRES_DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
#: Set to ``1`` (as CI does) to fail, not skip, the database tests when the server does not answer.
POSTGRES_REQUIRE_VARIABLE = "EPHEMERAL_REQUIRE_POSTGRES"


def run_postgres_sql(dsn: str, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    """Run ``sql`` on its own short-lived autocommit connection to ``dsn``; return the rows (none for DDL).

    Blocking: call it through a thread (``anyio.to_thread.run_sync``) from async tests. Needs psycopg.
    """
    import psycopg  # imported here: only the database packages' tests need it

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def postgres_test_dsn() -> str:
    """The DSN of the PostgreSQL server for the tests, once it answered a query.

    The server is named by ``EPHEMERAL_TEST_POSTGRES_DSN`` (default
    ``postgresql://postgres@127.0.0.1:5432/test``). When it does not answer the calling test is skipped,
    saying why and how to point at one; with ``EPHEMERAL_REQUIRE_POSTGRES=1`` it fails instead. Call it
    from a session-scoped fixture. Needs pytest and psycopg.
    """
    import psycopg
    import pytest

    dsn = os.environ.get(POSTGRES_DSN_VARIABLE, POSTGRES_DEFAULT_DSN)
    try:
        run_postgres_sql(dsn, "SELECT 1")
    except psycopg.Error as error:
        message = (
            f"no PostgreSQL server for the tests ({type(error).__name__}: {str(error).strip()}). "
            f"Start one, or point the tests at one with {POSTGRES_DSN_VARIABLE}=postgresql://user@host:port/dbname"
        )
        if os.environ.get(POSTGRES_REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{message} ({POSTGRES_REQUIRE_VARIABLE}=1 requires these tests to run)", pytrace=False)
        pytest.skip(message)
    return dsn


@contextlib.contextmanager
def postgres_test_tables(dsn: str, prefix: str = "t") -> Iterator[Callable[[], str]]:
    """Yield ``new_table()``, which names a fresh table no other test or concurrent test run uses.

    The names are ``{prefix}_`` and 20 hex digits; on exit every table so named is dropped from the
    ``public`` schema.
    """
    made: list[str] = []

    def new_table() -> str:
        made.append(f"{prefix}_{uuid.uuid4().hex[:20]}")
        return made[-1]

    try:
        yield new_table
    finally:
        for name in made:
            run_postgres_sql(dsn, f'DROP TABLE IF EXISTS "public"."{name}"')


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to a server, and plays its outage.

    ``stop()`` closes every connection through it and refuses new ones, ``start()`` listens again on
    the same port. For testing what a client does when its server goes away and comes back, without touching the
    server (which other tests may share). Use it through ``tcp_proxy(host, port)``.
    """

    def __init__(self, task_group: anyio.abc.TaskGroup, host: str, port: int) -> None:
        self._task_group = task_group
        self._target = (host, port)
        self.port = 0
        """The port the proxy listens on (0 before the first ``start()``; kept across restarts)."""
        self._scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()

    @property
    def running(self) -> bool:
        """Whether the proxy listens and forwards now."""
        return self._scope is not None

    async def start(self) -> None:
        """Listen (on the same port as before, after a ``stop()``) and forward every connection."""
        if self._scope is not None:
            return
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self._scope = scope = anyio.CancelScope()
        self._stopped = stopped = anyio.Event()

        async def serve() -> None:
            try:
                with scope:
                    async with listener:
                        await listener.serve(self._forward)
            finally:
                stopped.set()

        self._task_group.start_soon(serve)

    async def stop(self) -> None:
        """Close every forwarded connection and stop listening (connections are refused until ``start()``)."""
        if self._scope is not None:
            self._scope.cancel()
            await self._stopped.wait()
            self._scope = None

    async def _forward(self, client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp(*self._target) as upstream, anyio.create_task_group() as tg:

            async def pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
                try:
                    async for chunk in source:
                        await sink.send(chunk)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass
                tg.cancel_scope.cancel()  # one side is done: close both

            tg.start_soon(pump, client, upstream)
            tg.start_soon(pump, upstream, client)


@asynccontextmanager
async def tcp_proxy(host: str, port: int) -> AsyncIterator[TcpProxy]:
    """A started ``TcpProxy`` to ``host:port`` for the block (its port is ``proxy.port``); stopped at exit.

    Its tasks run in the caller's event loop: a client in this process must use it from another thread
    (as psycopg's sync API in worker threads does) or asynchronously; clients in child processes may block.
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int in 1..65535, got {port!r}")
    async with anyio.create_task_group() as tg:
        proxy = TcpProxy(tg, host, port)
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.stop()
