"""PostgresSignalBridge: one signal window across processes, through a PostgreSQL table and LISTEN/NOTIFY."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import operator
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
import psycopg
from anyio.abc import TaskGroup
from psycopg.conninfo import conninfo_to_dict

from ephemeral.core import PatternSet, SignalEvent, SignalRetractedEvent, SignalSink, Subscription
from ephemeral.core.lowlevel import (
    BackoffPolicy,
    BoundedMap,
    LoopBinding,
    SignalTap,
    TaskGroupOwner,
    Wakeup,
    check_int,
    loop_clock,
    next_id,
    to_seconds,
)
from ephemeral.core.sql import derived_identifier, quote_identifier, validate_identifier

__all__ = ("BridgeStats", "PostgresSignalBridge")

_log = logging.getLogger("ephemeral.signals.postgres")

Connection = psycopg.Connection[tuple[Any, ...]]
#: One outgoing item: a local signal or retraction. Its fields are read by the writer, off the emitting path.
_Item = "SignalEvent[Any] | SignalRetractedEvent"
#: The most signal names whose ``publish`` verdict is remembered (the cache starts again when full).
_VERDICTS = 4096
#: The fields of an outgoing signal, read in C for a whole batch.
_FIELDS = operator.attrgetter("signal", "key", "operation_id", "timestamp", "payload")
#: How often the writer's queue is filled from the captured signals while a write or a reconnection takes
#: long (so ``max_queue`` bounds what waits, and overflow is counted, whatever the database does).
_PUMP_INTERVAL = 0.05
#: The most local signals the sink's tap holds between two fillings of the queue (``max_queue`` when larger);
#: beyond it the oldest are lost and counted as ``dropped`` (with a ``publish`` filter, whether or not they
#: would have gone out).
_TAP_PENDING = 100_000

#: The entered bridges of each sink, by id(sink): a signal a bridge emits itself (``bridge.*``) is marked in
#: every one of them, so none of them publishes it. Signals restored from the table never reach a tap, so no
#: bridge of the sink publishes them either (no loops, also with two bridges).
_BRIDGES: dict[int, list[PostgresSignalBridge]] = {}
#: Set on the thread that applies a remote retraction: no bridge publishes the retractions it causes.
_applying = threading.local()

_RECONNECT = BackoffPolicy(0.05, max_delay=2.0)
#: (id of the sink, conninfo, table) of every entered bridge: a second bridge of one sink to the same table
#: would receive the first one's rows as another node's, and each signal would arrive twice.
_ENTERED: set[tuple[int, str, str]] = set()


class BridgeStats(NamedTuple):
    """What a bridge has carried: ``bridge.stats()``.

    Attributes:
        sent: Signals and retractions written to the table.
        received: Signals and retractions from other nodes applied to the local sink.
        dropped: Outgoing signals refused because ``max_queue`` were waiting (the queue was full).
        refused: Outgoing signals whose payload is not JSON-serialisable (never sent).
        queued: Outgoing signals waiting to be written now.
        lag: Seconds between the last received signal's original timestamp and its arrival here
            (0.0 before the first).
        connected: Whether both of the bridge's connections are up.
    """

    sent: int
    received: int
    dropped: int
    refused: int
    queued: int
    lag: float
    connected: bool


def _to_json(payload: Any) -> str:
    """A payload as JSON text: dataclasses and pydantic models as their fields; TypeError when impossible."""

    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    text = json.dumps(payload, default=default, separators=(",", ":"))
    if "\\u0000" in text:
        raise TypeError("it contains NUL (\\u0000), which PostgreSQL JSONB cannot store")
    return text


def _plain_columns(batch: list[Any]) -> tuple[str, str, str, list[Any]] | None:
    """A batch of signals without payload as the parameters of the plain insert, built in C.

    Names and keys are joined with the unit separator (a key that is None as the record separator), the
    operation ids with spaces; the timestamps stay a list. None when the batch needs the general form: a
    retraction, a payload, a NUL to refuse, or a name or key that is empty or holds a separator.
    """
    if not batch:
        return None
    try:
        names, keys, operations, stamps, payloads = zip(*map(_FIELDS, batch), strict=True)
    except AttributeError:  # a retraction (it has no payload)
        return None
    if payloads.count(None) != len(payloads) or "" in names or "" in keys:
        return None
    name_text = "\x1f".join(names)
    key_text = "\x1f".join(["\x1e" if key is None else key for key in keys])
    if (
        name_text.count("\x1f") != len(names) - 1  # no name holds a separator
        or key_text.count("\x1f") != len(keys) - 1
        or "\x1e" in name_text
        or key_text.count("\x1e") != keys.count(None)  # only the missing keys are marks
        or "\x00" in name_text
        or "\x00" in key_text
    ):
        return None
    return name_text, key_text, " ".join(map(str, operations)), list(stamps)


def _default_node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _patterns(value: object, name: str) -> PatternSet:
    if isinstance(value, PatternSet):
        return value
    if isinstance(value, str) or (
        isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(p, str) for p in value)
    ):
        try:
            return PatternSet(value)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    raise TypeError(f"{name} must be a glob str, a sequence of globs or a PatternSet, got {value!r}")


class PostgresSignalBridge(TaskGroupOwner):
    """Carries a sink's signals to every process on the same PostgreSQL table, and theirs to it.

    Signals emitted on ``sink`` (any thread) are collected by a sink tap (``SignalSink.open_tap``: the
    emitting thread only appends the sink's entry to a bounded deque, builds no event and runs no bridge
    code; signals the sink ``restore``-d are never collected); on the event loop they are filtered by
    ``publish`` and queued, and a background task writes them in batches: one transaction per batch
    (one ``INSERT ... SELECT FROM unnest(...)``, then ``NOTIFY``). Every bridge LISTENs on the channel;
    a notification only wakes its reader, which reads the rows newer than the last one it saw (and the
    ids it found missing, see below) and adds the other nodes' signals matching ``subscribe`` to
    ``sink`` with ``sink.restore``: same name, key, operation id and original timestamp (so they age from
    when they were emitted), JSON payload decoded. ``bridge.origin_of(event)`` tells which node a
    received signal came from. Local retractions (``sink.retract``, ``retract_matching``) are written too,
    and the other nodes remove exactly the signals they removed here (same name, key and operation id:
    ``SignalSink.retract_exact``).

    No loops: a node skips its own rows, and a signal or retraction received from the table is never
    published again, by this bridge or any other bridge on the same sink.

    Row ids are a sequence, and concurrent writers commit out of order: a reader that has seen id 12 may
    later see id 11 commit. The reader remembers the ids it skipped and looks for them again for
    ``gap_grace`` seconds, so such rows are delivered late rather than lost.

    Entry creates the table when missing, connects, LISTENs and backfills the last ``window`` seconds (the
    same code path as any later read) before the block starts; it raises ``ConnectionError`` when the server
    cannot be reached for ``connect_timeout``. While running, an outage leaves local signals working:
    outgoing signals wait in a queue of at most ``max_queue`` (beyond it they are counted as ``dropped`` and
    ``bridge.dropped`` is emitted once per overflow), the bridge reconnects with backoff, writes what waited
    (exactly once: rows carry ``(node_id, seq)``, unique), re-LISTENs and reads what it missed. Rows older
    than ``window`` are deleted in the background, at most ``cleanup_batch`` per statement.

    The bridge uses two dedicated connections (psycopg's async API runs only on asyncio, so the
    sync API runs in worker threads; waiting for notifications uses ``anyio.wait_readable`` on the
    LISTEN connection's socket, so an idle bridge holds no thread). Their ``application_name`` is
    ``application_name``.

    Args:
        sink: The local signal window.
        conninfo: A libpq connection string or ``postgresql://`` URL.
        publish: Which local signals go out: a glob, globs, or a ``PatternSet``.
        subscribe: Which remote signals come in.
        table: The table (created when missing); validated as a plain SQL identifier and quoted.
        channel: The LISTEN/NOTIFY channel; the table's name when None.
        window: How far back entry backfills and how long rows stay (seconds or a timedelta).
        node_id: This node's name in the table; unique per bridge by default (host:pid:random).
        max_queue: The most outgoing signals waiting while the database is slow or unreachable.
        batch_size: The most rows written in one transaction.
        gap_grace: How long a skipped row id is looked for again (seconds or a timedelta).
        poll_interval: The longest the reader waits without a notification before reading anyway.
        cleanup_interval: How often old rows are deleted; ``window / 4`` (at most 30 s) when None.
        cleanup_batch: The most rows one delete statement removes.
        connect_timeout: How long entry waits for the server (seconds or a timedelta).
        application_name: The connections' ``application_name``; ``ephemeral-signals`` when None.

    Raises:
        TypeError, ValueError: An argument is invalid (before any connection).
    """

    def __init__(
        self,
        sink: SignalSink,
        conninfo: str,
        *,
        publish: str | PatternSet | tuple[str, ...] | list[str] = "*",
        subscribe: str | PatternSet | tuple[str, ...] | list[str] = "*",
        table: str = "ephemeral_signals",
        channel: str | None = None,
        window: float | timedelta = 60.0,
        node_id: str | None = None,
        max_queue: int = 100_000,
        batch_size: int = 1000,
        gap_grace: float | timedelta = 10.0,
        poll_interval: float | timedelta = 1.0,
        cleanup_interval: float | timedelta | None = None,
        cleanup_batch: int = 1000,
        connect_timeout: float | timedelta = 10.0,
        application_name: str | None = None,
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if not isinstance(conninfo, str):
            raise TypeError(f"conninfo must be a str (a libpq connection string or URL), got {conninfo!r}")
        try:
            conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as error:
            raise ValueError(f"conninfo is not a valid libpq connection string or URL: {error}") from None
        if not conninfo.strip():
            raise ValueError("conninfo must not be empty: give a libpq connection string or a postgresql:// URL")
        self._publish = _patterns(publish, "publish")
        self._publish_all = self._publish.patterns == ("*",)
        self._verdicts: dict[str, bool] = {}
        self._subscribe = _patterns(subscribe, "subscribe")
        self._table = validate_identifier(table, "table")
        self._channel = validate_identifier(table if channel is None else channel, "channel")
        self._window = to_seconds(window, "window")
        if node_id is None:
            node_id = _default_node_id()
        elif not isinstance(node_id, str):
            raise TypeError(f"node_id must be a str or None, got {node_id!r}")
        elif not node_id.strip() or "\x00" in node_id:
            raise ValueError(f"node_id must be a non-blank str without NUL, got {node_id!r}")
        self._node_id = node_id
        self._max_queue = check_int(max_queue, "max_queue")
        self._batch_size = check_int(batch_size, "batch_size")
        self._gap_grace = to_seconds(gap_grace, "gap_grace")
        self._poll_interval = to_seconds(poll_interval, "poll_interval")
        self._cleanup_interval = (
            min(self._window / 4, 30.0)
            if cleanup_interval is None
            else to_seconds(cleanup_interval, "cleanup_interval")
        )
        self._cleanup_batch = check_int(cleanup_batch, "cleanup_batch")
        self._connect_timeout = to_seconds(connect_timeout, "connect_timeout")
        if application_name is None:
            application_name = "ephemeral-signals"
        elif not isinstance(application_name, str):
            raise TypeError(f"application_name must be a str or None, got {application_name!r}")
        self._application_name = application_name
        self._sink = sink
        self._conninfo = conninfo

        qualified = quote_identifier(self._table, "table")
        self._quoted_channel = quote_identifier(self._channel, "channel")
        index = quote_identifier(derived_identifier("idx_", self._table, "_ts"), "index name")
        unique = quote_identifier(derived_identifier("uq_", self._table, "_node_seq"), "constraint name")
        self._create_sql = (
            f"CREATE TABLE IF NOT EXISTS {qualified} (id BIGSERIAL PRIMARY KEY, node_id TEXT NOT NULL, "
            "seq BIGINT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('emit', 'retract')), signal TEXT NOT NULL, "
            "key TEXT, operation_id BIGINT NOT NULL, ts TIMESTAMPTZ NOT NULL, payload JSONB, "
            f"CONSTRAINT {unique} UNIQUE (node_id, seq))"
        )
        self._index_sql = f"CREATE INDEX IF NOT EXISTS {index} ON {qualified} (ts)"
        self._insert_sql = (
            f"INSERT INTO {qualified} (node_id, seq, kind, signal, key, operation_id, ts, payload) "
            "SELECT %s, * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::bigint[], "
            "%b::timestamptz[], %b::jsonb[]) ON CONFLICT (node_id, seq) DO NOTHING"
        )
        # The usual batch: signals without payload. Names, keys and operation ids travel as one text each,
        # joined in C (see _plain_columns), the timestamps as an array; the server numbers the rows.
        self._plain_insert_sql = (
            f"INSERT INTO {qualified} (node_id, seq, kind, signal, key, operation_id, ts) "
            "SELECT %s, %s + n, 'emit', signal, key, op, ts FROM unnest(string_to_array(%s, E'\\x1f'), "
            "string_to_array(%s, E'\\x1f', E'\\x1e'), string_to_array(%s, ' ')::bigint[], %b::timestamptz[]) "
            "WITH ORDINALITY AS u(signal, key, op, ts, n) ON CONFLICT (node_id, seq) DO NOTHING"
        )
        self._notify_sql = f"NOTIFY {self._quoted_channel}"
        self._listen_sql = f"LISTEN {self._quoted_channel}"
        self._start_sql = (
            f"SELECT coalesce((SELECT min(id) - 1 FROM {qualified} WHERE ts > now() - %s * interval '1 second'), "
            f"(SELECT max(id) FROM {qualified}), 0)"
        )
        # This node's own rows come back as their id alone (the reader only tracks it): nothing to convert.
        foreign = ", ".join(
            f"CASE WHEN node_id = %(node)s THEN NULL ELSE {column} END"
            for column in ("node_id", "kind", "signal", "key", "operation_id", "ts", "payload::text")
        )
        self._read_sql = (
            f"SELECT id, {foreign} FROM {qualified} "
            "WHERE (id > %(last)s OR id = ANY(%(gaps)s)) ORDER BY id LIMIT %(limit)s"
        )
        self._cleanup_sql = (
            f"DELETE FROM {qualified} WHERE id IN (SELECT id FROM {qualified} "
            "WHERE ts < now() - %s * interval '1 second' ORDER BY ts LIMIT %s FOR UPDATE SKIP LOCKED)"
        )
        self._libpq_timeout = max(2, math.ceil(self._connect_timeout))

        # Outgoing. A sink tap collects the local signals (nothing of the bridge runs on the emitting
        # thread); ``captured`` receives them from the tap, in order with the local retractions; the loop
        # moves captured signals to ``pending`` (filtering, bounded by max_queue), the writer takes its
        # batches from there.
        self._tap: SignalTap | None = None
        self._tap_dropped = 0  # the tap's losses already counted in _dropped_total
        self._capture_lock = threading.Lock()
        self._captured: deque[Any] = deque()
        self._pending: deque[Any] = deque()
        self._unpublished: dict[int, Any] = {}  # id -> event: the bridges' own signals, never published
        self._take_lock = threading.Lock()
        self._trigger: Subscription | None = None  # the one-shot wake, installed while the pump waits
        # Row numbers: unique per node_id, also across restarts (they start at the microseconds since the
        # epoch), so a batch written again after a lost commit is stored once.
        self._next_seq = time.time_ns() // 1000
        self._dropped_total = 0
        self._overflowing = False
        self._refused = 0
        self._refused_names: set[str] = set()
        self._sent = 0
        self._received = 0
        self._lag = 0.0
        # The origin node of received events (by the event: equal events share it), for ``origin_of``.
        self._origins: BoundedMap[SignalEvent[Any], str] = BoundedMap(100_000)
        self._origins_lock = threading.Lock()
        # Reading.
        self._last_id = 0
        self._rows_read = 0
        self._gaps: dict[int, float] = {}  # missing id -> loop clock reading after which it is given up
        self._notified = False
        self._down = {"writer": True, "reader": True}
        self._announced_connected: bool | None = None
        self._ready: anyio.Event | None = None
        self._drained = anyio.Event()
        self._wakeup: Wakeup | None = None
        self._pump_wakeup: Wakeup | None = None
        self._binding: LoopBinding | None = None
        self._clock: Callable[[], float] = loop_clock()
        self._subscriptions: list[Subscription] = []
        self._closing = False
        self._route: tuple[int, str, str] | None = None  # while entered: its key in _ENTERED
        self._inflight: list[Any] = []  # the batch being written (kept until it is written)
        self._inflight_seq = 0  # the row number before the batch's first
        self._last_error = "none"

    # -- public view ------------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        """This node's name in the table."""
        return self._node_id

    @property
    def table(self) -> str:
        """The table's name (unquoted)."""
        return self._table

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel (unquoted)."""
        return self._channel

    @property
    def sink(self) -> SignalSink:
        """The local signal window the bridge feeds and reads."""
        return self._sink

    def origin_of(self, event: SignalEvent[Any]) -> str | None:
        """The node a received signal came from; None for a local signal (or one received long ago)."""
        with self._origins_lock:
            return self._origins.get(event)

    def stats(self) -> BridgeStats:
        """What the bridge has carried, now (the signals captured so far are queued or counted first)."""
        self._take()
        dropped = self._dropped_total
        return BridgeStats(
            sent=self._sent,
            received=self._received,
            dropped=dropped,
            refused=self._refused,
            queued=len(self._pending),
            lag=self._lag,
            connected=not any(self._down.values()),
        )

    # -- lifecycle ----------------------------------------------------------------------------------

    async def _on_enter(self, tg: TaskGroup) -> None:
        route = (id(self._sink), self._conninfo, self._table)
        if route in _ENTERED:
            raise RuntimeError(
                f"another PostgresSignalBridge already carries this sink's signals to table {self._table!r}: "
                "each signal would arrive twice; give a second bridge of one sink another table or database"
            )
        _ENTERED.add(route)
        self._route = route
        self._binding = LoopBinding()
        self._clock = loop_clock()
        self._wakeup = Wakeup(self._clock)
        self._pump_wakeup = Wakeup(self._clock)
        self._ready = anyio.Event()
        self._drained = anyio.Event()
        _BRIDGES.setdefault(id(self._sink), []).append(self)
        self._tap = self._sink.open_tap(max(self._max_queue, _TAP_PENDING))
        self._subscriptions = [self._sink.subscribe_retracted(self._on_retracted)]
        tg.start_soon(self._pump)  # from now on: what is captured while entry connects stays bounded too
        with anyio.move_on_after(self._connect_timeout):
            for attempt in itertools.count(1):  # a server still starting refuses connections: wait for it
                if await anyio.to_thread.run_sync(self._create_schema):
                    break
                await anyio.sleep(_RECONNECT.delay(attempt))
        if self._down["writer"]:
            raise ConnectionError(
                f"PostgreSQL was not reachable within connect_timeout={self._connect_timeout:g}s "
                f"(last error: {self._last_error})"
            )
        tg.start_soon(self._writer)
        tg.start_soon(self._reader)
        while not self._ready.is_set():  # a long backfill may take longer, while it makes progress
            progress = self._rows_read
            with anyio.move_on_after(self._connect_timeout):
                await self._ready.wait()
            if not self._ready.is_set() and self._rows_read == progress:
                raise ConnectionError(
                    f"the bridge could not LISTEN and backfill within connect_timeout={self._connect_timeout:g}s "
                    f"(last error: {self._last_error})"
                )

    async def _on_clean_exit(self) -> None:
        """Write what is queued (while the database answers, for at most ``connect_timeout``)."""
        self._closing = True
        self._unsubscribe()
        self._take()
        self._wake(self._wakeup)
        with anyio.move_on_after(self._connect_timeout):
            await self._drained.wait()
        if not self._drained.is_set():
            _log.warning(
                "left with %d outgoing signals unwritten: PostgreSQL did not take them within connect_timeout=%gs",
                len(self._pending) + len(self._inflight),
                self._connect_timeout,
            )

    def _on_close(self) -> None:
        self._closing = True
        if self._route is not None:
            _ENTERED.discard(self._route)
            self._route = None
        self._unsubscribe()
        bridges = _BRIDGES.get(id(self._sink), [])
        if self in bridges:
            bridges.remove(self)
            if not bridges:
                del _BRIDGES[id(self._sink)]

    def _unsubscribe(self) -> None:
        """Stop collecting local signals (what the tap already holds can still be taken)."""
        if self._tap is not None:
            self._tap.close()
        for subscription in self._subscriptions:
            subscription.close()
        if self._trigger is not None:
            self._trigger.close()

    # -- outgoing ------------------------------------------------------------------------------------

    def _on_retracted(self, event: SignalRetractedEvent) -> None:
        """Capture a local retraction (a sink subscriber: any thread); remote ones applied here are not."""
        if not getattr(_applying, "active", False):
            self._capture(event)
            self._wake(self._pump_wakeup)

    def _capture(self, retraction: SignalRetractedEvent | None = None) -> None:
        """Move the tap's signals to ``captured`` (then ``retraction``, which follows them); any thread."""
        tap = self._tap
        with self._capture_lock:
            if tap is not None and len(tap):
                self._captured.extend(tap.take())
            if retraction is not None:
                self._captured.append(retraction)

    def _waiting(self) -> bool:
        """Whether local signals wait to be taken (in the tap or captured)."""
        tap = self._tap
        return bool(self._captured) or (tap is not None and len(tap) > 0)

    def _take(self) -> None:
        """Move the captured signals that go out to the writer's queue (any thread; the loop's, mostly).

        Here, not on the emitting thread, the signals this process received or emitted itself are
        skipped, ``publish`` is applied, and ``max_queue`` is enforced: beyond it the newest are dropped,
        counted, and ``bridge.dropped`` is emitted once per overflow.
        """
        self._capture()
        captured, tap = self._captured, self._tap
        lost = 0 if tap is None else tap.dropped - self._tap_dropped
        if not captured and not lost:
            return
        with self._take_lock:
            pending, unpublished, popleft = self._pending, self._unpublished, captured.popleft
            room = self._max_queue - len(pending)
            publish_all, publishes = self._publish_all, self._publishes
            lost = 0 if tap is None else tap.dropped - self._tap_dropped  # under the lock: counted once
            self._tap_dropped += lost
            dropped = lost
            for _ in range(len(captured)):
                item = popleft()
                if unpublished and unpublished.pop(id(item), None) is item:
                    continue
                if not (publish_all or publishes(item.signal)):
                    continue
                if room > 0:
                    pending.append(item)
                    room -= 1
                else:
                    dropped += 1
            if dropped:
                self._dropped_total += dropped
        if dropped and not self._overflowing and not self._closing:
            self._overflowing = True
            _log.warning("%d outgoing signals are waiting; new ones are dropped until some are written", len(pending))
            self._emit_own("bridge.dropped")
        if pending:
            self._wake(self._wakeup)

    async def _pump(self) -> None:
        """Fill the writer's queue from the captured signals whenever the sink has new ones.

        While the queue is being filled nothing is installed on the sink but the tap (no subscriber: no
        event is built per emit); once it waits, a one-shot subscriber wakes it at the next signal and
        removes itself (so events are built only while it is armed: about once per batch under load).
        """
        assert self._pump_wakeup is not None
        wakeup = self._pump_wakeup
        while True:
            self._take()
            if self._inflight or self._down["writer"]:  # the writer may take long: keep the queue bounded
                await wakeup.wait(self._clock() + _PUMP_INTERVAL)
                continue
            if not self._closing and (self._trigger is None or self._trigger.closed):
                self._trigger = self._arm()
            await wakeup.wait(ready=self._waiting)

    def _arm(self) -> Subscription:
        """A sink subscriber that wakes the pump at the next signal, then removes itself."""

        def wake(_: SignalEvent[Any]) -> None:
            trigger.close()
            self._wake(self._pump_wakeup)

        trigger = self._sink.subscribe(wake)
        return trigger

    def _publishes(self, name: str) -> bool:
        """Whether ``name`` matches ``publish`` (remembered per name)."""
        verdicts = self._verdicts
        verdict = verdicts.get(name)
        if verdict is None:
            if len(verdicts) >= _VERDICTS:
                verdicts.clear()
            verdict = verdicts[name] = self._publish.matches(name)
        return verdict

    def _refuse(self, name: str, reason: str) -> None:
        self._refused += 1
        if name not in self._refused_names:
            self._refused_names.add(name)
            _log.error(
                "signal %r is not published: %s (reported once per name; counted in stats().refused)", name, reason
            )

    def _wake(self, wakeup: Wakeup | None) -> None:
        binding = self._binding
        if wakeup is None or binding is None:
            return
        if binding.on_loop_thread:
            wakeup.wake()
        elif wakeup.waiting:  # an emit from a thread the loop itself waits on must not block
            binding.call(wakeup.wake)

    def _emit_own(self, name: str) -> None:
        """Emit one of the bridge's own signals on the local sink, marked so that no bridge of the sink publishes it."""
        event: SignalEvent[Any] = SignalEvent(name, next_id(), self._node_id, self._sink.now())
        bridges = _BRIDGES.get(id(self._sink), ())
        for bridge in bridges:
            bridge._unpublished[id(event)] = event
        try:
            self._sink.emit(event)
        except BaseException:
            for bridge in bridges:
                bridge._unpublished.pop(id(event), None)
            raise

    def _set_down(self, which: str, down: bool, error: BaseException | None = None) -> None:
        if error is not None:
            self._last_error = f"{type(error).__name__}: {str(error).strip()}"
        self._down[which] = down
        connected = not any(self._down.values())
        if connected and self._announced_connected is not True:
            self._announced_connected = True
            self._emit_own("bridge.connected")
        elif down and self._announced_connected is True:
            self._announced_connected = False
            _log.warning("lost the connection to PostgreSQL (%s); reconnecting", self._last_error)
            self._emit_own("bridge.disconnected")

    def _connect(self, autocommit: bool) -> Connection:
        return psycopg.connect(
            self._conninfo,
            autocommit=autocommit,
            connect_timeout=self._libpq_timeout,
            application_name=self._application_name,
        )

    def _create_schema(self) -> bool:
        """Create the table and its index when missing; whether the server answered."""
        try:
            with self._connect(autocommit=True) as conn:
                conn.execute(self._create_sql)
                conn.execute(self._index_sql)
        except psycopg.errors.UniqueViolation:  # two nodes created it at once
            pass
        except psycopg.OperationalError as error:
            self._last_error = f"{type(error).__name__}: {str(error).strip()}"
            return False
        self._down["writer"] = False
        return True

    async def _writer(self) -> None:
        """Write queued rows in batches; reconnect after failures; delete old rows now and then."""
        assert self._wakeup is not None
        wakeup = self._wakeup
        conn: Connection | None = None
        attempt = 0
        next_cleanup = self._clock()
        self._inflight = []
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await anyio.to_thread.run_sync(self._connect, False)
                        attempt = 0
                        self._set_down("writer", False)
                    if not self._inflight:
                        self._take()
                        pending = self._pending
                        if pending:
                            count = min(len(pending), self._batch_size)
                            self._inflight = [pending.popleft() for _ in range(count)]
                            self._inflight_seq, self._next_seq = self._next_seq, self._next_seq + count
                        if len(pending) < self._max_queue:
                            self._overflowing = False
                    if self._inflight:
                        self._wake(self._pump_wakeup)  # it keeps the queue bounded while this batch is written
                        self._sent += await anyio.to_thread.run_sync(
                            self._write, conn, self._inflight, self._inflight_seq
                        )
                        self._inflight = []
                        continue
                    if self._closing and not self._waiting():
                        self._drained.set()  # nothing queued or in flight any more
                    if self._clock() >= next_cleanup:
                        await anyio.to_thread.run_sync(self._cleanup, conn)
                        next_cleanup = self._clock() + self._cleanup_interval
                    self._wake(self._pump_wakeup)  # idle now: the pump waits for the next signal instead
                    await wakeup.wait(next_cleanup, ready=lambda: bool(self._pending))
                except psycopg.Error as error:
                    if conn is not None:
                        conn.close()
                        conn = None
                    self._set_down("writer", True, error)
                    attempt += 1
                    await anyio.sleep(_RECONNECT.delay(attempt))
        finally:
            if conn is not None:
                conn.close()

    def _write(self, conn: Connection, batch: list[Any], seq: int) -> int:
        """Write ``batch`` as rows ``seq + 1``, ``seq + 2``, ... in one transaction; how many were written.

        Runs in a worker thread. Payloads are encoded here; a signal that cannot be carried is refused.
        """
        plain = _plain_columns(batch)
        if plain is not None:
            with conn.transaction():
                conn.execute(self._plain_insert_sql, (self._node_id, seq, *plain))
                conn.execute(self._notify_sql)
            return len(batch)
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        seqs, kinds, names, keys, operations, stamps, payloads = columns
        for item in batch:
            seq += 1
            name, key = item.signal, item.key
            if "\x00" in name or (key is not None and "\x00" in key):
                self._refuse(name, "its name or key contains NUL, which PostgreSQL text cannot hold")
                continue
            text = None
            if item.__class__ is SignalRetractedEvent:
                kinds.append("retract")
            else:
                payload = item.payload
                if payload is not None:
                    try:
                        text = _to_json(payload)
                    except (TypeError, ValueError) as error:
                        self._refuse(name, f"its payload ({type(payload).__name__}) cannot be carried as JSON: {error}")
                        continue
                kinds.append("emit")
            seqs.append(seq)
            names.append(name)
            keys.append(key)
            operations.append(item.operation_id)
            stamps.append(item.timestamp)
            payloads.append(text)
        if seqs:
            with conn.transaction():
                conn.execute(self._insert_sql, (self._node_id, *columns))
                conn.execute(self._notify_sql)
        return len(seqs)

    def _cleanup(self, conn: Connection) -> None:
        for _ in range(10):  # bounded work per pass
            with conn.transaction():
                deleted = conn.execute(self._cleanup_sql, (self._window, self._cleanup_batch)).rowcount
            if deleted < self._cleanup_batch:
                return

    # -- incoming ------------------------------------------------------------------------------------

    async def _reader(self) -> None:
        """LISTEN, read new rows whenever notified (or every ``poll_interval``); reconnect after failures."""
        assert self._ready is not None
        conn: Connection | None = None
        attempt = 0
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await anyio.to_thread.run_sync(self._connect_listener)
                        attempt = 0
                    self._notified = False
                    rows = await anyio.to_thread.run_sync(self._read, conn)
                    self._rows_read += len(rows)
                    self._apply(rows)
                    if len(rows) >= self._batch_size:
                        continue  # more to read
                    if not self._ready.is_set():
                        self._ready.set()
                    self._set_down("reader", False)
                    if self._notified:
                        continue
                    with anyio.move_on_after(self._poll_interval):
                        while not self._drain_notifies(conn):
                            await anyio.wait_readable(conn.pgconn.socket)
                except psycopg.Error as error:
                    if conn is not None:
                        conn.close()
                        conn = None
                    self._set_down("reader", True, error)
                    attempt += 1
                    await anyio.sleep(_RECONNECT.delay(attempt))
        finally:
            if conn is not None:
                conn.close()

    def _connect_listener(self) -> Connection:
        conn = self._connect(autocommit=True)
        try:
            conn.add_notify_handler(self._on_notify)
            conn.execute(self._listen_sql)
            if self._last_id == 0:
                row = conn.execute(self._start_sql, (self._window,)).fetchone()
                self._last_id = int(row[0]) if row is not None else 0
        except BaseException:
            conn.close()
            raise
        return conn

    def _on_notify(self, _: psycopg.Notify) -> None:
        self._notified = True

    def _drain_notifies(self, conn: Connection) -> bool:
        """Read what the socket holds; whether a notification came (raises when the connection is gone)."""
        pgconn = conn.pgconn
        pgconn.consume_input()
        if pgconn.status != psycopg.pq.ConnStatus.OK:
            raise psycopg.OperationalError("the LISTEN connection was closed")
        while pgconn.notifies() is not None:
            self._notified = True
        return self._notified

    def _read(self, conn: Connection) -> list[tuple[Any, ...]]:
        now = self._clock()
        gaps = self._gaps
        for missing in [i for i, until in gaps.items() if until <= now]:
            del gaps[missing]
        parameters = {"node": self._node_id, "last": self._last_id, "gaps": list(gaps), "limit": self._batch_size}
        return conn.execute(self._read_sql, parameters).fetchall()

    def _apply(self, rows: list[tuple[Any, ...]]) -> None:
        """Track the ids seen and missing, then apply the other nodes' rows to the sink."""
        sink, subscribe = self._sink, self._subscribe
        restore = sink.restore
        gaps, last = self._gaps, self._last_id
        until = self._clock() + self._gap_grace
        newest: datetime | None = None
        for row_id, row_node, kind, name, key, operation_id, ts, payload in rows:
            if row_id > last:
                if row_id > last + 1 and len(gaps) < 100_000:
                    for missing in range(last + 1, min(row_id, last + 1 + 10_000)):
                        gaps[missing] = until
                last = row_id
            else:
                gaps.pop(row_id, None)
            if row_node is None or not subscribe.matches(name):  # None: this node's own row
                continue
            if kind == "retract":
                _applying.active = True
                try:
                    sink.retract_exact(name, key, operation_id)  # what the retraction removed there
                finally:
                    _applying.active = False
                self._received += 1
                continue
            ts = ts.astimezone(timezone.utc)
            event: SignalEvent[Any] = SignalEvent(
                name, operation_id, key, ts, None, None if payload is None else json.loads(payload)
            )
            with self._origins_lock:
                self._origins.put(event, row_node)
            restore(event)  # never published: restored signals do not reach the taps of any bridge
            self._received += 1
            newest = ts
        self._last_id = last
        if newest is not None:
            self._lag = max((sink.now() - newest).total_seconds(), 0.0)
