"""BoundedMap: an LRU map bounded by size whose stale entries drop from the old end."""

from __future__ import annotations

import pytest

from ephemeral.core.lowlevel import BoundedMap


def test_put_evicts_the_least_recent_beyond_max_size() -> None:
    evicted: list[tuple[str, int]] = []
    bounded: BoundedMap[str, int] = BoundedMap(2, on_evict=lambda key, value: evicted.append((key, value)))
    bounded.put("a", 1)
    bounded.put("b", 2)
    assert bounded.touch("a") == 1
    bounded.put("c", 3)
    assert list(bounded.items()) == [("a", 1), ("c", 3)]
    assert evicted == [("b", 2)]
    bounded.put("a", 10)  # replacing moves to the recent end
    assert list(bounded) == ["c", "a"]
    assert bounded.oldest() == ("c", 3)


def test_touch_of_an_absent_key_returns_none() -> None:
    bounded: BoundedMap[str, int | None] = BoundedMap(3)
    assert bounded.touch("x") is None
    bounded.put("n", None)
    bounded.put("m", 1)
    assert bounded.touch("n") is None
    assert list(bounded) == ["m", "n"]


def test_drop_while_evicts_stale_entries_from_the_old_end_only() -> None:
    evicted: list[str] = []
    bounded: BoundedMap[str, float] = BoundedMap(10, on_evict=lambda key, value: evicted.append(key))
    for key, stamp in [("a", 1.0), ("b", 2.0), ("c", 9.0), ("d", 3.0)]:
        bounded.put(key, stamp)
    assert bounded.drop_while(lambda stamp: stamp < 5.0) == 2  # "d" is stale but behind a fresh entry
    assert evicted == ["a", "b"]
    assert list(bounded) == ["c", "d"]
    assert bounded.drop_while(lambda stamp: True) == 2
    assert bounded.oldest() is None
    assert bounded.drop_while(lambda stamp: True) == 0


def test_plain_removal_is_not_an_eviction() -> None:
    evicted: list[str] = []
    bounded: BoundedMap[str, int] = BoundedMap(5, on_evict=lambda key, value: evicted.append(key))
    bounded.put("a", 1)
    bounded.put("b", 2)
    del bounded["a"]
    bounded.pop("b")
    bounded.put("c", 3)
    bounded.clear()
    assert evicted == []
    bounded.put("d", 4)
    assert bounded.evict("d") == 4
    assert evicted == ["d"]
    with pytest.raises(KeyError):
        bounded.evict_oldest()


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="max_size"):
        BoundedMap(0)
    with pytest.raises(TypeError, match="max_size"):
        BoundedMap("3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_evict"):
        BoundedMap(3, on_evict=1)  # type: ignore[arg-type]
    assert repr(BoundedMap(3)) == "<BoundedMap 0/3>"


def test_put_with_now_drops_expired_entries_at_the_old_end() -> None:
    evicted: list[str] = []
    bounded: BoundedMap[str, float] = BoundedMap(
        3, on_evict=lambda key, value: evicted.append(key), expires_at=lambda expiry: expiry
    )
    bounded.put("a", 5.0, now=0.0)
    bounded.put("b", 20.0, now=0.0)
    bounded.put("c", 6.0, now=0.0)
    bounded.put("d", 30.0, now=10.0)  # beyond max_size: "a" goes; then "b" (fresh) stops the expiry sweep
    assert evicted == ["a"] and list(bounded) == ["b", "c", "d"]
    assert bounded.drop_expired(15.0) == 0  # "b" (fresh until 20) shields the expired "c" behind it
    assert bounded.drop_expired(25.0) == 2  # "b", then "c"
    assert list(bounded) == ["d"]
    with pytest.raises(TypeError, match="expires_at"):
        BoundedMap(3).drop_expired(1.0)
    with pytest.raises(TypeError, match="expires_at"):
        BoundedMap(3, expires_at=1)  # type: ignore[arg-type]
