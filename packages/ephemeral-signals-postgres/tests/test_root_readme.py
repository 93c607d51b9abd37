"""The root README's two-worker FastAPI app, run as written under ``uvicorn --workers 2``: both workers see
every worker's failures."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"
PROBE = """

@app.get("/failures")
async def failures() -> dict[str, int]:
    return {"pid": os.getpid(), "failures": breaker.get_failure_count(sink)}


@app.post("/fail")
async def fail() -> dict[str, int]:
    sink.emit("payments.failure")
    return {"pid": os.getpid()}
"""


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, int]]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def test_two_uvicorn_workers_share_the_circuit_breakers_window(
    postgres_dsn: str, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    section = README.read_text()
    section = section[section.index("## Running on several processes") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / "app.py").write_text(code.group(1).replace('table="app_signals"', f'table="{table}"') + PROBE)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("DATABASE_URL", postgres_dsn)
    command = [sys.executable, "-m", "uvicorn", "app:app", "--workers", "2", "--host", "127.0.0.1"]
    server = subprocess.Popen([*command, "--port", str(port), "--app-dir", str(tmp_path)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:  # both workers up: wait until a request answers
            try:
                if _get(f"{base}/failures")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        assert _get(f"{base}/pay", "POST")[0] == 200  # closed
        for _ in range(5):
            assert _get(f"{base}/fail", "POST")[0] == 200
        # Every worker counts all five failures, whichever worker they happened on.
        seen: dict[int, int] = {}
        while len([pid for pid, count in seen.items() if count == 5]) < 2:
            assert time.monotonic() < deadline + 30, f"failures seen per worker: {seen}"
            _, answer = _get(f"{base}/failures")
            seen[answer["pid"]] = answer["failures"]
            time.sleep(0.01)
        assert {_get(f"{base}/pay", "POST")[0] for _ in range(10)} == {503}
    finally:
        server.terminate()
        server.wait(timeout=20)
