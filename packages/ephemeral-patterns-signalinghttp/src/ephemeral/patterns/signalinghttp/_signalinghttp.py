"""Streaming an HTTP response with httpx while emitting stage and progress signals."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import anyio
import httpx

__all__ = ("SignalEmitter", "SignalingHttpClient")


@runtime_checkable
class SignalEmitter(Protocol):
    """Anything signals can be emitted on: an operation (``current_operation()``), a sink, a coordinator."""

    def emit(self, signal: str) -> object:
        """Emit ``signal``."""


def _failure(error: BaseException) -> str:
    """The ``reason`` of ``stage.failed:{reason}`` for an error."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"http-{error.response.status_code}"
    if isinstance(error, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return type(error).__name__


class SignalingHttpClient:
    """Downloads with httpx, emitting a signal at each stage and at each quarter of the body."""

    @staticmethod
    async def download_with_signals(
        client: httpx.AsyncClient, request: httpx.Request | str, emitter: SignalEmitter
    ) -> bytes:
        """Send ``request`` with ``client``, stream the body and return it, emitting on ``emitter``.

        Signals, in order: ``stage.starting``, ``progress:0``, ``stage.request`` (the request is sent),
        ``stage.headers`` (the response's headers arrived), ``stage.reading``, then ``progress:25``,
        ``progress:50``, ``progress:75`` and ``progress:100`` as the body crosses each quarter of its
        Content-Length (each once, in order, as the bytes arrive), and ``stage.completed``. Without a
        Content-Length (a chunked body) only ``progress:100`` follows ``stage.reading``, at the end.

        A response with an error status (4xx, 5xx, or a 3xx redirect the client does not follow: give
        ``httpx.AsyncClient(follow_redirects=True)`` to follow them) emits ``stage.failed:http-{status}`` and raises
        ``httpx.HTTPStatusError`` before its body is read; a transport failure (refused connection,
        timeout, a connection dropped mid-body) emits ``stage.failed:{ExceptionType}`` (such as
        ``stage.failed:RemoteProtocolError``) and raises the httpx exception; a cancellation emits
        ``stage.failed:cancelled`` and propagates. The response is always closed.

        Args:
            client: The httpx client to send with (its timeouts, limits and transport apply).
            request: An ``httpx.Request`` (``client.build_request(...)``), or a URL to GET.
            emitter: Where signals go: the current operation, a ``SignalSink``, a coordinator...

        Returns:
            The response body (decoded from its Content-Encoding, as ``response.content`` is).

        Raises:
            TypeError: ``client``, ``request`` or ``emitter`` has the wrong type.
            httpx.HTTPStatusError: The response's status is an error.
            httpx.HTTPError: The transfer failed.
        """
        if not isinstance(client, httpx.AsyncClient):
            raise TypeError(f"client must be an httpx.AsyncClient, got {client!r}")
        if isinstance(request, str):
            request = client.build_request("GET", request)
        elif not isinstance(request, httpx.Request):
            raise TypeError(f"request must be an httpx.Request or a URL string, got {request!r}")
        if not isinstance(emitter, SignalEmitter):
            raise TypeError(f"emitter must have an emit(signal) method, got {emitter!r}")
        emit = emitter.emit
        emit("stage.starting")
        emit("progress:0")
        emit("stage.request")
        try:
            response = await client.send(request, stream=True)
            try:
                emit("stage.headers")
                response.raise_for_status()
                emit("stage.reading")
                length = _content_length(response)
                reported = 0  # quarters reported so far
                parts: list[bytes] = []
                async for chunk in response.aiter_bytes():
                    parts.append(chunk)
                    if length:
                        reached = min(4, response.num_bytes_downloaded * 4 // length)
                        while reported < reached:
                            reported += 1
                            emit(f"progress:{reported * 25}")
                if reported < 4:
                    emit("progress:100")
            finally:
                await response.aclose()
        except BaseException as error:
            emit(f"stage.failed:{_failure(error)}")
            raise
        emit("stage.completed")
        return b"".join(parts)


def _content_length(response: httpx.Response) -> int:
    """The response's Content-Length, or 0 when it has none (or an invalid one)."""
    try:
        return max(int(response.headers.get("content-length", "0")), 0)
    except ValueError:
        return 0
