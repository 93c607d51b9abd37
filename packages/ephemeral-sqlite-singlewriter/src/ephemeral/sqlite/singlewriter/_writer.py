"""SqliteSingleWriter: every write through one connection in FIFO order; concurrent, cached reads."""

from __future__ import annotations

import inspect
import itertools
import os
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from contextvars import ContextVar
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import AsyncResource

from ephemeral.core import (
    CoordinatorClosedError,
    EphemeralLruCache,
    EphemeralLruCacheOptions,
    PatternSet,
    SignalEvent,
    SignalSink,
    Subscription,
)
from ephemeral.core.lowlevel import LoopBinding, next_id, to_seconds

from . import _jobs as jobs
from ._connection import ReadPool, SqliteConnection, SqlParams, bind_params, close_quietly, open_connection
from ._options import SqliteSingleWriterOptions
from ._stats import SqliteSingleWriterStats, SqliteWriteRecord
from ._target import MEMORY, DatabaseTarget, resolve_target

__all__ = ("SqliteSingleWriter", "SqliteSingleWriterStats", "SqliteWriteRecord")

T = TypeVar("T")
_Self = TypeVar("_Self", bound="SqliteSingleWriter")


_ids = itertools.count(1)
_registry: dict[str, SqliteSingleWriter] = {}
_registry_lock = threading.RLock()  # re-entered: get_or_create holds it while _setup claims a memory name
#: The writer of each named in-memory database (guarded by ``_registry_lock``): SQLite's shared-cache
#: table locks ignore busy_timeout, so two writers on one would fail each other's reads and writes.
_memory_writers: weakref.WeakValueDictionary[str, SqliteSingleWriter] = weakref.WeakValueDictionary()
_EXTERNAL = "cache.invalidate.external"


class _ReadMark:
    """Marks the context (task, and the child tasks it starts) running a reader of ``writer``."""

    __slots__ = ("active", "writer")

    def __init__(self, writer: SqliteSingleWriter) -> None:
        self.writer = writer
        self.active = True  # False once the reader returned: a task it left behind is no longer inside it


_reads: ContextVar[tuple[_ReadMark, ...]] = ContextVar("ephemeral_sqlite_singlewriter_reads", default=())


def _cache_key(key: object, name: str = "cache_key") -> str:
    if not isinstance(key, str):
        raise TypeError(f"{name} must be a str, got {key!r}")
    if not key:
        raise ValueError(f"{name} must not be empty")
    return key


# -- the writer ---------------------------------------------------------------------------------------


class SqliteSingleWriter(AsyncResource):
    """One SQLite database: every write through one connection in FIFO order, reads alongside, cached.

    Writes (``write``, ``write_batch``, ``write_many``, ``execute_in_transaction``) queue in the order
    they are called and run one at a time on the single write connection, each in one worker-thread
    call (so a batch costs one thread hop, not one per row). A write's exception (``sqlite3.IntegrityError``
    and so on) is raised, unchanged, to its caller; later writes carry on. Reads run concurrently on
    up to ``read_connections`` pooled read connections; ``read`` caches the reader's result under a
    key (sliding expiry, longer for hot keys, one reader run however many callers miss at once),
    ``query`` does not cache. A read sees every write that completed before it started.

    The writer opens lazily on first use (or on ``async with``); ``aclose()`` (or leaving the block)
    refuses new calls, waits for every accepted write and read, then closes every connection.
    Instances belong to the event loop they are used in; the cache is not thread-safe, so call
    ``invalidate_cache`` from that loop's thread (signal-driven invalidation may come from any thread).

    Args:
        path: A file path (str or PathLike), ``":memory:"`` (a private in-memory database that the
            writer and its readers share) or a ``"Data Source=...;..."`` connection string.
        options: ``SqliteSingleWriterOptions`` (defaults when None).
        signals: A shared ``SignalSink`` to emit on; None for a private one (1000 signals, 60 s).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``path`` is empty or a connection string that cannot be used.
    """

    _registry_key: str | None

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: SqliteSingleWriterOptions | None = None,
        *,
        signals: SignalSink | None = None,
    ) -> None:
        self._setup(resolve_target(path), options, signals)

    def _setup(
        self, target: DatabaseTarget, options: SqliteSingleWriterOptions | None, signals: SignalSink | None
    ) -> None:
        if options is None:
            options = SqliteSingleWriterOptions()
        elif not isinstance(options, SqliteSingleWriterOptions):
            raise TypeError(f"options must be SqliteSingleWriterOptions or None, got {options!r}")
        if signals is not None and not isinstance(signals, SignalSink):
            raise TypeError(f"signals must be a SignalSink or None, got {signals!r}")
        self._target = target
        self._options = options
        self._id = f"sqlite:{next(_ids)}"
        self._signals = signals if signals is not None else SignalSink()
        self._emit = self._signals.emit
        self._rate = options.sample_rate
        self._phase = 1 % options.sample_rate
        self._calls = 0
        self._lock = anyio.Lock()  # FIFO: writes run in the order they were called
        self._writer: sqlite3.Connection | None = None
        self._pool = ReadPool(
            options.read_connections,
            lambda: open_connection(target, options, read=True)[0],
            lambda: self._emit("connection.open.read"),
        )
        self._cache: EphemeralLruCache[str, Any] = EphemeralLruCache(
            EphemeralLruCacheOptions(
                default_ttl=options.default_cache_duration,
                hot_key_extension=options.hot_key_extension,
                hot_access_threshold=options.hot_access_threshold,
                max_size=options.cache_size_limit,
                emit_signals=False,  # the writer emits the cache signals it documents (``cache.hit:{key}``, ...)
            )
        )
        self._records: deque[SqliteWriteRecord] = deque(maxlen=options.max_tracked_writes)
        self._subscriptions: set[Subscription] = set()
        self._write_ids = 0
        self._writes = 0
        self._write_errors = 0
        self._rows_written = 0
        self._pending_writes = 0
        self._reads = 0
        self._read_errors = 0
        self._queries = 0
        self._loads = 0
        self._active_reads = 0
        self._own_events: list[SignalEvent[Any]] = []  # the invalidation signals being emitted by this writer
        self._loop: anyio.lowlevel.EventLoopToken | None = None  # the event loop of the first use
        self._closing = False
        self._finishing = False
        self._closed: anyio.Event | None = None
        self._registry_key = None
        self._claim_memory_name()

    def _claim_memory_name(self) -> None:
        target = self._target
        if not target.is_memory or target.identity == MEMORY:
            return  # a file, or a private in-memory database with a name of its own
        with _registry_lock:
            holder = _memory_writers.get(target.identity)
            if holder is not None and not holder._finishing:
                raise ValueError(
                    f"path: the in-memory database {target.identity!r} already has a writer ({holder._id}); "
                    "share that one (SqliteSingleWriter.get_or_create gives every caller the same writer) "
                    "or close it first"
                )
            _memory_writers[target.identity] = self

    def _release_memory_name(self) -> None:
        with _registry_lock:
            if _memory_writers.get(self._target.identity) is self:
                del _memory_writers[self._target.identity]

    # -- sharing ------------------------------------------------------------------------------

    @classmethod
    def get_or_create(
        cls: type[_Self], path: str | os.PathLike[str], options: SqliteSingleWriterOptions | None = None
    ) -> _Self:
        """The process-wide writer of ``path`` (its resolved absolute path), created on first request.

        Every caller asking for the same database gets the same instance, so all their writes share
        one queue. Closing it deregisters it; a later call creates a fresh one. ``":memory:"`` names one
        shared in-memory database. The writer belongs to the event loop that first uses it: close it
        before that loop ends (a later ``anyio.run`` asking for it gets ``RuntimeError``).

        Args:
            path: As for the constructor.
            options: The options the writer must have; None accepts those of an existing writer.

        Raises:
            ValueError: A writer for this database exists with different options (they cannot
                change once it runs), or ``path`` cannot be used.
            TypeError: An argument has the wrong type.
            RuntimeError: The shared writer of this database was used in another event loop and is
                still open.
        """
        target = resolve_target(path)
        if options is not None and not isinstance(options, SqliteSingleWriterOptions):
            raise TypeError(f"options must be SqliteSingleWriterOptions or None, got {options!r}")
        with _registry_lock:
            existing = _registry.get(target.identity)
            if existing is not None:
                if options is not None and options != existing._options:
                    raise ValueError(
                        f"options: the shared writer of {target.identity!r} already runs with {existing._options!r}; "
                        "close it first or ask with the same options (or None)"
                    )
                existing._check_loop()
                return cast(_Self, existing)
            writer = cls.__new__(cls)
            writer._setup(target, options, None)
            writer._registry_key = target.identity
            _registry[target.identity] = writer
            return writer

    def _deregister(self) -> None:
        key = self._registry_key
        if key is not None:
            with _registry_lock:
                if _registry.get(key) is self:
                    del _registry[key]

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        await self.open()
        return self

    async def open(self) -> None:
        """Open the write connection now (it otherwise opens on first use); errors surface here.

        Raises:
            CoordinatorClosedError: The writer has been closed (an ``anyio.ClosedResourceError`` too).
            sqlite3.Error: The database cannot be opened or set up.
        """
        self._check_accepting()
        self._check_loop()
        if self._writer is None:
            async with self._lock:
                self._check_accepting()  # closing may have begun (and finished) while this waited
                if self._writer is None:
                    await self._open_writer()

    async def _open_writer(self) -> sqlite3.Connection:
        """Open the write connection; the caller holds the lock."""
        connection, applied = await anyio.to_thread.run_sync(
            partial(open_connection, self._target, self._options, read=False)
        )
        self._writer = connection
        for signal in applied:
            self._emit(signal)
        self._emit("connection.open.write")
        return connection

    async def aclose(self) -> None:
        """Refuse new calls, let every accepted write and read finish, then close every connection.

        Also stops signal-driven invalidation, empties the cache and deregisters a shared writer.
        Idempotent; every caller returns once the connections are closed. The wait for the accepted
        calls can be cancelled (``anyio.move_on_after`` around ``aclose`` bounds it): the writer stays
        closed to new calls, and the last accepted call to finish closes the connections. The closing
        itself is shielded from cancellation, so the connections are closed whatever happens.

        Raises:
            RuntimeError: Called from inside a read of this writer (the read would wait for the close,
                which waits for the read), or from another event loop while calls are in flight there.
        """
        if self._inside_read():
            raise RuntimeError(
                f"aclose() of SqliteSingleWriter {self._id} was called from inside one of its reads: the close "
                "would wait for that read to finish, and the read for the close; close it after the reader returns"
            )
        if self._closed is not None and self._closed.is_set():
            return
        # A writer left open by an event loop that has ended can still be closed from another one,
        # as long as no call of its own loop is running (then there is nothing to wait for).
        other_loop = self._loop is not None and self._loop != _current_loop()
        if other_loop and not self._idle():
            self._check_loop()  # raises: calls are still running in the writer's own loop
        if not self._closing:
            self._closing = True
            self._deregister()
        if self._closed is None or other_loop:
            self._closed = anyio.Event()
        closed = self._closed
        if self._idle():
            await self._finish(use_lock=not other_loop)
        await closed.wait()

    def _idle(self) -> bool:
        return not self._active_reads and not self._pending_writes

    async def _after_call(self) -> None:
        """Once the last accepted call of a closing writer has finished, close the connections."""
        if self._closing and self._idle():
            await self._finish()

    async def _finish(self, use_lock: bool = True) -> None:
        """Close every connection (once, shielded from cancellation) and tell the waiting closers."""
        if self._finishing:
            return
        self._finishing = True
        try:
            with anyio.CancelScope(shield=True):
                async with self._lock if use_lock else nullcontext():  # open() or flush_writes may hold it
                    for subscription in list(self._subscriptions):
                        subscription.close()
                    connections = self._pool.detach_idle()
                    if self._writer is not None:
                        connections.append(self._writer)
                        self._writer = None
                    self._cache.clear()
                    await anyio.to_thread.run_sync(close_quietly, connections)
        finally:
            self._release_memory_name()
            if self._closed is not None:
                self._closed.set()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` has begun: new calls are refused."""
        return self._closing

    def _check_accepting(self) -> None:
        if self._closing:
            raise CoordinatorClosedError(f"SqliteSingleWriter {self._id} is closed")

    def _check_loop(self) -> None:
        """Bind the writer to the event loop of its first use; refuse use from any other loop."""
        try:
            loop = _current_loop()
        except RuntimeError:
            return  # get_or_create outside any event loop: the first use binds it
        if self._loop is None:
            self._loop = loop
        elif loop != self._loop:
            shared = " (the shared writer from get_or_create)" if self._registry_key is not None else ""
            raise RuntimeError(
                f"SqliteSingleWriter {self._id}{shared} of {self._target.identity!r} belongs to the event loop "
                "that first used it, and this is another one; close it (await writer.aclose()) before that "
                "loop ends, so that the next run gets a fresh writer"
            )

    def _inside_read(self) -> bool:
        """Whether this task (or the task that started it) is running a reader of this writer."""
        return any(mark.writer is self and mark.active for mark in _reads.get())

    def _refuse_in_memory_read(self, call: str) -> None:
        # With an in-memory database a running reader holds the writer's turn (the lock): a call that
        # waits for that turn from inside the reader (or a task it started) would wait forever.
        if self._target.is_memory and self._inside_read():
            raise RuntimeError(
                f"{call} on the in-memory SqliteSingleWriter {self._id} was called from inside one of its "
                "reads, which holds the writer's turn until it returns: it would wait forever. Call it after "
                "the reader returns"
            )

    # -- signals ------------------------------------------------------------------------------

    def _sampled(self) -> bool:
        calls = self._calls = self._calls + 1
        return calls % self._rate == self._phase

    def _emit_own(self, signal: str, key: str) -> None:
        """Emit an invalidation signal that this writer's own subscriptions must ignore (that event only).

        Subscribers run inside ``emit``, so while it runs the event is on ``_own_events``; a signal some
        subscriber emits in reaction (a cascade) is another event, and this writer does react to it.
        """
        event: SignalEvent[Any] = SignalEvent(signal, next_id(), key, self._signals.now())
        self._own_events.append(event)
        try:
            self._emit(event)
        finally:
            self._own_events.pop()

    # -- writing ------------------------------------------------------------------------------

    async def _submit(self, kind: str, job: Callable[[sqlite3.Connection], tuple[T, int]]) -> T:
        """Queue ``job`` behind every write already accepted and run it on the write connection."""
        self._check_accepting()
        self._check_loop()
        self._refuse_in_memory_read(kind)
        write_id = self._write_ids = self._write_ids + 1
        sampled = self._sampled()
        key = str(write_id)
        self._pending_writes += 1
        try:
            async with self._lock:
                try:
                    connection = self._writer if self._writer is not None else await self._open_writer()
                except Exception as open_error:
                    self._failed(write_id, kind, 0.0, open_error)
                    raise
                if sampled:
                    self._emit(f"{kind}.start", key)
                result, rows, duration, failure = await anyio.to_thread.run_sync(jobs.timed, job, connection)
                if failure is not None:
                    self._failed(write_id, kind, duration, failure)
                    raise failure
                self._writes += 1
                self._rows_written += rows
                self._records.append(SqliteWriteRecord(write_id, kind, rows, duration, None))
                if sampled:
                    self._emit(f"{kind}.done:{rows}rows:{round(duration * 1000)}ms", key)
                return cast(T, result)
        finally:
            self._pending_writes -= 1
            await self._after_call()

    def _failed(self, write_id: int, kind: str, duration: float, error: Exception) -> None:
        name = type(error).__name__
        self._write_errors += 1
        self._records.append(SqliteWriteRecord(write_id, kind, 0, duration, name))
        self._emit(f"{kind}.error:{name}", str(write_id))

    async def write(self, sql: str, params: SqlParams = None) -> int:
        """Run one statement on the write connection, after every write called before it.

        Args:
            sql: One SQL statement, with ``?`` or ``:name`` placeholders.
            params: A sequence (``?``) or a mapping (``:name``), or None.

        Returns:
            The rows it inserted, updated or deleted (0 for statements that change none); with
            ``RETURNING`` too (the returned rows are stepped through and dropped). Rows changed by
            triggers are not counted.

        Raises:
            TypeError: ``sql`` is not a str, or ``params`` neither a sequence, a mapping nor None.
            CoordinatorClosedError: The writer is closed (an ``anyio.ClosedResourceError`` too).
            sqlite3.Error: Whatever SQLite raised (``IntegrityError`` for a violated constraint, ...).
            RuntimeError: Called from inside a read of an in-memory writer (it would wait forever), or
                from an event loop other than the writer's.
        """
        jobs.check_sql(sql)
        return await self._submit(jobs.WRITE, partial(jobs.write_one, sql, bind_params(params)))

    async def write_batch(self, items: Iterable[tuple[str, SqlParams]], transactional: bool = True) -> int:
        """Run several statements in one turn of the writer (one worker-thread call).

        Args:
            items: ``(sql, params)`` pairs, run in order.
            transactional: True: all in one transaction, so a failing item rolls every item back.
                False: each item commits on its own; items before a failing one stay.

        Returns:
            The total rows changed; 0 for no items (nothing is queued then).

        Raises:
            TypeError: An item is not a ``(sql, params)`` pair (checked before anything runs).
            sqlite3.Error: The first item that failed, unchanged.
        """
        if not isinstance(transactional, bool):
            raise TypeError(f"transactional must be a bool, got {transactional!r}")
        batch: list[tuple[str, jobs.Bound]] = []
        for index, item in enumerate(items):
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(f"items[{index}] must be a (sql, params) pair, got {item!r}")
            sql, params = item
            jobs.check_sql(sql, f"items[{index}] sql")
            batch.append((sql, bind_params(params, f"items[{index}] params")))
        if not batch:
            return 0
        return await self._submit(jobs.BATCH, partial(jobs.write_batch, batch, transactional))

    async def write_many(self, sql: str, rows_params: Iterable[SqlParams]) -> int:
        """Run one statement for each parameter set (``executemany``), all in one transaction and one thread call.

        Returns:
            The total rows changed; 0 for no parameter sets (nothing is queued then).

        Raises:
            TypeError: ``sql`` is not a str or a parameter set is not a sequence or mapping.
            sqlite3.Error: Whatever SQLite raised; every row is rolled back then.
        """
        jobs.check_sql(sql)
        bound = [bind_params(params, f"rows_params[{index}]") for index, params in enumerate(rows_params)]
        if not bound:
            return 0
        return await self._submit(jobs.MANY, partial(jobs.write_many, sql, bound))

    async def execute_in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` in the writer's thread inside BEGIN IMMEDIATE ... COMMIT.

        ``work`` is a plain (not async) function of the raw ``sqlite3.Connection``; it runs in a worker
        thread with the database to itself among this writer's calls. If it raises, the transaction is
        rolled back and the exception re-raised to the caller.

        Returns:
            What ``work`` returned.

        Raises:
            TypeError: ``work`` is not callable, or is async.
            Exception: Whatever ``work`` (or COMMIT) raised.
        """
        if not callable(work):
            raise TypeError(f"work must be callable, got {work!r}")
        if inspect.iscoroutinefunction(work):
            raise TypeError(jobs.ASYNC_WORK)
        return await self._submit(jobs.TRANSACTION, partial(jobs.transaction, work))

    async def execute_script(self, sql: str, *, transactional: bool = True) -> int:
        """Run several SQL statements separated by ``;`` (``sqlite3``'s ``executescript``) in one turn of the writer.

        For schema scripts and migrations. No parameters: a script's values are part of its text.

        Args:
            sql: The statements.
            transactional: True: all in one transaction (BEGIN IMMEDIATE ... COMMIT), so a failing
                statement rolls every one back. False: run as written, for scripts that manage their own
                transactions or hold statements a transaction refuses (``VACUUM``, ``PRAGMA journal_mode``);
                statements before a failing one then stay, and a transaction the script leaves open is
                rolled back (``sqlite3.ProgrammingError``).

        Returns:
            The rows the statements inserted, updated or deleted (``total_changes``, triggers included).

        Raises:
            TypeError: ``sql`` is not a str, or ``transactional`` not a bool.
            ValueError: ``sql`` is blank.
            sqlite3.Error: Whatever SQLite raised.
        """
        jobs.check_sql(sql)
        if not isinstance(transactional, bool):
            raise TypeError(f"transactional must be a bool, got {transactional!r}")
        return await self._submit(jobs.SCRIPT, partial(jobs.script, sql, transactional))

    async def write_and_invalidate(self, sql: str, params: SqlParams = None, cache_keys: Iterable[str] = ()) -> int:
        """``write(sql, params)``, then drop each of ``cache_keys`` from the read cache.

        A read of one of those keys that was running during the write does not cache its result.

        Returns:
            The rows changed.

        Raises:
            TypeError: ``cache_keys`` is a str (give a list) or holds a non-str.
            sqlite3.Error: The write failed; nothing is invalidated then.
        """
        if isinstance(cache_keys, str):
            raise TypeError("cache_keys must be an iterable of keys, not a str (use [key])")
        keys = [_cache_key(key, "cache_keys item") for key in cache_keys]
        rows = await self.write(sql, params)
        for key in keys:
            self.invalidate_cache(key)
        return rows

    async def flush_writes(self) -> None:
        """Wait until every write accepted before this call has finished (successfully or not).

        Raises:
            RuntimeError: Called from inside a read of an in-memory writer (it would wait forever).
        """
        self._check_loop()
        self._refuse_in_memory_read("flush_writes")
        sampled = self._sampled()
        if sampled:
            self._emit("write.flush.start")
        async with self._lock:
            pass
        if sampled:
            self._emit("write.flush.done")

    # -- reading ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        self._active_reads += 1
        try:
            yield
        finally:
            self._active_reads -= 1
            await self._after_call()

    def _read_guard(self) -> AbstractAsyncContextManager[object]:
        # SQLite's shared cache (how the writer and its readers share an in-memory database) locks
        # whole tables and has no WAL: a read beside a write fails with "database table is locked".
        # In-memory reads therefore take their turn with the writes.
        return self._lock if self._target.is_memory else nullcontext()

    async def _run_reader(self, reader: Callable[[SqliteConnection], Awaitable[T]]) -> T:
        self._refuse_in_memory_read("a read")
        if self._writer is None:  # the writer creates the database, and keeps an in-memory one alive
            async with self._lock:
                if self._writer is None:
                    await self._open_writer()
        async with self._read_guard(), self._pool.connection() as connection:
            mark = _ReadMark(self)
            token = _reads.set((*_reads.get(), mark))
            try:
                result = reader(connection)
                if not inspect.isawaitable(result):
                    raise TypeError(f"reader must be an async function of the connection, it returned {result!r}")
                return await result
            finally:
                mark.active = False
                _reads.reset(token)

    async def read(
        self,
        cache_key: str,
        reader: Callable[[SqliteConnection], Awaitable[T]],
        sliding_expiration: float | timedelta | None = None,
    ) -> T:
        """The cached result for ``cache_key``, or ``await reader(connection)`` run and cached on a miss.

        Concurrent misses of one key run the reader once and share its result (or its exception; nothing
        is cached then). A hit slides the entry's expiry; a key hit ``hot_access_threshold`` times
        lives ``hot_key_extension``. A result read while the key was invalidated is returned but not
        cached, so the cache never keeps a value older than the invalidation.

        Args:
            cache_key: The key (``"items:count"``, ``"users:42"``, ...).
            reader: ``async def reader(connection: SqliteConnection) -> result``.
            sliding_expiration: The entry's time to live after each access (default: the options').

        Raises:
            TypeError: ``cache_key`` is not a str, or ``reader`` not callable.
            ValueError: ``cache_key`` is empty or ``sliding_expiration`` not positive.
            CoordinatorClosedError: The writer is closed (an ``anyio.ClosedResourceError`` too).
            Exception: Whatever the reader raised.
        """
        self._check_accepting()
        key = _cache_key(cache_key)
        if not callable(reader):
            raise TypeError(f"reader must be an async function of the connection, got {reader!r}")
        ttl = None if sliding_expiration is None else to_seconds(sliding_expiration, "sliding_expiration")
        self._reads += 1
        sampled = self._sampled()
        cache = self._cache
        if key in cache:
            found, value = cache.try_get(key)  # no await between the check and the hit
            if found:
                if sampled:
                    self._emit(f"cache.hit:{key}", key)
                return cast(T, value)
        self._check_loop()
        if sampled:
            self._emit(f"cache.miss:{key}", key)
        loaded = False

        async def load(_: str) -> T:
            nonlocal loaded
            loaded = True
            return await self._load(key, reader, sampled)

        async with self._reading():
            value = await cache.get_or_add(key, load, ttl=ttl)
        if loaded and key in cache:  # stored: no invalidation came while the reader ran
            self._emit(f"cache.set:{key}", key)
        return cast(T, value)

    async def _load(self, key: str, reader: Callable[[SqliteConnection], Awaitable[T]], sampled: bool) -> T:
        self._loads += 1
        if sampled:
            self._emit(f"read.start:{key}", key)
        try:
            value = await self._run_reader(reader)
        except Exception as error:
            self._read_errors += 1
            self._emit(f"read.error:{type(error).__name__}", key)
            raise
        if sampled:
            self._emit(f"read.done:{key}", key)
        return value

    async def query(self, reader: Callable[[SqliteConnection], Awaitable[T]]) -> T:
        """Run ``await reader(connection)`` on a read connection, without caching.

        Raises:
            TypeError: ``reader`` is not callable.
            CoordinatorClosedError: The writer is closed (an ``anyio.ClosedResourceError`` too).
            Exception: Whatever the reader raised.
        """
        self._check_accepting()
        if not callable(reader):
            raise TypeError(f"reader must be an async function of the connection, got {reader!r}")
        self._check_loop()
        self._queries += 1
        sampled = self._sampled()
        if sampled:
            self._emit("query.start")
        async with self._reading():
            try:
                value = await self._run_reader(reader)
            except Exception as error:
                self._read_errors += 1
                self._emit(f"query.error:{type(error).__name__}")
                raise
        if sampled:
            self._emit("query.done")
        return value

    # -- the cache ----------------------------------------------------------------------------

    def invalidate_cache(self, key: str) -> bool:
        """Drop ``key`` from the read cache and emit ``cache.invalidate:{key}``.

        A read of ``key`` running now still returns its result to its callers but does not cache it.

        Returns:
            Whether a live entry was removed.
        """
        key = _cache_key(key, "key")
        removed = self._cache.invalidate(key)
        self._emit_own(f"cache.invalidate:{key}", key)
        return removed

    def enable_signal_driven_invalidation(
        self, sink: SignalSink, patterns: Iterable[str] | str = ("cache.invalidate:*",)
    ) -> Subscription:
        """Invalidate cache keys named by signals on ``sink``, as they are emitted (a subscription; no polling).

        A signal whose name matches ``patterns`` invalidates the key after its first ``:``
        (``cache.invalidate:users:42`` -> ``users:42``), or the signal's ``key`` when the name has no
        ``:``, and the writer emits ``cache.invalidate.external:{key}``. The signals may be emitted
        from any thread; the invalidation runs on the loop this method was called from. The writer
        ignores each invalidation signal it emits itself (that very event: a signal a subscriber emits
        in reaction to it is acted on) and every ``cache.invalidate.external:*`` signal (another
        writer's report of what it did), so writers sharing a sink never echo each other.

        Args:
            sink: The sink to listen to (it may be the writer's own).
            patterns: Glob patterns (a comma-separated str or an iterable of them).

        Returns:
            A ``Subscription``: ``close()`` it to stop. Closing the writer stops it too.

        Raises:
            TypeError: ``sink`` is not a SignalSink.
            ValueError: ``patterns`` is empty.
            RuntimeError: Called outside an event loop.
        """
        self._check_accepting()
        self._check_loop()
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        wanted = PatternSet(patterns)
        if not wanted:
            raise ValueError("patterns must name at least one signal pattern")
        binding = LoopBinding()

        def on_signal(event: SignalEvent[Any]) -> None:
            name, _, rest = event.signal.partition(":")
            if (
                self._closing
                or name == _EXTERNAL
                or not wanted.matches(event.signal)
                or any(own is event for own in self._own_events)
            ):
                return
            key = rest or event.key
            if key:
                binding.call(partial(self._invalidate_external, key))

        inner = sink.subscribe(on_signal)

        def remove() -> None:
            inner.close()
            self._subscriptions.discard(subscription)

        subscription = Subscription(remove)
        self._subscriptions.add(subscription)
        return subscription

    def _invalidate_external(self, key: str) -> None:
        if self._closing:
            return
        self._cache.invalidate(key)
        self._emit_own(f"cache.invalidate.external:{key}", key)

    # -- observing ----------------------------------------------------------------------------

    def get_signals(self, pattern: str | None = None) -> list[SignalEvent[Any]]:
        """The live signals on the writer's sink, oldest first; only those matching the glob ``pattern`` if given.

        On a shared sink these include the signals others emitted on it.
        """
        return self._signals.sense(pattern)

    def get_write_snapshot(self) -> list[SqliteWriteRecord]:
        """The last ``max_tracked_writes`` finished write calls, oldest first."""
        return list(self._records)

    def get_stats(self) -> SqliteSingleWriterStats:
        """The writer's counters now."""
        cache = self._cache.get_stats()
        return SqliteSingleWriterStats(
            writes=self._writes,
            write_errors=self._write_errors,
            rows_written=self._rows_written,
            pending_writes=self._pending_writes,
            reads=self._reads,
            read_errors=self._read_errors,
            queries=self._queries,
            loads=self._loads,
            cache_hits=cache.hits,
            cache_misses=cache.misses,
            cache_entries=cache.size,
            read_connections=self._pool.open_count,
        )

    @property
    def options(self) -> SqliteSingleWriterOptions:
        """The options the writer runs with."""
        return self._options

    @property
    def signals(self) -> SignalSink:
        """The sink the writer emits on."""
        return self._signals

    @property
    def writer_id(self) -> str:
        """A name unique in this process, ``"sqlite:{n}"``."""
        return self._id

    @property
    def database(self) -> str:
        """The resolved absolute path of the database file, or a name for an in-memory database."""
        return self._target.identity

    @property
    def is_memory(self) -> bool:
        """Whether the database lives in memory (and only as long as the writer is open)."""
        return self._target.is_memory

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open" if self._writer is not None else "not yet opened"
        return f"<SqliteSingleWriter {self._id} {self._target.identity!r} {state}>"


def _current_loop() -> anyio.lowlevel.EventLoopToken:
    """The running event loop's token; RuntimeError outside one."""
    try:
        return anyio.lowlevel.current_token()
    except Exception as error:  # anyio raises a backend-specific error (sniffio's) outside a loop
        raise RuntimeError("no running event loop") from error
