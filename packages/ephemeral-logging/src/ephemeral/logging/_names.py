"""What both directions share: event ids, level names, slugs, the log context and payload."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = (
    "MIRRORED",
    "TRACE",
    "EventId",
    "SignalLogContext",
    "SignalLogPayload",
    "default_signal_name",
    "level_for_signal",
    "level_name",
    "slug",
)

#: The level below DEBUG that ``log.trace.*`` signals stand for (as .NET's ``Trace``).
TRACE = 5

#: Records (stdlib ``extra``) and event dicts (structlog) carrying this key came from a signal: the
#: log-to-signal direction skips them, so a sink wired both ways never loops.
MIRRORED = "ephemeral_signal"


@dataclass(frozen=True, slots=True)
class EventId:
    """An event id as .NET logging has it: a number and an optional name.

    Pass it with a record: ``logger.error("Order store failed", extra={"event_id": EventId(1001, "DbFailure")})``.

    Attributes:
        id: The number (0 when there is none).
        name: The event's name, if any.
    """

    id: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise TypeError(f"id must be an int, got {self.id!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string or None, got {self.name!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class SignalLogPayload:
    """What a ``log.*`` signal carries about its record.

    Attributes:
        category: The logger's name, as given (``"MyApp.Service"``).
        level: The lowercase level name: ``trace``, ``debug``, ``information``, ``warning``, ``error``
            or ``critical``.
        message: The formatted message.
        event_id: The event id's number (0 without one).
        event_name: The event id's name, if any.
        exception_type: The exception class's qualified name (``"builtins.ValueError"``), if any.
        exception_message: ``str(exception)``, if any.
    """

    category: str
    level: str
    message: str
    event_id: int = 0
    event_name: str | None = None
    exception_type: str | None = None
    exception_message: str | None = None


@dataclass(frozen=True, slots=True)
class SignalLogContext:
    """One log event, as ``map_signal`` and ``map_payload`` see it.

    Attributes:
        category: The logger's name.
        level: The lowercase level name (``"error"``).
        levelno: The numeric level (``logging.ERROR``).
        event_id: The event id (``EventId(0)`` when the record has none).
        message: The formatted message.
        exception: The exception logged with it, if any.
        record: The stdlib ``LogRecord`` (None for structlog events).
        event_dict: The structlog event dict (None for stdlib records).
    """

    category: str
    level: str
    levelno: int
    event_id: EventId
    message: str
    exception: BaseException | None
    record: logging.LogRecord | None = None
    event_dict: dict[str, Any] | None = None


def level_name(levelno: int) -> str:
    """The lowercase .NET level name of a numeric level (below DEBUG is ``trace``)."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "information"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


_SIGNAL_LEVELS = {
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "debug": logging.DEBUG,
    "trace": TRACE,
}


def level_for_signal(signal: str) -> int:
    """The level a signal is logged at, from its first segment (split on ``.`` or ``:``, any case).

    ``fatal``/``critical`` -> CRITICAL, ``error`` -> ERROR, ``warn``/``warning`` -> WARNING, ``debug`` ->
    DEBUG, ``trace`` -> ``TRACE`` (5); anything else INFO. ``log.error.orders.dbfailure`` is logged at
    ERROR too: a leading ``log`` segment is skipped.
    """
    segments = signal.replace(":", ".").split(".")
    first = segments[0].lower()
    if first == "log" and len(segments) > 1:
        first = segments[1].lower()
    return _SIGNAL_LEVELS.get(first, logging.INFO)


@lru_cache(maxsize=4096)  # categories and event names repeat: a record costs one dict lookup each
def slug(text: str) -> str:
    """Letters and digits lowercased; every other run of characters (dots too) becomes one ``-``.

    Trailing dashes are dropped and an empty result is ``none``: ``"MyApp.Service"`` -> ``myapp-service``.
    """
    out: list[str] = []
    dash = False
    for char in text:
        if char.isalnum():
            out.append(char.lower())
            dash = False
        elif not dash:
            out.append("-")
            dash = True
    return "".join(out).rstrip("-") or "none"


def default_signal_name(context: SignalLogContext) -> str:
    """``log.{level}.{slug(category)}.{slug(event)}[:{slug(exception class)}]``.

    The event is the event id's name when it has one, else its number when not 0, else ``none``.
    """
    event_id = context.event_id
    event = event_id.name if event_id.name and event_id.name.strip() else str(event_id.id) if event_id.id else ""
    name = f"log.{context.level}.{slug(context.category)}.{slug(event)}"
    if context.exception is not None:
        name += ":" + slug(type(context.exception).__name__)
    return name


def event_key(event_id: EventId) -> str:
    """The signal's key: the event name, else the number as a string (``"0"`` without an event id)."""
    return event_id.name if event_id.name and event_id.name.strip() else str(event_id.id)


def default_payload(context: SignalLogContext) -> SignalLogPayload:
    """The payload of a log signal: the record's category, level, message, event id and exception."""
    exception = context.exception
    cls = type(exception) if exception is not None else None
    return SignalLogPayload(
        category=context.category,
        level=context.level,
        message=context.message,
        event_id=context.event_id.id,
        event_name=context.event_id.name,
        exception_type=None if cls is None else f"{cls.__module__}.{cls.__qualname__}",
        exception_message=None if exception is None else str(exception),
    )


def as_event_id(value: object, name: object = None) -> EventId:
    """An ``EventId`` from what a record or event dict carries: an EventId, an int, or nothing."""
    if isinstance(value, EventId):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return EventId(value, name if isinstance(name, str) else None)
    return EventId(0, name if isinstance(name, str) else None)
