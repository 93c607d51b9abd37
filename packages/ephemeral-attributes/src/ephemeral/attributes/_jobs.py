"""Job declarations: the ``@ephemeral_job`` and ``@ephemeral_jobs`` decorators, ``KeySource``, and the scanner."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from ephemeral.core import PatternSet, SignalEvent

__all__ = (
    "EphemeralJobDescriptor",
    "EphemeralJobScanner",
    "KeySource",
    "ephemeral_job",
    "ephemeral_jobs",
    "parse_lane",
)

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

_JOB = "__ephemeral_job__"
_JOBS = "__ephemeral_jobs__"
#: The lane of jobs that name none, neither on the method nor on the class.
DEFAULT_LANE = "default"


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a job's key comes from in the signal's payload: ``key_from_payload=KeySource("order.id")``.

    ``property_path`` is a dotted path over attributes or mapping keys (``"customer.id"``); without one
    the key is ``str(payload)`` itself. A plain string ``key_from_payload="customer.id"`` is the same as
    ``KeySource("customer.id")``.
    """

    property_path: str | None = None

    def __post_init__(self) -> None:
        if self.property_path is not None and (not isinstance(self.property_path, str) or not self.property_path):
            raise ValueError(f"property_path must be a non-empty string or None, got {self.property_path!r}")

    def extract(self, payload: object) -> str | None:
        """The key for ``payload``, or None when there is no payload or the path does not resolve."""
        if payload is None:
            return None
        value: object = payload
        if self.property_path is not None:
            for part in self.property_path.split("."):
                value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
                if value is None:
                    return None
        return str(value)


def parse_lane(lane: str, where: str = "lane") -> tuple[str, int | None]:
    """``"hot:4"`` -> ``("hot", 4)``; ``"io"`` -> ``("io", None)`` (no lane limit).

    Raises:
        ValueError: the name is blank or the part after ``:`` is not an int >= 1.
    """
    if not isinstance(lane, str) or not lane.strip() or lane != lane.strip():
        raise ValueError(f"{where}: a lane must be a non-empty name without surrounding spaces, got {lane!r}")
    name, colon, limit = lane.partition(":")
    if not colon:
        return name, None
    if not name or not limit.isdigit() or int(limit) < 1:
        raise ValueError(f"{where}: lane {lane!r} must be 'name' or 'name:N' with N an int >= 1")
    return name, int(limit)


def _names(value: Iterable[str] | str | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{what} must hold non-empty signal names, got {name!r}")
    return names


def _check_count(value: object, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")


@dataclass(frozen=True, slots=True)
class _JobSpec:
    """What ``@ephemeral_job`` recorded on a method (None: not given, the class default applies)."""

    trigger: str
    priority: int | None
    max_concurrency: int | None
    lane: str | None
    operation_key: str | None
    key_from_signal: bool
    key_from_payload: KeySource | None
    timeout_ms: int
    emit_on_start: tuple[str, ...]
    emit_on_complete: tuple[str, ...]
    emit_on_failure: tuple[str, ...]
    swallow_exceptions: bool
    max_retries: int
    retry_delay_ms: int
    pin: bool
    expire_after_ms: int
    await_signals: tuple[str, ...]
    await_timeout_ms: int


@dataclass(frozen=True, slots=True)
class _ClassSpec:
    signal_prefix: str | None = None
    default_lane: str | None = None
    default_priority: int = 0
    default_max_concurrency: int = 1


def ephemeral_job(
    trigger: str,
    *,
    priority: int | None = None,
    max_concurrency: int | None = None,
    lane: str | None = None,
    operation_key: str | None = None,
    key_from_signal: bool = False,
    key_from_payload: KeySource | str | None = None,
    timeout_ms: int = 0,
    emit_on_start: Iterable[str] | str = (),
    emit_on_complete: Iterable[str] | str = (),
    emit_on_failure: Iterable[str] | str = (),
    swallow_exceptions: bool = False,
    max_retries: int = 0,
    retry_delay_ms: int = 100,
    pin: bool = False,
    expire_after_ms: int = 0,
    await_signals: Iterable[str] | str = (),
    await_timeout_ms: int = 0,
) -> Callable[[F], F]:
    """Mark ``async def method(self, event)`` as a job run for every signal matching ``trigger``.

    Args:
        trigger: A glob on signal names (``"log.error.*"``; comma-separated alternatives allowed). A
            class ``signal_prefix`` is joined in front with a dot.
        priority: Lower runs first among the jobs one signal matches (default 0, or the class default).
        max_concurrency: The most invocations of this job at once (default 1, or the class default);
            0 means no job limit (the lane's, if any, still holds).
        lane: ``"name"`` or ``"name:N"``: jobs sharing a lane share its limit of N at once.
        operation_key: A fixed key: every invocation runs in order, one at a time.
        key_from_signal: Run invocations in order per signal key (signals without a key run in parallel).
        key_from_payload: A ``KeySource`` (or its dotted path) taking the key from the signal's payload.
        timeout_ms: Cancel an attempt after this long (a failure, retried like any other); 0: no limit.
        emit_on_start: Signals emitted (with the trigger's key) before the first attempt.
        emit_on_complete: Signals emitted (with the trigger's key) after a successful attempt.
        emit_on_failure: Signals emitted (with the trigger's key) after the last failed attempt.
        swallow_exceptions: Do not re-raise the final failure (the invocation counts as completed).
        max_retries: Attempts after the first failed one.
        retry_delay_ms: The backoff after failed attempt n is ``retry_delay_ms * 2**(n-1)``.
        pin: Keep the invocation's operation in the job's window until an ack arrives (see the runner).
        expire_after_ms: How long a pinned invocation waits for its ack; 0: until the runner closes.
        await_signals: Globs that must all be live on the sink before the body runs.
        await_timeout_ms: How long to wait for ``await_signals``; 0 waits until the runner closes.

    Raises:
        TypeError: The method is not ``async def``, or an argument has the wrong type.
        ValueError: The trigger is blank, a limit is negative, or the lane cannot be parsed.
    """
    if trigger is None:
        raise TypeError("ephemeral_job needs a trigger signal pattern, got None")
    if not isinstance(trigger, str) or not PatternSet(trigger):
        raise ValueError(f"ephemeral_job: trigger must be a non-empty glob, got {trigger!r}")

    def decorate(method: F) -> F:
        where = f"job {getattr(method, '__qualname__', method)!r}"
        if not inspect.iscoroutinefunction(method):
            raise TypeError(f"{where} must be an `async def` method taking the SignalEvent")
        for name, value, minimum in (
            ("priority", priority, -(2**31)),
            ("max_concurrency", max_concurrency, 0),
        ):
            if value is not None:
                _check_count(value, f"{where}: {name}", minimum)
        for name, value in (
            ("timeout_ms", timeout_ms),
            ("max_retries", max_retries),
            ("retry_delay_ms", retry_delay_ms),
            ("expire_after_ms", expire_after_ms),
            ("await_timeout_ms", await_timeout_ms),
        ):
            _check_count(value, f"{where}: {name}", 0)
        if lane is not None:
            parse_lane(lane, f"{where}: lane")
        if operation_key is not None and not isinstance(operation_key, str):
            raise TypeError(f"{where}: operation_key must be a string or None, got {operation_key!r}")
        source = KeySource(key_from_payload) if isinstance(key_from_payload, str) else key_from_payload
        if source is not None and not isinstance(source, KeySource):
            raise TypeError(f"{where}: key_from_payload must be a KeySource, a path or None, got {key_from_payload!r}")
        spec = _JobSpec(
            trigger=trigger,
            priority=priority,
            max_concurrency=max_concurrency,
            lane=lane,
            operation_key=operation_key,
            key_from_signal=bool(key_from_signal),
            key_from_payload=source,
            timeout_ms=timeout_ms,
            emit_on_start=_names(emit_on_start, f"{where}: emit_on_start"),
            emit_on_complete=_names(emit_on_complete, f"{where}: emit_on_complete"),
            emit_on_failure=_names(emit_on_failure, f"{where}: emit_on_failure"),
            swallow_exceptions=bool(swallow_exceptions),
            max_retries=max_retries,
            retry_delay_ms=retry_delay_ms,
            pin=bool(pin),
            expire_after_ms=expire_after_ms,
            await_signals=_names(await_signals, f"{where}: await_signals"),
            await_timeout_ms=await_timeout_ms,
        )
        setattr(method, _JOB, spec)
        return method

    return decorate


def ephemeral_jobs(
    *,
    signal_prefix: str | None = None,
    default_lane: str | None = None,
    default_priority: int = 0,
    default_max_concurrency: int = 1,
) -> Callable[[C], C]:
    """Defaults for the jobs of a class: ``@ephemeral_jobs(signal_prefix="stage", default_lane="pipeline")``.

    ``signal_prefix`` is joined to each trigger with a dot (``stage`` + ``ingest`` -> ``stage.ingest``);
    a method's own ``lane``, ``priority`` and ``max_concurrency`` win over the defaults, whatever their value.

    Raises:
        ValueError: A blank prefix, an unparsable lane or a negative default.
    """
    if signal_prefix is not None and (not isinstance(signal_prefix, str) or not signal_prefix.strip()):
        raise ValueError(f"ephemeral_jobs: signal_prefix must be a non-empty string or None, got {signal_prefix!r}")
    if default_lane is not None:
        parse_lane(default_lane, "ephemeral_jobs: default_lane")
    _check_count(default_priority, "ephemeral_jobs: default_priority", -(2**31))
    _check_count(default_max_concurrency, "ephemeral_jobs: default_max_concurrency", 0)
    spec = _ClassSpec(signal_prefix, default_lane, default_priority, default_max_concurrency)

    def decorate(cls: C) -> C:
        if not isinstance(cls, type):
            raise TypeError(f"ephemeral_jobs decorates a class, got {cls!r}")
        setattr(cls, _JOBS, spec)
        return cls

    return decorate


def _ms(value: int) -> timedelta | None:
    return timedelta(milliseconds=value) if value > 0 else None


@dataclass(frozen=True, eq=False)
class EphemeralJobDescriptor:
    """One job found on a target: its method and its effective settings (method over class defaults).

    Attributes:
        target: The object (or, for scoped runners, the class) the job was found on.
        method: The job's function (unbound).
        name: ``"{class qualname}.{method name}"``, unique per runner.
        method_name: The method's name, as in ``job.retry:{method_name}:{n}``.
        effective_trigger_signal: The trigger with the class prefix applied.
        effective_priority: Lower runs first.
        effective_max_concurrency: The job's limit; 0 means none.
        lane: The lane's name (``"default"`` when neither method nor class names one).
        lane_max_concurrency: The lane's limit, or None when it has none.
    """

    target: Any
    method: Callable[..., Any]
    name: str
    method_name: str
    spec: _JobSpec = field(repr=False)
    effective_trigger_signal: str
    effective_priority: int
    effective_max_concurrency: int
    lane: str
    lane_max_concurrency: int | None
    order: int = field(repr=False, default=0)
    _trigger: PatternSet = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_trigger", PatternSet(self.effective_trigger_signal))

    # The decorator's settings, under their own names.
    @property
    def timeout(self) -> timedelta | None:
        """The per-attempt limit, or None."""
        return _ms(self.spec.timeout_ms)

    @property
    def is_pinned(self) -> bool:
        """Whether invocations stay in the window until acknowledged."""
        return self.spec.pin

    @property
    def expire_after(self) -> timedelta | None:
        """How long a pinned invocation waits for its ack, or None."""
        return _ms(self.spec.expire_after_ms)

    @property
    def await_signals(self) -> tuple[str, ...]:
        """Globs that must all be live before the body runs."""
        return self.spec.await_signals

    @property
    def await_timeout(self) -> timedelta | None:
        """How long to wait for ``await_signals``, or None (until the runner closes)."""
        return _ms(self.spec.await_timeout_ms)

    @property
    def max_retries(self) -> int:
        """Attempts after the first failure."""
        return self.spec.max_retries

    @property
    def retry_delay(self) -> timedelta:
        """The first backoff; it doubles after each further failure."""
        return timedelta(milliseconds=self.spec.retry_delay_ms)

    @property
    def emit_on_start(self) -> tuple[str, ...]:
        """Signals emitted before the first attempt."""
        return self.spec.emit_on_start

    @property
    def emit_on_complete(self) -> tuple[str, ...]:
        """Signals emitted after a successful attempt."""
        return self.spec.emit_on_complete

    @property
    def emit_on_failure(self) -> tuple[str, ...]:
        """Signals emitted after the final failure."""
        return self.spec.emit_on_failure

    @property
    def swallow_exceptions(self) -> bool:
        """Whether the final failure is swallowed."""
        return self.spec.swallow_exceptions

    @property
    def is_keyed(self) -> bool:
        """Whether invocations run in order per key (any key source is set)."""
        spec = self.spec
        return spec.key_from_signal or spec.key_from_payload is not None or spec.operation_key is not None

    def matches(self, event: SignalEvent[Any] | str) -> bool:
        """Whether ``event`` (or a signal name) triggers this job."""
        return self._trigger.matches(event if isinstance(event, str) else event.signal)

    def extract_key(self, event: SignalEvent[Any], payload: object = None) -> str | None:
        """The invocation's key: from the payload, else the signal's key, else ``operation_key``, else None.

        ``payload`` defaults to ``event.payload``.
        """
        spec = self.spec
        if spec.key_from_payload is not None:
            key = spec.key_from_payload.extract(event.payload if payload is None else payload)
            if key is not None:
                return key
        if spec.key_from_signal and event.key is not None:
            return event.key
        return spec.operation_key


class EphemeralJobScanner:
    """Finds the ``@ephemeral_job`` methods of an object or class."""

    @staticmethod
    def scan(target: object) -> list[EphemeralJobDescriptor]:
        """Every job of ``target`` (an instance, or a class for scoped runners), lowest priority first.

        Public and private methods count, inherited ones too (an override replaces its base's).
        Among equal priorities, declaration order holds.
        """
        cls = target if isinstance(target, type) else type(target)
        defaults: _ClassSpec = getattr(cls, _JOBS, None) or _ClassSpec()
        methods: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name, attribute in vars(klass).items():
                function = getattr(attribute, "__func__", attribute)  # staticmethod/classmethod wrappers
                if getattr(function, _JOB, None) is not None:
                    methods[name] = function
                elif name in methods:
                    del methods[name]  # overridden without the decorator
        jobs: list[EphemeralJobDescriptor] = []
        for order, (name, function) in enumerate(methods.items()):
            spec: _JobSpec = getattr(function, _JOB)
            trigger = spec.trigger
            if defaults.signal_prefix:
                trigger = ",".join(f"{defaults.signal_prefix}.{part.strip()}" for part in trigger.split(","))
            lane_name, lane_limit = parse_lane(spec.lane or defaults.default_lane or DEFAULT_LANE)
            jobs.append(
                EphemeralJobDescriptor(
                    target=target,
                    method=function,
                    name=f"{cls.__qualname__}.{name}",
                    method_name=name,
                    spec=spec,
                    effective_trigger_signal=trigger,
                    effective_priority=defaults.default_priority if spec.priority is None else spec.priority,
                    effective_max_concurrency=(
                        defaults.default_max_concurrency if spec.max_concurrency is None else spec.max_concurrency
                    ),
                    lane=lane_name,
                    lane_max_concurrency=lane_limit,
                    order=order,
                )
            )
        jobs.sort(key=lambda job: job.effective_priority)
        return jobs

    @staticmethod
    def scan_all(targets: Iterable[object]) -> list[EphemeralJobDescriptor]:
        """The jobs of every target, lowest priority first (stable across targets)."""
        jobs = [job for target in targets for job in EphemeralJobScanner.scan(target)]
        jobs.sort(key=lambda job: job.effective_priority)
        return jobs
