"""Routing signals from one sink to another, with protection against routing loops."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._events import SignalEvent, SignalPropagation
from ._hooks import Subscription, call_isolated
from ._lifecycle import CoordinatorClosedError
from ._matcher import GlobPattern, compile_pattern
from ._sink import SignalSink

__all__ = ("SignalRouter", "SignalTransform", "subscribe_to_pattern")

#: ``transform(event)`` returns the signal to forward: an event (its name, key and payload are used),
#: a new name (the key is kept), or None to forward nothing.
SignalTransform = Callable[[SignalEvent[Any]], "SignalEvent[Any] | str | None"]

#: The sinks each routed signal has passed through, while it is being delivered. Sinks call their
#: subscribers synchronously, so a route that would carry a signal back into a sink it already went
#: through runs while that signal is still being delivered, and finds it here.
_trails: dict[int, frozenset[int]] = {}


class _Route:
    """Forwards the matching signals of one sink to another; the source sink calls it for every signal."""

    __slots__ = ("blocked_count", "forwarded_count", "glob", "on_forwarded", "source", "target", "transform")

    def __init__(
        self,
        source: SignalSink,
        target: SignalSink,
        glob: GlobPattern,
        transform: SignalTransform | None,
        on_forwarded: Callable[[SignalEvent[Any], SignalEvent[Any]], object] | None,
    ) -> None:
        self.source = source
        self.target = target
        self.glob = glob
        self.transform = transform
        self.on_forwarded = on_forwarded
        self.forwarded_count = 0
        self.blocked_count = 0

    def __call__(self, event: SignalEvent[Any]) -> None:
        if not self.glob.matches(event.signal):
            return
        target = self.target
        trail = _trails.get(id(event))
        if trail is None:
            trail = frozenset((id(self.source),))
        if id(target) in trail:
            self.blocked_count += 1  # it came from there: routing it back would loop
            return
        name, key, payload = event.signal, event.key, event.payload
        if self.transform is not None:
            changed = self.transform(event)
            if changed is None:
                return
            if isinstance(changed, str):
                name = changed
            else:
                name, key, payload = changed.signal, changed.key, changed.payload
        chain = event.propagation if event.propagation is not None else SignalPropagation.root(event.signal)
        routed: SignalEvent[Any] = SignalEvent(name, event.operation_id, key, target.now(), chain.extend(name), payload)
        _trails[id(routed)] = trail | {id(target)}
        try:
            target.emit(routed)
        finally:
            del _trails[id(routed)]
        self.forwarded_count += 1
        call_isolated(self.on_forwarded, event, routed)


def _route(
    source: SignalSink,
    target: SignalSink,
    pattern: str,
    transform: SignalTransform | None,
    on_forwarded: Callable[[SignalEvent[Any], SignalEvent[Any]], object] | None,
) -> tuple[_Route, Subscription]:
    if not isinstance(source, SignalSink) or not isinstance(target, SignalSink):
        raise TypeError(f"source and target must be SignalSinks, got {source!r} and {target!r}")
    if source is target:
        raise ValueError("source and target must be different sinks")
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"pattern must be a non-blank glob, got {pattern!r}")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be callable or None, got {transform!r}")
    route = _Route(source, target, compile_pattern(pattern), transform, on_forwarded)
    return route, source.subscribe(route)


def subscribe_to_pattern(
    source: SignalSink,
    target: SignalSink,
    pattern: str,
    transform: SignalTransform | None = None,
    *,
    on_forwarded: Callable[[SignalEvent[Any], SignalEvent[Any]], object] | None = None,
) -> Subscription:
    """Forward every signal emitted on ``source`` whose name matches the glob ``pattern`` to ``target``.

    The forwarded signal keeps the operation id, key and payload, and is caused by the original: its
    propagation chain is the original's extended by the forwarded name, so each hop is recorded. A
    signal is never routed into a sink it has already passed through, so routes in both directions
    between two sinks (or around any ring of sinks) deliver each signal once to each sink and stop.

    Args:
        source: The sink to listen to.
        target: The sink to emit on.
        pattern: A glob on signal names (``"order.*"``).
        transform: Optionally rewrites each signal: returns an event (its name, key and payload are
            forwarded), a new name, or None to forward nothing.
        on_forwarded: Called with ``(original, forwarded)`` after each forward; exceptions are logged.

    Returns:
        A handle that stops forwarding when closed.

    Raises:
        ValueError: ``pattern`` is blank, or ``source`` is ``target``.
    """
    return _route(source, target, pattern, transform, on_forwarded)[1]


class SignalRouter:
    """A set of routes between sinks, closed together; counts what it forwarded and what it stopped.

    Example:
        >>> with SignalRouter() as router:
        ...     router.route(orders, audit, "order.*")
        ...     router.bridge(region_a, region_b, "cache.evict*")
    """

    def __init__(self) -> None:
        self._routes: list[tuple[_Route, Subscription]] = []
        self._closed = False

    def route(
        self,
        source: SignalSink,
        target: SignalSink,
        pattern: str,
        transform: SignalTransform | None = None,
    ) -> Subscription:
        """Forward ``source``'s signals matching ``pattern`` to ``target`` (see ``subscribe_to_pattern``)."""
        if self._closed:
            raise CoordinatorClosedError("the SignalRouter is closed")
        route, subscription = _route(source, target, pattern, transform, None)
        self._routes.append((route, subscription))
        return subscription

    def bridge(self, first: SignalSink, second: SignalSink, pattern: str) -> Subscription:
        """Route ``pattern`` both ways between two sinks; the handle closes both routes."""
        there = self.route(first, second, pattern)
        back = self.route(second, first, pattern)

        def close_both() -> None:
            there.close()
            back.close()

        return Subscription(close_both)

    @property
    def route_count(self) -> int:
        """Routes still forwarding."""
        return sum(1 for _, subscription in self._routes if not subscription.closed)

    @property
    def forwarded_count(self) -> int:
        """Signals forwarded by every route so far."""
        return sum(route.forwarded_count for route, _ in self._routes)

    @property
    def blocked_count(self) -> int:
        """Signals not routed back into a sink they had already passed through."""
        return sum(route.blocked_count for route, _ in self._routes)

    def close(self) -> None:
        """Stop every route. Idempotent."""
        self._closed = True
        for _, subscription in self._routes:
            subscription.close()

    def __enter__(self) -> SignalRouter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
