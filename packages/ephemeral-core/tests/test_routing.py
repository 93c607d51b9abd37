"""Routing between sinks: forwarding by pattern, transforms, recorded hops, and no routing loops."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import anyio
import pytest

from ephemeral.core import (
    CoordinatorClosedError,
    ResponsibilitySignalManager,
    SignalEvent,
    SignalPropagation,
    SignalRouter,
    SignalSink,
    subscribe_to_pattern,
)


def names(sink: SignalSink) -> list[str]:
    return [event.signal for event in sink.sense()]


def test_forwards_matching_signals_as_caused_signals() -> None:
    """Matching signals reach the target with the same operation id, key and payload, and the hop in their chain."""
    source, target = SignalSink(), SignalSink()
    subscribe_to_pattern(source, target, "order.*")
    original: SignalEvent[Any] = SignalEvent("order.placed", 77, "o-1", source.now(), payload={"total": 5})
    source.emit(original)
    source.emit("payment.done", key="p-1")
    [routed] = target.sense()
    assert (routed.signal, routed.operation_id, routed.key, routed.payload) == ("order.placed", 77, "o-1", {"total": 5})
    assert routed.propagation == SignalPropagation(("order.placed", "order.placed"))
    assert names(source) == ["order.placed", "payment.done"]


def test_each_hop_extends_the_chain() -> None:
    """Through A -> B -> C the chain grows by one per hop, after the original's own chain."""
    a, b, c = SignalSink(), SignalSink(), SignalSink()
    subscribe_to_pattern(a, b, "x")
    subscribe_to_pattern(b, c, "x")
    cause: SignalEvent[Any] = SignalEvent("x", 1, None, a.now(), SignalPropagation(("start", "x")))
    a.emit(cause)
    [at_c] = c.sense()
    assert at_c.propagation is not None and at_c.propagation.path == ("start", "x", "x", "x")


def test_transform_renames_rekeys_or_drops() -> None:
    """A transform can return a new name, a rewritten event, or None to forward nothing."""
    source, target = SignalSink(), SignalSink()

    def transform(event: SignalEvent[Any]) -> SignalEvent[Any] | str | None:
        if event.signal == "secret.token":
            return None
        if event.key == "rekey":
            return dataclasses.replace(event, signal="remote.rekeyed", key="new-key")
        return "remote." + event.signal

    subscribe_to_pattern(source, target, "*", transform)
    source.emit("cache.evict", key="k1")
    source.emit("secret.token", key="k2")
    source.emit("cache.hit", key="rekey")
    assert [(e.signal, e.key) for e in target.sense()] == [("remote.cache.evict", "k1"), ("remote.rekeyed", "new-key")]
    renamed = target.sense("remote.cache.evict")[0]
    assert renamed.propagation is not None and renamed.propagation.path == ("cache.evict", "remote.cache.evict")


def test_bidirectional_routes_do_not_recurse() -> None:
    """Bug 20: routes both ways between two sinks deliver a signal once to each sink and stop."""
    a, b = SignalSink(), SignalSink()
    forwarded: list[tuple[str, str]] = []
    subscribe_to_pattern(a, b, "sync.*", on_forwarded=lambda o, r: forwarded.append(("a->b", r.signal)))
    subscribe_to_pattern(b, a, "sync.*", on_forwarded=lambda o, r: forwarded.append(("b->a", r.signal)))
    a.emit("sync.one")
    assert names(a) == ["sync.one"] and names(b) == ["sync.one"]
    b.emit("sync.two")
    assert names(a) == ["sync.one", "sync.two"] and names(b) == ["sync.one", "sync.two"]
    assert forwarded == [("a->b", "sync.one"), ("b->a", "sync.two")]
    assert a.subscriber_errors == 0 and b.subscriber_errors == 0


def test_a_ring_of_sinks_delivers_once_to_each() -> None:
    """Around a ring A -> B -> C -> A (with wildcards) each sink receives a signal exactly once."""
    a, b, c = SignalSink(), SignalSink(), SignalSink()
    with SignalRouter() as router:
        router.route(a, b, "*")
        router.route(b, c, "*")
        router.route(c, a, "*")
        a.emit("ping")
        assert names(a) == names(b) == names(c) == ["ping"]
        assert router.forwarded_count == 2 and router.blocked_count == 1
        c.emit("pong")
        assert names(a) == names(b) == names(c) == ["ping", "pong"]


def test_a_reaction_is_a_new_signal_and_is_routed() -> None:
    """Loop protection follows the signal, not the sink: a new signal emitted in reaction to a routed one is routed."""
    a, b = SignalSink(), SignalSink()
    subscribe_to_pattern(a, b, "request")
    subscribe_to_pattern(b, a, "reply")

    def respond(event: SignalEvent[Any]) -> None:
        if event.signal == "request":
            b.emit("reply", key=event.key)

    b.subscribe(respond)
    a.emit("request", key="r1")
    assert names(a) == ["request", "reply"]
    assert names(b) == ["request", "reply"]


def test_closing_stops_forwarding() -> None:
    """Closing the handle from subscribe_to_pattern stops the route."""
    source, target = SignalSink(), SignalSink()
    route = subscribe_to_pattern(source, target, "*")
    source.emit("before")
    route.close()
    source.emit("after")
    assert names(target) == ["before"]


def test_router_bridge_counts_and_close() -> None:
    """A router's bridge routes both ways; the router counts forwards and stopped loops, and close() stops all."""
    a, b, audit = SignalSink(), SignalSink(), SignalSink()
    router = SignalRouter()
    router.route(a, audit, "order.*")
    bridge = router.bridge(a, b, "cache.*")
    assert router.route_count == 3
    a.emit("cache.evict", key="k")
    a.emit("order.placed")
    assert names(b) == ["cache.evict"] and names(audit) == ["order.placed"]
    assert (router.forwarded_count, router.blocked_count) == (2, 1)
    bridge.close()
    assert router.route_count == 1
    b.emit("cache.hit")
    assert names(a) == ["cache.evict", "order.placed"]
    router.close()
    router.close()
    a.emit("order.cancelled")
    assert names(audit) == ["order.placed"] and router.route_count == 0
    with pytest.raises(CoordinatorClosedError, match="SignalRouter is closed"):
        router.route(a, b, "*")


def test_validation() -> None:
    """Routing a sink to itself, a blank pattern, a non-sink or a non-callable transform is refused."""
    a, b = SignalSink(), SignalSink()
    with pytest.raises(ValueError, match="different"):
        subscribe_to_pattern(a, a, "*")
    with pytest.raises(ValueError, match="pattern"):
        subscribe_to_pattern(a, b, "  ")
    with pytest.raises(TypeError, match="SignalSink"):
        subscribe_to_pattern(a, "b", "*")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="transform"):
        subscribe_to_pattern(a, b, "*", "upper")  # type: ignore[arg-type]


def test_raising_transform_is_isolated_by_the_source() -> None:
    """A transform that raises is logged and counted by the source sink; emitting carries on."""
    source, target = SignalSink(), SignalSink()

    def broken(event: SignalEvent[Any]) -> str:
        raise RuntimeError("transform bug")

    subscribe_to_pattern(source, target, "*", broken)
    source.emit("x")
    assert source.subscriber_errors == 1 and names(target) == []
    source.emit("y")
    assert source.subscriber_errors == 2


def test_routed_ack_releases_a_responsibility_on_the_other_sink() -> None:
    """An ack emitted on a consumer's sink reaches the producer's sink through a route and releases the pin."""
    producer, consumer = SignalSink(), SignalSink()
    pinned: set[int] = set()

    class Pinning:
        def pin(self, operation_id: int) -> bool:
            pinned.add(operation_id)
            return True

        def unpin(self, operation_id: int) -> bool:
            pinned.discard(operation_id)
            return True

    manager = ResponsibilitySignalManager(Pinning(), producer)
    with SignalRouter() as router:
        router.bridge(producer, consumer, "file.*")
        manager.pin_until_queried(5, "file.ready", ack_key="f-5")
        producer.emit("file.ready", key="f-5")
        assert names(consumer) == ["file.ready"] and pinned == {5}
        consumer.emit("file.ready.ack", key="f-5")
        assert pinned == set()
        assert names(producer) == ["file.ready", "file.ready.ack", "responsibility.acked"]


def test_concurrent_threads_on_a_bridge() -> None:
    """Four threads emitting on both ends of a bridge: every signal reaches both sinks exactly once."""
    a, b = SignalSink(max_capacity=10_000, max_age=3600), SignalSink(max_capacity=10_000, max_age=3600)
    with SignalRouter() as router:
        router.bridge(a, b, "*")

        def work(sink: SignalSink, prefix: str) -> None:
            for number in range(500):
                sink.emit(f"{prefix}.{number}")

        threads = [threading.Thread(target=work, args=(sink, f"t{n}")) for n, sink in enumerate((a, b, a, b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(names(a)) == sorted(names(b))
    assert len(names(a)) == 2000 and len(set(names(a))) == 2000


async def test_routes_feed_async_consumers_on_the_loop() -> None:
    """Routing works from inside the event loop too: a routed signal wakes a task waiting on the target."""
    a, b = SignalSink(), SignalSink()
    arrived = anyio.Event()
    b.subscribe(lambda event: arrived.set())
    with SignalRouter() as router:
        router.route(a, b, "wake")
        a.emit("wake")
        with anyio.fail_after(1):
            await arrived.wait()
