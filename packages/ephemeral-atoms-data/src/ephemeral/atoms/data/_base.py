"""The storage atom base: one ordered writer with batched transactions, concurrent reads, signals."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import anyio
from anyio.abc import TaskGroup

from ephemeral.core import (
    AtomStats,
    CoordinatorClosedError,
    EphemeralOptions,
    EphemeralWorkCoordinator,
    SignalEvent,
    SignalSink,
    StringPatternMatcher,
    Subscription,
    TypedSignalSink,
)
from ephemeral.core.lowlevel import (
    BackoffPolicy,
    LoopBinding,
    TaskGroupOwner,
    Wakeup,
    owned_task_group,
    to_seconds,
)

from ._config import DataStorageConfig
from ._serializer import DataSerializer, JsonSerializer

__all__ = ("DataStorageAtomBase", "DataStorageStats", "IDataStorageAtom", "StorageFullError", "WriteItem")

K = TypeVar("K")
V = TypeVar("V")
K_contra = TypeVar("K_contra", contravariant=True)
V_co = TypeVar("V_co")
R = TypeVar("R")

_log = logging.getLogger("ephemeral.atoms.data")

#: A write as the backends see it: (key, stored text), text None meaning "delete the key".
WriteItem = tuple[str, "str | None"]

_RETRY_BACKOFF = BackoffPolicy(0.05, max_delay=2.0)


def _unencodable(text: str) -> int | None:
    """The position of the first lone surrogate in ``text`` (which UTF-8 cannot encode), or None."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


class StorageFullError(RuntimeError):
    """``enqueue_save``/``enqueue_delete`` found ``max_pending_writes`` writes still waiting."""


@runtime_checkable
class IDataStorageAtom(Protocol[K_contra, V_co]):
    """What every storage atom offers: keyed values saved, loaded, deleted and checked."""

    @property
    def config(self) -> DataStorageConfig:
        """The atom's configuration."""
        ...

    def enqueue_save(self, key: K_contra, value: V_co) -> None:
        """Accept a save without waiting for it."""
        ...

    async def save(self, key: K_contra, value: V_co) -> None:
        """Save ``value`` under ``key`` and wait until it is stored."""
        ...

    async def load(self, key: K_contra) -> V_co | None:
        """The value stored under ``key``, or None."""
        ...

    async def delete(self, key: K_contra) -> None:
        """Remove ``key`` (no error when absent) and wait until it is gone."""
        ...

    async def exists(self, key: K_contra) -> bool:
        """Whether a value is stored under ``key``."""
        ...


class DataStorageStats(NamedTuple):
    """A storage atom's counters (writes are saves and deletes)."""

    pending_writes: int
    written: int
    failed_writes: int
    batches: int
    largest_batch: int
    retries: int
    loads: int


class _Outage:
    """When the current run of transient failures (of writes, or of reads) began and last failed.

    ``spent`` holds the error that used up the budget until the writer has failed the backlog with it.
    """

    __slots__ = ("down_since", "last_failure", "spent")

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.last_failure = 0.0
        self.spent: BaseException | None = None


class _Write:
    __slots__ = ("error", "key", "text", "waited")

    def __init__(self, key: str, text: str | None) -> None:
        self.key = key
        self.text = text
        self.error: BaseException | None = None
        self.waited = False


class _Batch:
    """Writes stored in one transaction, or (``clear``) an ordered clear of the whole store."""

    __slots__ = ("clear", "done", "error", "removed", "writes")

    def __init__(self, clear: bool = False) -> None:
        self.writes: list[_Write] = []
        self.clear = clear
        self.done = anyio.Event()
        self.error: BaseException | None = None
        self.removed = 0


class DataStorageAtomBase(TaskGroupOwner, Generic[K, V]):
    """The shared machinery of the storage atoms; a backend implements the ``_open`` .. ``_clear`` hooks.

    Writes (saves and deletes) go through one writer, in the order they were accepted. The writes that
    wait while the writer is busy are stored together in one transaction (up to ``batch_size``), so
    throughput grows with load instead of paying one transaction per write. A load or ``exists`` sees
    every write accepted before it, even one not yet written. Reads run beside the writer, at most
    ``max_concurrency`` at once. A batch that fails with a transient error (a lost connection) is
    retried with backoff for up to ``write_retry_timeout``, after which the whole queued backlog fails at
    once (not one batch per attempt); one that fails for another reason is
    retried write by write, so only the bad write fails. Leaving ``async with`` (also by an exception
    or a cancellation) writes everything accepted before the atom closes.

    Args:
        sink: Where signals go and come from: a ``SignalSink``, or a ``TypedSignalSink`` to carry values
            as payloads (needed for saves requested by signal). None: a private sink.
        config: Names, signal prefixes and pacing.
        value_type: The type loads rebuild with the default JSON serializer (a dataclass, a pydantic
            model, ...). None: plain JSON values.
        serializer: How values become text and back (``dumps``/``loads``); JSON when None.
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[Any] | None,
        config: DataStorageConfig,
        *,
        value_type: Any = None,
        serializer: DataSerializer[V] | None = None,
    ) -> None:
        if sink is not None and not isinstance(sink, (SignalSink, TypedSignalSink)):
            raise TypeError(f"sink must be a SignalSink, a TypedSignalSink or None, got {sink!r}")
        if not isinstance(config, DataStorageConfig):
            raise TypeError(f"config must be a DataStorageConfig, got {config!r}")
        if serializer is not None and value_type is not None:
            raise TypeError("give value_type (for the JSON serializer) or serializer, not both")
        if serializer is not None and not isinstance(serializer, DataSerializer):
            raise TypeError(f"serializer must have dumps(value) -> str and loads(text), got {serializer!r}")
        self._typed = sink if isinstance(sink, TypedSignalSink) else None
        untyped = sink.untyped if isinstance(sink, TypedSignalSink) else (sink if sink is not None else SignalSink())
        self._sink = untyped
        self._config = config
        self._serializer: DataSerializer[V] = serializer if serializer is not None else JsonSerializer(value_type)
        self._batch_size = config.batch_size if config.enable_batching else 1
        self._linger = to_seconds(config.batch_timeout, "batch_timeout", allow_zero=True)
        self._retry_timeout = to_seconds(config.write_retry_timeout, "write_retry_timeout", allow_zero=True)
        # Loads asked for by signal: bounded, at most max_concurrency at once.
        self._loader: EphemeralWorkCoordinator[str] = EphemeralWorkCoordinator(
            self._load_for_signal, EphemeralOptions(max_concurrency=config.max_concurrency, signals=untyped)
        )
        self._queue: deque[_Batch] = deque()  # batches and clears not yet started, in order
        self._writer_wakeup = Wakeup()  # the writer's sleep while nothing is queued
        self._closing = False
        self._open_batch: _Batch | None = None  # the newest batch, still taking writes
        self._running: _Batch | None = None
        self._pending: dict[str, _Write] = {}  # key -> its newest write not yet stored
        self._unwritten = 0
        self._room: anyio.Event | None = None
        self._readers: anyio.CapacityLimiter | None = None
        self._subscriptions: list[Subscription] = []
        self._write_outage = _Outage()
        self._read_outage = _Outage()
        self._filled: anyio.Event | None = None  # set when the open batch fills while the writer lingers
        self._clears_pending = 0  # clears accepted and not yet run: reads then see only later writes
        self._closed = False
        self._written = self._failed = self._batches = self._largest = self._retries = self._loads = 0

    # -- what a backend implements ------------------------------------------------------------------

    async def _open(self) -> None:
        """Connect and create what the store needs (called once, on entry)."""

    async def _close(self) -> None:
        """Release connections (called once, after the last write)."""

    async def _write(self, items: Sequence[WriteItem]) -> None:
        """Store ``items`` in order, all or none (text None deletes the key)."""
        raise NotImplementedError

    async def _read(self, key: str) -> str | None:
        """The text stored under ``key``, or None."""
        raise NotImplementedError

    async def _contains(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return await self._read(key) is not None

    async def _count(self) -> int:
        """How many keys are stored."""
        raise NotImplementedError

    async def _keys(self) -> list[str]:
        """Every stored key, in order."""
        raise NotImplementedError

    async def _clear(self) -> int:
        """Remove every key; return how many were removed."""
        raise NotImplementedError

    def _is_transient(self, error: BaseException) -> bool:
        """Whether ``error`` may pass on retry (a lost connection) rather than fail again."""
        return False

    def _check_key(self, key: str) -> None:
        """Raise ValueError when ``key`` cannot be stored by this backend."""

    def _check_text(self, key: str, text: str) -> None:
        """Raise ValueError when the serialized value of ``key`` cannot be stored by this backend."""

    # -- lifecycle ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _outer_context(self) -> AsyncIterator[None]:
        await self._open()
        try:
            # The writer outlives the block: accepted writes are stored even when it failed or was
            # cancelled (each batch runs shielded, so the writer finishes the queue before it stops).
            async with owned_task_group() as writer:
                writer.start_soon(self._writer_loop)
                try:
                    async with self._loader:  # loads asked for by signal: drained, or cancelled on error
                        yield
                finally:
                    with anyio.CancelScope(shield=True):
                        await self.flush()
        finally:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _on_enter(self, tg: TaskGroup) -> None:
        self._readers = anyio.CapacityLimiter(self._config.max_concurrency)
        self._subscribe()
        self._emit(f"initialized.data.{self._config.database_name}")

    def _on_close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()
        self._closing = True
        self._wake_writer()

    @property
    def config(self) -> DataStorageConfig:
        """The atom's configuration."""
        return self._config

    @property
    def serializer(self) -> DataSerializer[V]:
        """How values become text and back."""
        return self._serializer

    # -- writes ---------------------------------------------------------------------------------

    def _key(self, key: K) -> str:
        if key is None:
            raise TypeError("key must not be None")
        text = key if isinstance(key, str) else str(key)
        if not text:
            raise ValueError("key must not be empty")
        position = _unencodable(text)
        if position is not None:
            raise ValueError(
                f"key {text[:80]!r} holds a lone surrogate at position {position}, which UTF-8 (and so no store) "
                "can encode"
            )
        self._check_key(text)
        return text

    def _make_write(self, key: K, value: V) -> _Write:
        text_key = self._key(key)
        try:
            text = self._serializer.dumps(value)
        except TypeError as error:
            raise TypeError(f"value for key {text_key!r} cannot be stored: {error}") from error
        except ValueError as error:
            raise ValueError(f"value for key {text_key!r} cannot be stored: {error}") from error
        if not isinstance(text, str):
            raise TypeError(f"the serializer's dumps must return str, got {type(text).__name__}")
        position = _unencodable(text)
        if position is not None:
            raise ValueError(
                f"value for key {text_key[:80]!r} cannot be stored: its text holds a lone surrogate at position "
                f"{position} ({text[max(0, position - 20) : position + 1]!r}), which UTF-8 cannot encode"
            )
        self._check_text(text_key, text)
        return _Write(text_key, text)

    def _accept(self, write: _Write) -> _Batch:
        self._check_open()
        batch = self._open_batch
        if batch is None or len(batch.writes) >= self._batch_size:
            batch = self._open_batch = _Batch()
            self._queue_batch(batch)
        batch.writes.append(write)
        self._pending[write.key] = write
        self._unwritten += 1
        filled = self._filled
        if filled is not None and len(batch.writes) >= self._batch_size:
            filled.set()
        return batch

    def _check_open(self) -> None:
        if self._readers is None:
            raise self._not_entered("storage", "storage")
        if self._closing:
            raise CoordinatorClosedError(f"{type(self).__name__} is closed; no new writes are accepted")

    def _queue_batch(self, batch: _Batch) -> None:
        self._queue.append(batch)
        self._wake_writer()

    def _wake_writer(self) -> None:
        self._writer_wakeup.wake()

    def _check_room(self) -> None:
        if self._unwritten >= self._config.max_pending_writes:
            raise StorageFullError(
                f"{self._config.max_pending_writes} writes to {self._config.database_name!r} are waiting "
                "(max_pending_writes); await save() waits for room instead"
            )

    def enqueue_save(self, key: K, value: V) -> None:
        """Accept a save and return at once; it is stored in order with every other write.

        Raises:
            TypeError, ValueError: The key or the value cannot be stored (nothing was accepted).
            StorageFullError: ``max_pending_writes`` writes are already waiting.
            CoordinatorClosedError: The atom is closed.
        """
        write = self._make_write(key, value)
        self._check_room()
        self._accept(write)

    def enqueue_delete(self, key: K) -> None:
        """Accept a delete and return at once (see ``enqueue_save``)."""
        write = _Write(self._key(key), None)
        self._check_room()
        self._accept(write)

    async def _wait_for_room(self) -> None:
        while self._unwritten >= self._config.max_pending_writes:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    async def _submit(self, write: _Write) -> None:
        await self._wait_for_room()
        write.waited = True
        batch = self._accept(write)
        await batch.done.wait()  # accepted: a caller cancelled now stops waiting, the write still lands
        if write.error is not None:
            raise write.error

    async def save(self, key: K, value: V) -> None:
        """Save ``value`` under ``key`` (insert or replace) and wait until it is stored.

        Raises:
            TypeError, ValueError: The key or the value cannot be stored (nothing was accepted).
            Exception: The store's error when the write failed (it is also signalled and counted).
        """
        await self._submit(self._make_write(key, value))

    async def delete(self, key: K) -> None:
        """Remove ``key`` (no error when it is absent) and wait until it is gone."""
        await self._submit(_Write(self._key(key), None))

    async def save_many(self, items: Sequence[tuple[K, V]]) -> None:
        """Save every ``(key, value)`` pair, in order, and wait until all are stored.

        Every value is checked before any is accepted. Raises the first failure, if any.
        """
        writes = [self._make_write(key, value) for key, value in items]
        batches = []
        for write in writes:
            await self._wait_for_room()
            write.waited = True
            batches.append(self._accept(write))
        for batch in dict.fromkeys(batches):
            await batch.done.wait()
        for write in writes:
            if write.error is not None:
                raise write.error

    async def flush(self) -> None:
        """Wait until every write accepted so far is stored (or has failed)."""
        if self._queue:  # batches leave the queue once done, in order: the newest one finishes last
            await self._queue[-1].done.wait()

    async def clear(self) -> int:
        """Remove every stored key, after the writes accepted before it; return how many were removed."""
        self._check_open()
        batch = _Batch(clear=True)
        self._open_batch = None  # later writes go after the clear
        self._pending.clear()  # the writes before the clear are stored before it; reads now see it
        self._clears_pending += 1
        self._queue_batch(batch)
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.removed

    # -- the writer ---------------------------------------------------------------------------------

    async def _writer_loop(self) -> None:
        """Run the queued batches in order; each one shielded, so a cancelled host still stores them all."""
        queue = self._queue
        while True:
            if not queue:
                if self._closing:
                    return
                await self._writer_wakeup.wait()
                continue
            with anyio.CancelScope(shield=True):
                await self._run(queue[0])
            queue.popleft()
            spent = self._write_outage.spent
            if spent is not None:
                self._write_outage.spent = None
                self._fail_backlog(spent)

    def _fail_backlog(self, error: BaseException) -> None:
        """The outage outlasted ``write_retry_timeout``: fail every batch still queued, at once, with its error.

        Each of them would otherwise wait one more attempt (a whole connect or busy timeout) to fail.
        Writes accepted from now on get an attempt of their own.
        """
        queue = self._queue
        if not queue:
            return
        self._open_batch = None
        batches = list(queue)
        queue.clear()
        unwaited: list[_Write] = []
        for batch in batches:
            if batch.clear:
                batch.error = error
                self._clears_pending -= 1
                self._report(error, None)
            for write in batch.writes:
                write.error = error
            unwaited += self._finish(batch, log=False)
        self._log_unwaited(unwaited)

    async def _run(self, batch: _Batch) -> None:
        if batch is self._open_batch and self._linger and len(batch.writes) < self._batch_size:
            self._filled = anyio.Event()  # let an idle writer's batch fill for a moment, or until it is full
            with anyio.move_on_after(self._linger):
                await self._filled.wait()
            self._filled = None
        if batch is self._open_batch:
            self._open_batch = None
        self._running = batch
        try:
            if batch.clear:
                try:
                    batch.removed = await self._retrying(self._clear, self._write_outage)
                except Exception as error:
                    batch.error = error
                    self._report(error, None)
                finally:
                    self._clears_pending -= 1
            else:
                await self._store(batch.writes)
        finally:
            self._running = None
            self._finish(batch)

    async def _store(self, writes: list[_Write]) -> None:
        try:
            await self._retrying(lambda: self._write([(w.key, w.text) for w in writes]), self._write_outage)
        except Exception as error:
            if len(writes) == 1 or self._is_transient(error):
                for write in writes:
                    write.error = error
            else:  # one bad write must not sink the others: store them one by one
                for write in writes:
                    spent = self._write_outage.spent
                    if spent is None:
                        await self._store_one(write)
                    else:
                        write.error = spent
        self._batches += 1
        self._largest = max(self._largest, len(writes))

    async def _store_one(self, write: _Write) -> None:
        try:
            await self._retrying(lambda: self._write([(write.key, write.text)]), self._write_outage)
        except Exception as error:
            write.error = error

    async def _retrying(self, attempt: Callable[[], Awaitable[R]], outage: _Outage) -> R:
        """Run ``attempt``, retrying transient errors with backoff until ``write_retry_timeout`` is spent.

        One outage has one budget: the attempts failing back to back share the deadline of the first
        failure, so a long outage fails the waiting work promptly instead of once per batch. The outage
        ends with a success, or when no attempt failed for a while (twice the longest backoff) before the
        next one started: that one's failure starts a new outage with a new budget. Writes and reads keep
        separate outages.
        """
        failures = 0
        while True:
            started = anyio.current_time()
            try:
                result = await attempt()
            except Exception as error:
                if not self._is_transient(error):
                    raise
                now = anyio.current_time()
                if outage.down_since is None or started - outage.last_failure > 2 * _RETRY_BACKOFF.max_delay:
                    outage.down_since = started
                outage.last_failure = now
                failures += 1
                delay = _RETRY_BACKOFF.delay(failures)
                if now + delay > outage.down_since + self._retry_timeout:
                    outage.spent = error
                    raise
                self._retries += 1
                self._emit(f"retrying.data.{self._config.database_name}:{type(error).__name__}")
                await anyio.sleep(delay)
            else:
                outage.down_since = None
                return result

    def _finish(self, batch: _Batch, *, log: bool = True) -> list[_Write]:
        """Count and signal ``batch``'s writes, release their waiters; return (or log) the failed unwaited ones."""
        config = self._config
        failures: list[_Write] = []
        for write in batch.writes:
            if self._pending.get(write.key) is write:
                del self._pending[write.key]
            if write.error is None:
                self._written += 1
                if config.emit_completion_signals:
                    self._emit(config.deleted_signal if write.text is None else config.saved_signal, write.key)
            else:
                self._failed += 1
                self._report(write.error, write.key)
                if not write.waited:
                    failures.append(write)
        if log:
            self._log_unwaited(failures)
        self._unwritten -= len(batch.writes)
        batch.done.set()
        room = self._room
        if room is not None:
            self._room = None
            room.set()
        return failures

    def _log_unwaited(self, failures: list[_Write]) -> None:
        if failures:
            error = failures[0].error
            _log.error(
                "%d write(s) to %r failed and nobody was waiting for them (first key %r): %s: %s",
                len(failures),
                self._config.database_name,
                failures[0].key[:80],
                type(error).__name__,
                error,
            )

    # -- reads ----------------------------------------------------------------------------------

    async def _reading(self, read: Callable[[], Awaitable[R]], key: str | None) -> R:
        readers = self._readers
        if readers is None:
            raise self._not_entered("storage", "storage")
        if self._closed:
            raise CoordinatorClosedError(f"{type(self).__name__} is closed")
        try:
            async with readers:
                return await self._retrying(read, self._read_outage)
        except Exception as error:
            self._report(error, key)
            raise

    async def load(self, key: K) -> V | None:
        """The value stored under ``key`` (including a write accepted but not yet stored), or None."""
        text_key = self._key(key)
        write = self._pending.get(text_key)
        if write is not None:
            text = write.text
        elif self._clears_pending:
            text = None  # a clear accepted before this load removes whatever is stored
        else:
            text = await self._reading(lambda: self._read(text_key), text_key)
        try:
            value = None if text is None else self._serializer.loads(text)
        except Exception as error:
            self._report(error, text_key)
            raise
        self._loads += 1
        if self._config.emit_completion_signals:
            self._emit(self._config.loaded_signal, text_key, value)
        return value

    async def exists(self, key: K) -> bool:
        """Whether a value is stored under ``key`` (counting writes accepted but not yet stored)."""
        text_key = self._key(key)
        write = self._pending.get(text_key)
        if write is not None:
            return write.text is not None
        if self._clears_pending:
            return False
        return await self._reading(lambda: self._contains(text_key), text_key)

    async def count(self) -> int:
        """How many keys are stored, once every write accepted so far is."""
        await self.flush()
        return await self._reading(self._count, None)

    async def list_keys(self) -> list[str]:
        """Every stored key (as given, in text form), once every write accepted so far is stored."""
        await self.flush()
        return await self._reading(self._keys, None)

    # -- signals --------------------------------------------------------------------------------

    def _emit(self, signal: str, key: str | None = None, payload: Any = None) -> None:
        if self._typed is not None:
            self._typed.emit(signal, payload, key)
        else:
            self._sink.emit(signal, key)

    def _report(self, error: BaseException, key: str | None) -> None:
        self._emit(f"{self._config.error_signal}:{type(error).__name__}", key)

    def _subscribe(self) -> None:
        config = self._config
        loop = LoopBinding()
        routes: list[tuple[str, Callable[[SignalEvent[Any]], None]]] = [
            (config.save_signal_pattern, self._on_save_signal),
            (config.delete_signal_pattern, self._on_delete_signal),
            (config.load_signal_pattern, self._on_load_signal),
        ]

        def route(event: SignalEvent[Any]) -> None:
            name = event.signal
            for pattern, handler in routes:
                if name == pattern or StringPatternMatcher.matches(name, pattern + ".*"):
                    loop.call(partial(handler, event))
                    return

        source: Any = self._typed if self._typed is not None else self._sink
        self._subscriptions.append(source.subscribe(route))

    def _refuse_signal(self, event: SignalEvent[Any], reason: str) -> None:
        self._emit(f"{self._config.error_signal}:{reason}", event.key)

    def _on_save_signal(self, event: SignalEvent[Any]) -> None:
        if event.key is None:
            self._refuse_signal(event, "MissingKey")
        elif event.payload is None:
            self._refuse_signal(event, "MissingPayload")  # only typed sinks carry the value
        else:
            self._apply_signal(event, lambda: self.enqueue_save(event.key, event.payload))  # type: ignore[arg-type]

    def _on_delete_signal(self, event: SignalEvent[Any]) -> None:
        if event.key is None:
            self._refuse_signal(event, "MissingKey")
        else:
            self._apply_signal(event, lambda: self.enqueue_delete(event.key))  # type: ignore[arg-type]

    def _apply_signal(self, event: SignalEvent[Any], accept: Callable[[], None]) -> None:
        try:
            accept()
        except Exception as error:  # a refused signal is reported, never raised into the emitter
            self._refuse_signal(event, type(error).__name__)

    def _on_load_signal(self, event: SignalEvent[Any]) -> None:
        if event.key is None:
            self._refuse_signal(event, "MissingKey")
            return
        try:
            self._key(event.key)  # type: ignore[arg-type]
        except Exception as error:
            self._refuse_signal(event, type(error).__name__)
            return
        if not self._loader.try_enqueue(event.key):
            self._refuse_signal(event, "Closed" if self._closing else "LoadQueueFull")

    async def _load_for_signal(self, key: str) -> None:
        try:
            await self.load(key)  # type: ignore[arg-type]
        except Exception:
            pass  # load signalled it as error.data.{db}:{Type}

    # -- views ----------------------------------------------------------------------------------

    def stats(self) -> AtomStats:
        """``(pending, active, completed, failed)`` counted in writes (saves and deletes)."""
        running = self._running
        active = len(running.writes) if running is not None else 0
        return AtomStats(self._unwritten - active, active, self._written, self._failed)

    def storage_stats(self) -> DataStorageStats:
        """Counters of writes, batches, retries and loads."""
        return DataStorageStats(
            self._unwritten, self._written, self._failed, self._batches, self._largest, self._retries, self._loads
        )

    @property
    def signals(self) -> SignalSink:
        """The (untyped) sink the atom emits to and listens on."""
        return self._sink
