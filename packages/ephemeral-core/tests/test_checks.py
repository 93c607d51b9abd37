"""Argument checks: wrong type TypeError, out of range ValueError, each naming the argument."""

from __future__ import annotations

import functools
import math

import pytest

from ephemeral.core.lowlevel import (
    check_async_callable,
    check_callable,
    check_choice,
    check_float,
    check_int,
    check_optional_int,
)


def test_check_int() -> None:
    assert check_int(3, "n") == 3
    assert check_int(0, "n", minimum=0) == 0
    with pytest.raises(TypeError, match="n must be an int"):
        check_int(True, "n")
    with pytest.raises(TypeError, match="n must be an int"):
        check_int(1.0, "n")
    with pytest.raises(ValueError, match="n must be >= 1"):
        check_int(0, "n")
    with pytest.raises(ValueError, match="n must be <= 5"):
        check_int(6, "n", maximum=5)
    assert check_optional_int(None, "n") is None
    assert check_optional_int(2, "n") == 2
    with pytest.raises(ValueError, match="n"):
        check_optional_int(0, "n")


def test_check_float() -> None:
    assert check_float(1, "x") == 1.0
    assert isinstance(check_float(1, "x"), float)
    assert check_float(0.5, "x", minimum=0.0, maximum=1.0) == 0.5
    with pytest.raises(TypeError, match="x must be a number"):
        check_float("1", "x")
    with pytest.raises(TypeError, match="x"):
        check_float(False, "x")
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="x must be finite"):
            check_float(bad, "x")
    with pytest.raises(ValueError, match="x must be > 0"):
        check_float(0.0, "x", minimum=0.0, exclusive_minimum=True)
    with pytest.raises(ValueError, match="between 0 and 1"):
        check_float(1.5, "x", minimum=0.0, maximum=1.0)
    with pytest.raises(ValueError, match=">= 0 and <= 1"):
        check_float(-0.5, "x", minimum=0.0, maximum=1.0)
    with pytest.raises(ValueError, match="<= 2"):
        check_float(3.0, "x", maximum=2.0)


def test_check_choice() -> None:
    assert check_choice("wal", "mode", ("wal", "delete")) == "wal"
    with pytest.raises(ValueError, match="mode must be one of 'wal', 'delete'"):
        check_choice("off", "mode", ("wal", "delete"))
    with pytest.raises(TypeError, match="mode must be a str"):
        check_choice(1, "mode", ("wal", "delete"))


def test_check_callable() -> None:
    assert check_callable(print, "f") is print
    assert check_callable(None, "f", optional=True) is None
    with pytest.raises(TypeError, match="f must be an async callable or None"):
        check_callable(1, "f", "an async callable", optional=True)
    with pytest.raises(TypeError, match="f must be a callable, got None"):
        check_callable(None, "f")


def test_check_async_callable_accepts_what_returns_a_coroutine() -> None:
    """Async functions, partials of them, bound async methods and objects with ``async def __call__`` pass."""

    async def work(a: int, b: int) -> None:
        pass

    class Handler:
        async def __call__(self, item: int) -> None:
            pass

        async def method(self, item: int) -> None:
            pass

    handler = Handler()
    for value in (work, functools.partial(work, 1), handler, handler.method, functools.partial(handler, 1)):
        assert check_async_callable(value, "body") is value
    assert check_async_callable(None, "body", optional=True) is None


def test_check_async_callable_refuses_a_plain_function_naming_the_argument() -> None:
    def plain(item: int) -> None:
        pass

    class Sync:
        def __call__(self, item: int) -> None:
            pass

    for value in (plain, functools.partial(plain), Sync(), lambda item: None, print):
        with pytest.raises(TypeError, match=r"on_batch must be an async function \(async def\), got "):
            check_async_callable(value, "on_batch")
    with pytest.raises(TypeError, match=r"body must be an async function \(async def\), got 1"):
        check_async_callable(1, "body")
    with pytest.raises(TypeError, match=r"body must be an async function \(async def\) or None, got 1"):
        check_async_callable(1, "body", optional=True)
