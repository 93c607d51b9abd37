"""Log records to signals (a ``logging.Handler``, a structlog processor) and signals to log records."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, MutableMapping
from typing import Any, NamedTuple

import structlog

from ephemeral.core import SignalEvent, SignalSink, Subscription, TypedSignalSink

from ._names import (
    MIRRORED,
    TRACE,
    EventId,
    SignalLogContext,
    SignalLogPayload,
    as_event_id,
    default_payload,
    default_signal_name,
    event_key,
    level_for_signal,
    level_name,
)

__all__ = (
    "LogMessage",
    "SignalLoggerProvider",
    "SignalProcessor",
    "SignalToLoggerAdapter",
    "SignalToStructlogAdapter",
)

MapSignal = Callable[[SignalLogContext], "str | None"]
MapPayload = Callable[[SignalLogContext], "SignalLogPayload | None"]

# Set while a log event is being turned into a signal on this thread: a record logged meanwhile (by a
# sink subscriber) is dropped instead of becoming another signal, and the signal-to-log adapters do
# not log the signal that a log record made.
_state = threading.local()


def _busy() -> bool:
    return getattr(_state, "busy", False)


class _Emitter:
    """Turns a ``SignalLogContext`` into a signal on a plain or typed sink, and counts what happened."""

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[SignalLogPayload],
        minimum_level: int,
        map_signal: MapSignal | None,
        map_payload: MapPayload | None,
    ) -> None:
        if not isinstance(sink, (SignalSink, TypedSignalSink)):
            raise TypeError(f"sink must be a SignalSink or a TypedSignalSink, got {sink!r}")
        if isinstance(minimum_level, bool) or not isinstance(minimum_level, int):
            raise TypeError(f"minimum_level must be an int level such as logging.INFO, got {minimum_level!r}")
        for name, value in (("map_signal", map_signal), ("map_payload", map_payload)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable or None, got {value!r}")
        self.sink = sink
        self.minimum_level = minimum_level
        self._map_signal = map_signal
        self._map_payload = map_payload
        self._lock = threading.Lock()
        self.emitted_count = 0
        self.dropped_count = 0
        self.error_count = 0

    def count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def enter(self) -> bool:
        """Mark this thread busy; False (and counted) when it already is: a record logged while handling one."""
        if _busy():
            self.count("dropped_count")
            return False
        _state.busy = True
        return True

    def emit(self, context: SignalLogContext) -> None:
        name = default_signal_name(context) if self._map_signal is None else self._map_signal(context)
        if name is None:
            return
        if not isinstance(name, str) or not name:
            raise TypeError(f"map_signal must return a non-empty string or None, got {name!r}")
        payload = default_payload(context) if self._map_payload is None else self._map_payload(context)
        key = event_key(context.event_id)
        sink = self.sink
        if isinstance(sink, TypedSignalSink):
            if payload is None:
                sink.untyped.emit(name, key)
            else:
                sink.emit(name, payload, key)
        elif payload is None:
            sink.emit(name, key)
        else:  # a plain sink keeps the payload on the event itself
            sink.emit(sink.make_event(name, key, payload=payload))
        with self._lock:
            self.emitted_count += 1


class _Counted:
    """The counters of a log-to-signal bridge (a handler's records, a processor's event dicts)."""

    _emitter: _Emitter

    @property
    def emitted_count(self) -> int:
        """Log events turned into signals."""
        return self._emitter.emitted_count

    @property
    def dropped_count(self) -> int:
        """Log events dropped because they were logged while one was being turned into a signal."""
        return self._emitter.dropped_count

    @property
    def error_count(self) -> int:
        """Log events whose conversion failed (a map raised, a message would not format)."""
        return self._emitter.error_count


class SignalLoggerProvider(_Counted, logging.Handler):
    """A ``logging.Handler`` that turns each record at or above ``minimum_level`` into a signal.

    A record of logger ``orders`` logged with ``extra={"event_id": EventId(1001, "DbFailure")}`` at ERROR
    becomes ``log.error.orders.dbfailure`` with key ``"DbFailure"`` and a ``SignalLogPayload``; an
    exception adds ``:{its class, slugged}``. On a ``TypedSignalSink`` the payload goes to the typed
    window and the signal is forwarded to its untyped sink; on a plain ``SignalSink`` the event carries
    the payload itself.

    It is safe from any thread and from inside the event loop, takes no handler lock (the sink is
    thread-safe on its own, so a thread logging never waits for another), and never raises into the
    logging call: a failing map or subscriber is counted in ``error_count`` and reported through
    ``handleError``. A record logged while a record is being turned into a signal on the same thread
    (a sink subscriber that logs) is dropped and counted in ``dropped_count``, so there is no storm.
    Records that ``SignalToLoggerAdapter`` made from signals are skipped.

    Args:
        sink: Where the signals go: a ``SignalSink`` or a ``TypedSignalSink[SignalLogPayload]``.
        minimum_level: The lowest level turned into a signal (the handler's level).
        map_signal: ``map_signal(ctx) -> name | None`` replaces the default name; None drops the record.
        map_payload: ``map_payload(ctx) -> SignalLogPayload | None``; None emits the signal without one.

    Example:
        >>> logging.getLogger().addHandler(SignalLoggerProvider(sink))
        >>> logging.getLogger("orders").error("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[SignalLogPayload],
        minimum_level: int = logging.INFO,
        map_signal: MapSignal | None = None,
        map_payload: MapPayload | None = None,
    ) -> None:
        self._emitter = _Emitter(sink, minimum_level, map_signal, map_payload)
        super().__init__(minimum_level)

    @property
    def sink(self) -> SignalSink | TypedSignalSink[SignalLogPayload]:
        """The sink the signals go to."""
        return self._emitter.sink

    def create_logger(self, category: str) -> logging.Logger:
        """``logging.getLogger(category)`` with this handler attached (once)."""
        logger = logging.getLogger(category)
        if self not in logger.handlers:
            logger.addHandler(self)
        return logger

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter and emit without the handler lock (``emit`` is thread-safe)."""
        verdict = self.filter(record)
        if isinstance(verdict, logging.LogRecord):  # Python 3.12+: a filter may return a new record
            record = verdict
        if verdict:
            self.emit(record)
        return verdict

    def emit(self, record: logging.LogRecord) -> None:
        """Turn ``record`` into a signal (never raises)."""
        if record.__dict__.get(MIRRORED) or record.levelno < self.level:
            return
        emitter = self._emitter
        if not emitter.enter():
            return
        try:
            info = record.exc_info
            extra = record.__dict__
            context = SignalLogContext(
                record.name,
                level_name(record.levelno),
                record.levelno,
                as_event_id(extra.get("event_id"), extra.get("event_name")),
                record.getMessage(),
                info[1] if info else None,
                record,
            )
            emitter.emit(context)
        except Exception:
            emitter.count("error_count")
            self.handleError(record)
        finally:
            _state.busy = False


_STRUCTLOG_LEVELS = {
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "exception": logging.ERROR,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "msg": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
    "notset": logging.NOTSET,
}


def _structlog_exception(event_dict: MutableMapping[str, Any], method_name: str) -> BaseException | None:
    value = event_dict.get("exc_info")
    if value is None and method_name == "exception":
        value = True
    if value is True:
        return sys.exc_info()[1]
    if isinstance(value, BaseException):
        return value
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value[1]
    return None


class SignalProcessor(_Counted):
    """A structlog processor that emits a signal for each event dict at or above ``minimum_level``.

    Put it in the processor chain before the renderer; it returns the event dict unchanged. The
    signal is named as ``SignalLoggerProvider`` names records: the category is ``category``, else the
    event dict's ``"logger"``, else the logger's ``name``, else ``"root"``; the event id comes from an
    ``event_id`` entry (an ``EventId`` or an int, with ``event_name``); the message is the ``"event"``;
    an exception from ``exc_info`` (or a ``log.exception(...)`` call) adds its class. Event dicts that
    ``SignalToStructlogAdapter`` made from signals are skipped, and the same storm guard applies.

    Args:
        sink: Where the signals go.
        minimum_level: The lowest level turned into a signal.
        map_signal: As for ``SignalLoggerProvider`` (the context has ``event_dict``, no ``record``).
        map_payload: As for ``SignalLoggerProvider``.
        category: A fixed category for every event.

    Example:
        >>> structlog.configure(processors=[SignalProcessor(sink), structlog.dev.ConsoleRenderer()])
    """

    def __init__(
        self,
        sink: SignalSink | TypedSignalSink[SignalLogPayload],
        minimum_level: int = logging.INFO,
        map_signal: MapSignal | None = None,
        map_payload: MapPayload | None = None,
        *,
        category: str | None = None,
    ) -> None:
        if category is not None and not isinstance(category, str):
            raise TypeError(f"category must be a string or None, got {category!r}")
        self._emitter = _Emitter(sink, minimum_level, map_signal, map_payload)
        self._category = category

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        """Emit the signal for ``event_dict`` (never raises) and return the event dict."""
        if event_dict.get(MIRRORED):
            return event_dict
        level = event_dict.get("level")
        levelno = _STRUCTLOG_LEVELS.get(method_name)
        if levelno is None and isinstance(level, str):
            levelno = _STRUCTLOG_LEVELS.get(level.lower())
        if levelno is None:
            levelno = logging.INFO
        emitter = self._emitter
        if levelno < emitter.minimum_level or not emitter.enter():
            return event_dict
        try:
            category = self._category or event_dict.get("logger") or getattr(logger, "name", None) or "root"
            context = SignalLogContext(
                str(category),
                level_name(levelno),
                levelno,
                as_event_id(event_dict.get("event_id"), event_dict.get("event_name")),
                str(event_dict.get("event", "")),
                _structlog_exception(event_dict, method_name),
                None,
                dict(event_dict),
            )
            emitter.emit(context)
        except Exception:
            emitter.count("error_count")
            logging.getLogger("ephemeral.logging").debug("SignalProcessor failed", exc_info=True)
        finally:
            _state.busy = False
        return event_dict


class LogMessage(NamedTuple):
    """What a signal is logged as: a level, an event id and a message."""

    level: int
    event_id: EventId
    message: str


def default_log_message(event: SignalEvent[Any]) -> LogMessage:
    """Level from the name's first segment, ``EventId(operation_id, key or signal)``, and the name and key."""
    return LogMessage(
        level_for_signal(event.signal),
        EventId(event.operation_id or 0, event.key or event.signal),
        f"{event.signal} (op:{event.operation_id}, key:{event.key or 'none'})",
    )


class _SignalMirror:
    """Subscribes to a sink and logs each signal until closed; what both adapters share."""

    def __init__(self, sink: SignalSink, map: Callable[[SignalEvent[Any]], LogMessage | None] | None) -> None:
        if isinstance(sink, TypedSignalSink):
            sink = sink.untyped
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if map is not None and not callable(map):
            raise TypeError(f"map must be callable or None, got {map!r}")
        self._map = map or default_log_message
        self.logged_count = 0
        self.skipped_count = 0
        self._subscription: Subscription = sink.subscribe(self._on_signal)

    def _on_signal(self, event: SignalEvent[Any]) -> None:
        if _busy():  # the signal was made from a log record on this thread: it is in the logs already
            self.skipped_count += 1
            return
        message = self._map(event)
        if message is None:
            return
        self._log(event, message)
        self.logged_count += 1

    def _log(self, event: SignalEvent[Any], message: LogMessage) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether the adapter has stopped listening."""
        return self._subscription.closed

    def close(self) -> None:
        """Stop logging signals. Idempotent."""
        self._subscription.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SignalToLoggerAdapter(_SignalMirror):
    """Logs every signal of a sink to a stdlib logger until closed (``close()`` or leaving ``with``).

    The level comes from the name's first segment (``error.db`` -> ERROR, ``warn.*`` -> WARNING,
    ``critical``/``fatal``, ``debug``, ``trace`` (level 5); a leading ``log.`` is skipped, so
    ``log.error.orders.dbfailure`` is an ERROR too; anything else INFO). The message is
    ``"{signal} (op:{operation_id}, key:{key or 'none'})"`` and the record has
    ``extra={"event_id": EventId(operation_id or 0, key or signal)}``. Wired both ways with a
    ``SignalLoggerProvider`` on the same sink it never loops: its records are marked and the provider
    skips them, and it does not log the signals the provider made from log records.

    Args:
        sink: The sink to listen to (a typed sink's untyped sink).
        logger: A ``logging.Logger`` (or ``LoggerAdapter``), or a logger name.
        map: ``map(event) -> LogMessage | None`` replaces the default; None skips the signal.
    """

    def __init__(
        self,
        sink: SignalSink,
        logger: logging.Logger | logging.LoggerAdapter[Any] | str,
        map: Callable[[SignalEvent[Any]], LogMessage | None] | None = None,
    ) -> None:
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        if not isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
            raise TypeError(f"logger must be a logging.Logger, a LoggerAdapter or a name, got {logger!r}")
        self._logger = logger
        super().__init__(sink, map)

    def _log(self, event: SignalEvent[Any], message: LogMessage) -> None:
        extra = {"event_id": message.event_id, MIRRORED: True, "signal": event.signal, "signal_key": event.key}
        self._logger.log(message.level, message.message, extra=extra)


class SignalToStructlogAdapter(_SignalMirror):
    """Logs every signal of a sink to a structlog logger until closed: the structlog ``SignalToLoggerAdapter``.

    Each signal is logged with ``logger.log(level, message, signal=, key=, operation_id=, event_id=)``
    (levels as for ``SignalToLoggerAdapter``; ``trace`` is logged at DEBUG, the lowest structlog
    level). ``SignalProcessor`` skips these event dicts, so both directions can share one sink.

    Args:
        sink: The sink to listen to.
        logger: A structlog logger; default ``structlog.get_logger("ephemeral.signals")``.
        map: ``map(event) -> LogMessage | None`` replaces the default; None skips the signal.
    """

    def __init__(
        self,
        sink: SignalSink,
        logger: Any = None,
        map: Callable[[SignalEvent[Any]], LogMessage | None] | None = None,
    ) -> None:
        if logger is None:
            logger = structlog.get_logger("ephemeral.signals")
        if not callable(getattr(logger, "log", None)):
            raise TypeError(f"logger must be a structlog logger with a log(level, event) method, got {logger!r}")
        self._logger = logger
        super().__init__(sink, map)

    def _log(self, event: SignalEvent[Any], message: LogMessage) -> None:
        self._logger.log(
            max(message.level, logging.DEBUG),
            message.message,
            signal=event.signal,
            key=event.key,
            operation_id=event.operation_id,
            event_id=message.event_id,
            **{MIRRORED: True},
        )
