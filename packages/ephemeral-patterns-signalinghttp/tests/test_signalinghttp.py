"""SignalingHttpClient against a real HTTP server on 127.0.0.1: large, chunked, slow, dropped, 500, refused."""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator, SignalSink, current_operation
from ephemeral.patterns.signalinghttp import SignalEmitter, SignalingHttpClient

pytestmark = pytest.mark.real_time  # real sockets: the real clock on both backends

LARGE = bytes(range(256)) * 4096  # 1 MiB
HALF = 64 * 1024
START = ["stage.starting", "progress:0", "stage.request", "stage.headers", "stage.reading"]
QUARTERS = ["progress:25", "progress:50", "progress:75", "progress:100"]


class Recorder:
    """An emitter recording the signals; optionally runs a hook on each."""

    def __init__(self) -> None:
        self.signals: list[str] = []
        self.hook: dict[str, threading.Event] = {}

    def emit(self, signal: str) -> None:
        self.signals.append(signal)
        if signal in self.hook:
            self.hook[signal].set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    slow_gate = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/large":
            self._headers(200, {"Content-Length": str(len(LARGE))})
            for start in range(0, len(LARGE), 8192):
                self.wfile.write(LARGE[start : start + 8192])
        elif self.path == "/chunked":
            self._headers(200, {"Transfer-Encoding": "chunked"})
            for start in range(0, len(LARGE), 100_000):
                part = LARGE[start : start + 100_000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/gzip":
            body = gzip.compress(LARGE)
            self._headers(200, {"Content-Length": str(len(body)), "Content-Encoding": "gzip"})
            self.wfile.write(body)
        elif self.path == "/slow":
            # Half the body, then wait until the client has reported progress:50 before sending the rest:
            # only a client that streams (and signals as bytes arrive) gets past this.
            self._headers(200, {"Content-Length": str(2 * HALF)})
            self.wfile.write(LARGE[:HALF])
            self.wfile.flush()
            if not Handler.slow_gate.wait(10):
                self.close_connection = True
                return
            self.wfile.write(LARGE[HALF : 2 * HALF])
        elif self.path == "/drop":
            self._headers(200, {"Content-Length": str(len(LARGE))})
            self.wfile.write(LARGE[: len(LARGE) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif self.path == "/error":
            body = b"internal error"
            self._headers(500, {"Content-Length": str(len(body))})
            self.wfile.write(body)
        elif self.path == "/redirect":
            self._headers(302, {"Location": "/large", "Content-Length": "0"})
        elif self.path == "/empty":
            self._headers(204, {})
        elif self.path == "/hang":
            self._headers(200, {"Content-Length": "10"})
            self.wfile.write(b"12345")
            self.wfile.flush()
            Handler.slow_gate.wait(10)
        else:
            self._headers(404, {"Content-Length": "0"})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        Handler.slow_gate.set()
        httpd.shutdown()
        httpd.server_close()


async def test_large_body_with_content_length(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        data = await SignalingHttpClient.download_with_signals(
            client, client.build_request("GET", f"{server}/large"), recorder
        )
    assert data == LARGE
    assert recorder.signals == [*START, *QUARTERS, "stage.completed"]


async def test_chunked_body_has_only_0_and_100(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        data = await SignalingHttpClient.download_with_signals(client, f"{server}/chunked", recorder)
    assert data == LARGE
    assert recorder.signals == [*START, "progress:100", "stage.completed"]


async def test_compressed_body_progress_follows_bytes_on_the_wire(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        data = await SignalingHttpClient.download_with_signals(client, f"{server}/gzip", recorder)
    assert data == LARGE  # decoded
    assert recorder.signals == [*START, *QUARTERS, "stage.completed"]


async def test_slow_body_signals_progress_as_bytes_arrive(server: str) -> None:
    """The server holds the second half back until the client has said progress:50."""
    recorder = Recorder()
    Handler.slow_gate.clear()
    recorder.hook["progress:50"] = Handler.slow_gate
    async with httpx.AsyncClient(timeout=5) as client:
        data = await SignalingHttpClient.download_with_signals(client, f"{server}/slow", recorder)
    assert data == LARGE[: 2 * HALF]
    assert recorder.signals == [*START, *QUARTERS, "stage.completed"]


async def test_connection_dropped_mid_body(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await SignalingHttpClient.download_with_signals(client, f"{server}/drop", recorder)
    assert recorder.signals == [*START, "progress:25", "stage.failed:RemoteProtocolError"]


async def test_server_error_status(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await SignalingHttpClient.download_with_signals(client, f"{server}/error", recorder)
    assert raised.value.response.status_code == 500
    assert recorder.signals == [*START[:4], "stage.failed:http-500"]


async def test_not_found_status(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPStatusError):
            await SignalingHttpClient.download_with_signals(client, f"{server}/missing", recorder)
    assert recorder.signals[-1] == "stage.failed:http-404"


async def test_empty_body(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        assert await SignalingHttpClient.download_with_signals(client, f"{server}/empty", recorder) == b""
    assert recorder.signals == [*START, "progress:100", "stage.completed"]


async def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await SignalingHttpClient.download_with_signals(client, f"http://127.0.0.1:{port}/", recorder)
    assert recorder.signals == [*START[:3], "stage.failed:ConnectError"]


async def test_read_timeout(server: str) -> None:
    recorder = Recorder()
    Handler.slow_gate.clear()
    try:
        async with httpx.AsyncClient(timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await SignalingHttpClient.download_with_signals(client, f"{server}/hang", recorder)
    finally:
        Handler.slow_gate.set()
    assert recorder.signals == [*START, "progress:25", "progress:50", "stage.failed:ReadTimeout"]  # 5 of 10 bytes


async def test_cancelled_mid_body(server: str) -> None:
    recorder = Recorder()
    Handler.slow_gate.clear()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            with anyio.move_on_after(0.3) as scope:
                await SignalingHttpClient.download_with_signals(client, f"{server}/hang", recorder)
    finally:
        Handler.slow_gate.set()
    assert scope.cancelled_caught
    assert recorder.signals == [*START, "progress:25", "progress:50", "stage.failed:cancelled"]


async def test_an_operation_is_an_emitter(server: str) -> None:
    """Inside a coordinator's body, the current operation receives the signals; a sink sees them."""
    sink = SignalSink()
    sizes: list[int] = []
    async with httpx.AsyncClient() as client:

        async def download(path: str) -> None:
            sizes.append(
                len(await SignalingHttpClient.download_with_signals(client, f"{server}{path}", current_operation()))
            )

        async with EphemeralWorkCoordinator(download, EphemeralOptions(signals=sink, max_concurrency=2)) as coordinator:
            await coordinator.enqueue("/large")
            await coordinator.enqueue("/chunked")
            await coordinator.drain()
            snapshots = sorted(coordinator.get_snapshot(), key=lambda s: len(s.signals))
            assert [[e.signal for e in s.signals] for s in snapshots] == [
                [*START, "progress:100", "stage.completed"],
                [*START, *QUARTERS, "stage.completed"],
            ]
            assert len(sink.sense("stage.completed")) == 2
    assert sizes == [len(LARGE)] * 2
    assert isinstance(sink, SignalEmitter)


async def test_bad_input() -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(TypeError, match="client"):
            await SignalingHttpClient.download_with_signals(None, "http://x", recorder)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="request"):
            await SignalingHttpClient.download_with_signals(client, 42, recorder)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="emitter"):
            await SignalingHttpClient.download_with_signals(client, "http://x", object())  # type: ignore[arg-type]
    assert recorder.signals == []


def test_readme_example(server: str) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    [code] = re.findall(r"```python\n(.*?)```", readme, re.S)
    [expected] = re.findall(r"```text\n(.*?)```", readme, re.S)
    code = code.replace("https://example.com/large-file", f"{server}/large")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert out.getvalue() == expected


async def test_redirect_followed_by_the_client_signals_once_per_stage(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient(follow_redirects=True) as client:
        data = await SignalingHttpClient.download_with_signals(client, f"{server}/redirect", recorder)
    assert data == LARGE
    assert recorder.signals == [*START, *QUARTERS, "stage.completed"]


async def test_redirect_not_followed_is_a_failure_naming_the_status(server: str) -> None:
    recorder = Recorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPStatusError):
            await SignalingHttpClient.download_with_signals(client, f"{server}/redirect", recorder)
    assert recorder.signals[-1] == "stage.failed:http-302"
