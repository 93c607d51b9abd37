"""Backoff between attempts: exponential with a cap and seeded jitter, and the retry hints servers give."""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable, Iterable
from datetime import timedelta

from ._checks import check_float
from ._clock import to_seconds
from ._events import SignalCommandMatch
from ._wakeup import sleep_time

__all__ = ("RETRY_HINT_COMMANDS", "BackoffPolicy", "newest_retry_hint", "parse_duration", "parse_retry_hint")

#: Signal commands that carry a wait: ``retry-after:2s``, ``rate-limit:500ms``.
RETRY_HINT_COMMANDS = ("retry-after", "rate-limit")


def parse_duration(text: str) -> float | None:
    """Parse ``"500ms"``, ``"2s"``, ``"1.5s"`` or a bare number of seconds into seconds.

    Returns None for anything else (negative, not finite, unknown unit), so a garbled hint never stalls work.
    """
    text = text.strip().lower()
    scale = 1.0
    if text.endswith("ms"):
        text, scale = text[:-2], 0.001
    elif text.endswith("s"):
        text = text[:-1]
    try:
        value = float(text.strip()) * scale
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_hint(hint: object) -> float | None:
    """How long a failure asked to wait before the next attempt, in seconds; None when it did not say.

    ``hint`` is either a signal name carrying a hint command (``"retry-after:2s"``,
    ``"rate-limit:500ms"``, also behind a prefix: ``"api.rate-limit:1"``), or an exception whose
    ``retry_after`` attribute holds seconds, a timedelta or text such as ``"2"`` or ``"500ms"`` (a
    ``Retry-After`` header's value). Negative, non-finite and garbled hints count as no hint.
    """
    if isinstance(hint, str):
        for command in RETRY_HINT_COMMANDS:
            match = SignalCommandMatch.try_parse(hint, command)
            if match is not None:
                delay = parse_duration(match.payload)
                if delay is not None:
                    return delay
        return None
    value = getattr(hint, "retry_after", None) if isinstance(hint, BaseException) else None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        value = parse_duration(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def newest_retry_hint(error: BaseException | None, signals: Iterable[str] = ()) -> float | None:
    """The hint of ``error`` (see ``parse_retry_hint``), else that of the last hint-carrying signal."""
    delay = parse_retry_hint(error) if error is not None else None
    if delay is not None:
        return delay
    for signal in reversed(list(signals)):
        delay = parse_retry_hint(signal)
        if delay is not None:
            return delay
    return None


class BackoffPolicy:
    """How long to wait after failed attempt ``n``: ``initial * factor**(n - 1)``, capped, then jittered.

    ``initial`` may instead be a callable mapping the failed attempt's number (from 1) to the wait
    (seconds or a timedelta); ``factor`` does not apply to it, ``max_delay`` and ``jitter`` still do.
    A server's hint (``delay(n, hint=...)``, see ``parse_retry_hint``) replaces the computed wait and is
    never jittered or capped: the server knows best. Waits are returned as whole microseconds (see
    ``sleep_time``), ready for ``anyio.sleep``.

    Args:
        initial: The first wait, as seconds or a timedelta, or a callable of the attempt number.
        factor: The growth per further attempt (>= 1).
        max_delay: The longest computed wait, before jitter (None: uncapped).
        jitter: None, or a fraction in [0, 1]: each computed wait is multiplied by a uniform factor in
            ``[1 - jitter, 1 + jitter]``.
        random: The ``random.Random`` drawing the jitter (seed one for reproducible waits).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A negative wait, ``factor`` < 1, or ``jitter`` outside [0, 1].
    """

    __slots__ = ("_factor", "_initial", "_initial_of", "_jitter", "_max_delay", "_random")

    def __init__(
        self,
        initial: float | timedelta | Callable[[int], float | timedelta] = 0.1,
        *,
        factor: float = 2.0,
        max_delay: float | timedelta | None = None,
        jitter: float | None = None,
        random: _random.Random | None = None,
        name: str = "initial",
    ) -> None:
        self._initial_of: Callable[[int], float | timedelta] | None = None
        self._initial = 0.0
        if isinstance(initial, (int, float, timedelta)):
            self._initial = to_seconds(initial, name, allow_zero=True)
        elif callable(initial):
            self._initial_of = initial
        else:
            raise TypeError(f"{name} must be seconds, a timedelta or a callable of the attempt, got {initial!r}")
        self._factor = check_float(factor, "factor", minimum=1.0)
        self._max_delay = math.inf if max_delay is None else to_seconds(max_delay, "max_delay", allow_zero=True)
        self._jitter = 0.0 if jitter is None else check_float(jitter, "jitter", minimum=0.0, maximum=1.0)
        if random is not None and not isinstance(random, _random.Random):
            raise TypeError(f"random must be a random.Random or None, got {random!r}")
        self._random = random if random is not None or not self._jitter else _random.Random()

    @property
    def max_delay(self) -> float:
        """The longest computed wait before jitter (infinity when uncapped)."""
        return self._max_delay

    def delay(self, attempt: int, *, hint: float | None = None) -> float:
        """The wait after failed attempt ``attempt`` (from 1), or ``hint`` when the server gave one."""
        if hint is not None:
            return sleep_time(hint)
        if self._initial_of is None:
            delay = self._initial * self._factor ** (attempt - 1)
        else:
            delay = to_seconds(self._initial_of(attempt), "backoff(attempt)", allow_zero=True)
        if delay > self._max_delay:
            delay = self._max_delay
        if self._jitter:
            assert self._random is not None
            delay *= 1 + self._jitter * self._random.uniform(-1.0, 1.0)
        return sleep_time(delay)

    def __repr__(self) -> str:
        initial = self._initial_of if self._initial_of is not None else f"{self._initial:g}"
        return (
            f"BackoffPolicy({initial}, factor={self._factor:g}, max_delay={self._max_delay:g}, jitter={self._jitter:g})"
        )
