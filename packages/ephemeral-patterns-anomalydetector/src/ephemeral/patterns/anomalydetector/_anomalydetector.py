"""A stateless anomaly detector: count the signals matching a glob in the sink's recent window."""

from __future__ import annotations

from datetime import timedelta

from ephemeral.core import PatternSet, SignalSink
from ephemeral.core.lowlevel import check_int, to_seconds

__all__ = ("SignalAnomalyDetector",)


class SignalAnomalyDetector:
    """Flags an anomaly while at least ``threshold`` signals matching ``pattern`` are in the recent window.

    Nothing is recorded between calls and nothing runs in the background: each call reads the sink's
    window (the signals emitted on the sink and those of every coordinator sharing it), counting the
    matching signals emitted at most ``window`` ago by the sink's clock. A signal emitted at ``t``
    counts up to and including ``t + window``; at any later instant it no longer does. The detector is
    safe to call from any task or thread, and one detector may be asked as often as you like.

    Args:
        sink: The signal sink to read.
        pattern: A glob on signal names (``"error.*"``; comma-separated alternatives allowed).
        threshold: How many matching signals in the window make an anomaly.
        window: How far back signals count, as seconds or a timedelta; at most the sink's ``max_age``
            (older signals are gone from the sink).

    Raises:
        TypeError: ``sink`` is not a ``SignalSink``, or an argument has the wrong type.
        ValueError: ``threshold`` is below 1, ``window`` is not positive or exceeds ``sink.max_age``,
            or ``pattern`` is blank.

    Example:
        >>> detector = SignalAnomalyDetector(sink, pattern="error.*", threshold=5, window=10)
        >>> if detector.is_anomalous():
        ...     print("Anomaly detected! Too many errors.")
    """

    __slots__ = ("_matcher", "_pattern", "_sink", "_threshold", "_window")

    def __init__(
        self,
        sink: SignalSink,
        pattern: str = "error.*",
        threshold: int = 5,
        window: float | timedelta = timedelta(seconds=10),
    ) -> None:
        if not isinstance(sink, SignalSink):
            raise TypeError(f"sink must be a SignalSink, got {sink!r}")
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str, got {pattern!r}")
        matcher = PatternSet(pattern)  # compiles each alternative: unsupported glob syntax raises ValueError
        if not matcher:  # blank, or only empty comma-separated alternatives: it would never match
            raise ValueError(f"pattern must not be blank, got {pattern!r}")
        self._threshold = check_int(threshold, "threshold")
        self._window = to_seconds(window, "window")
        if self._window > sink.max_age:
            raise ValueError(
                f"window must be <= the sink's max_age ({sink.max_age:g}s): older signals are not kept, got {window!r}"
            )
        self._sink = sink
        self._pattern = pattern
        self._matcher = matcher

    @property
    def pattern(self) -> str:
        """The glob that matching signals satisfy."""
        return self._pattern

    @property
    def threshold(self) -> int:
        """How many matching signals in the window make an anomaly."""
        return self._threshold

    @property
    def window(self) -> timedelta:
        """How far back signals count."""
        return timedelta(seconds=self._window)

    def get_match_count(self) -> int:
        """How many signals matching ``pattern`` were emitted at most ``window`` ago."""
        return self._sink.count(self._matcher, within=self._window)

    def is_anomalous(self) -> bool:
        """Whether at least ``threshold`` matching signals are in the window now."""
        return self.get_match_count() >= self._threshold

    def __repr__(self) -> str:
        return f"SignalAnomalyDetector(pattern={self._pattern!r}, threshold={self._threshold}, window={self._window:g})"
