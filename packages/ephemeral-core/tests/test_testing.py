"""ephemeral.core.testing: the manual clock, the README example runners and the accounting assertion."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from ephemeral.core import EphemeralOptions, EphemeralWorkCoordinator
from ephemeral.core.testing import (
    ConcurrencyProbe,
    Gate,
    ManualClock,
    Recorder,
    arun_readme_examples,
    assert_accounted,
    output_blocks,
    postgres_test_dsn,
    postgres_test_tables,
    python_blocks,
    run_module_as_script,
    run_postgres_sql,
    run_readme_examples,
    tcp_proxy,
)

README = """# Example

Some text.

```python
import anyio

async def main() -> None:
    await anyio.sleep(10)
    print("slept", anyio.current_time() - start)

start = 0.0
anyio.run(main)
```

prints

```
slept 10.0
```

A second block sees the first one's names:

```python
print(start + 1)
```

```text
1.0
```
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_manual_clock_moves_only_forward_and_by_hand() -> None:
    clock = ManualClock()
    assert clock() == 1000.0
    assert clock.advance(2.5) == 1002.5
    assert clock() == 1002.5
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(-1)
    with pytest.raises(TypeError, match="start"):
        ManualClock("0")  # type: ignore[arg-type]
    assert repr(ManualClock(0)) == "ManualClock(0.0)"


def test_blocks_come_with_their_line_and_shown_output(tmp_path: Path) -> None:
    readme = write(tmp_path, README)
    first, second = python_blocks(readme)
    assert first.line == 6 and first.shown_output == "slept 10.0\n"
    assert second.code == "print(start + 1)\n" and second.shown_output == "1.0\n"
    assert output_blocks(readme) == ["slept 10.0\n", "1.0\n"]


@pytest.mark.real_time
def test_run_readme_examples_runs_every_block_as_a_script(tmp_path: Path) -> None:
    fast = README.replace("anyio.sleep(10)", "anyio.sleep(0)").replace(" - start", " * 0 + 10.0")
    output = run_readme_examples(write(tmp_path, fast))
    assert output == "slept 10.0\n1.0\n"


async def test_arun_readme_examples_awaits_main_on_the_tests_clock(tmp_path: Path) -> None:
    readme = write(tmp_path, README.replace("start = 0.0", "start = anyio.current_time()"))
    output = await arun_readme_examples(readme)
    assert output.splitlines() == ["slept 10.0", output.splitlines()[1]]
    assert float(output.splitlines()[1]) == pytest.approx(anyio.current_time() - 10 + 1)


async def test_a_guarded_run_is_awaited_too(tmp_path: Path) -> None:
    readme = write(
        tmp_path,
        '```python\nimport anyio\n\nasync def main():\n    print("ran")\n\nif __name__ == "__main__":\n'
        "    anyio.run(main)\n```\n",
    )
    assert await arun_readme_examples(readme) == "ran\n"


def test_an_example_that_promises_output_and_prints_nothing_fails(tmp_path: Path) -> None:
    silent = write(tmp_path, "```python\nx = 1\nif x > 1:\n    print(x)\n```\n")
    with pytest.raises(AssertionError, match=r"README\.md:2: the example promises output but printed nothing"):
        run_readme_examples(silent)
    shown = write(tmp_path, "```python\nx = 1\n```\n\n```text\n1\n```\n")
    with pytest.raises(AssertionError, match="printed nothing"):
        run_readme_examples(shown)
    quiet = write(tmp_path, "```python\nx = 1\nassert x == 1\n```\n")
    assert run_readme_examples(quiet) == ""


def test_a_readme_without_examples_fails_and_errors_point_into_it(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no ```python example"):
        run_readme_examples(write(tmp_path, "# nothing\n"))
    broken = write(tmp_path, "text\n\n```python\nx = 1\nraise ValueError('boom')\n```\n")
    with pytest.raises(ValueError, match="boom") as caught:
        run_readme_examples(broken)
    assert caught.traceback[-1].lineno + 1 == 5  # README line 5 (pytest counts from 0)


def test_examples_run_in_the_given_directory(tmp_path: Path) -> None:
    readme = write(tmp_path, "```python\nfrom pathlib import Path\nPath('out.txt').write_text('x')\n```\n")
    work = tmp_path / "work"
    work.mkdir()
    assert run_readme_examples(readme, cwd=work, namespace={"unused": 1}) == ""
    assert (work / "out.txt").read_text() == "x"


async def test_assert_accounted_after_closing() -> None:
    async def body(item: int) -> None:
        if item == 3:
            raise ValueError(item)

    async with EphemeralWorkCoordinator(body, EphemeralOptions(max_concurrency=2)) as coordinator:
        for item in range(5):
            await coordinator.enqueue(item)
        with pytest.raises(AssertionError, match="still pending or running"):
            assert_accounted(coordinator)
        assert_accounted(coordinator, closed=False)
    assert_accounted(coordinator)
    assert_accounted(coordinator.get_metrics())


def test_assert_accounted_finds_missing_items() -> None:
    class Metrics:
        total_enqueued, total_completed, total_failed, total_skipped, total_cancelled = 5, 3, 1, 0, 0
        pending_count = active_count = 0

    class Atom:
        coordinator = Metrics()

    with pytest.raises(AssertionError, match="enqueued=5 completed=3 failed=1"):
        assert_accounted(Atom())
    with pytest.raises(TypeError, match="subject"):
        assert_accounted(object())


# -- PostgreSQL -----------------------------------------------------------------------------------

NO_SERVER = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=1"


def test_without_a_server_the_database_test_is_skipped_saying_how_to_point_at_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EPHEMERAL_TEST_POSTGRES_DSN", NO_SERVER)
    monkeypatch.delenv("EPHEMERAL_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"(?s)no PostgreSQL server for the tests .*EPHEMERAL_TEST_POSTGRES_DSN="
    ):
        postgres_test_dsn()


def test_without_a_server_a_run_that_requires_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPHEMERAL_TEST_POSTGRES_DSN", NO_SERVER)
    monkeypatch.setenv("EPHEMERAL_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="EPHEMERAL_REQUIRE_POSTGRES=1 requires these tests to run"):
        postgres_test_dsn()


def test_test_tables_are_unique_and_dropped_afterwards() -> None:
    dsn = postgres_test_dsn()
    with postgres_test_tables(dsn, "kit") as new_table:
        first, second = new_table(), new_table()
        assert first != second
        assert first.startswith("kit_")
        assert len(first) == len("kit_") + 20
        for name in (first, second):
            run_postgres_sql(dsn, f'CREATE TABLE "public"."{name}" (id int)')
        run_postgres_sql(dsn, f'INSERT INTO "public"."{first}" VALUES (%s), (%s)', (1, 2))
        assert run_postgres_sql(dsn, f'SELECT id FROM "public"."{first}" ORDER BY id') == [(1,), (2,)]
    left = run_postgres_sql(dsn, "SELECT count(*) FROM pg_tables WHERE tablename IN (%s, %s)", (first, second))
    assert left == [(0,)]


async def test_concurrency_probe_counts_the_calls_running_at_once() -> None:
    probe = ConcurrencyProbe()

    async def call(seconds: float) -> None:
        with probe:
            await anyio.sleep(seconds)

    async with anyio.create_task_group() as tg:
        for seconds in (1, 2, 3):
            tg.start_soon(call, seconds)
        await anyio.sleep(1.5)
        assert (probe.running, probe.peak) == (2, 3)
    assert (probe.running, probe.peak) == (0, 3)
    with pytest.raises(ValueError, match="left by"), probe:
        raise ValueError("left by an exception")
    assert probe.running == 0
    assert repr(probe) == "ConcurrencyProbe(running=0, peak=3)"


def test_run_module_as_script_returns_what_the_module_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kit_script_example.py").write_text('if __name__ == "__main__":\n    print("ran as a script")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_module_as_script("kit_script_example") == "ran as a script\n"


async def test_recorder_is_a_list_and_a_body_that_takes_its_delay() -> None:
    recorded: Recorder[str] = Recorder(delay=2)
    start = anyio.current_time()
    await recorded("a")
    await recorded("b")
    assert recorded == ["a", "b"]
    assert anyio.current_time() - start == 4
    assert repr(recorded) == "Recorder(['a', 'b'], delay=2.0)"
    with pytest.raises(ValueError, match="delay"):
        Recorder(delay=-1)


async def test_gate_holds_every_call_until_set() -> None:
    gate = Gate()
    passed: list[int] = []

    async def call(item: int) -> None:
        await gate(item)
        passed.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, 1)
        await anyio.sleep(5)
        assert passed == [] and not gate.is_set()
        gate.set()
    await gate.wait()
    await call(2)  # once set, calls go straight through
    assert passed == [1, 2] and gate.is_set()


@pytest.mark.real_time
async def test_tcp_proxy_forwards_then_plays_an_outage_and_comes_back_on_the_same_port() -> None:
    async def echo(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            async for chunk in stream:
                await stream.send(chunk)

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        server_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with tcp_proxy("127.0.0.1", server_port) as proxy:
            assert proxy.running and proxy.port not in (0, server_port)
            with anyio.fail_after(5):
                client = await anyio.connect_tcp("127.0.0.1", proxy.port)
                await client.send(b"ping")
                assert await client.receive() == b"ping"
                await proxy.stop()
                assert not proxy.running
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):  # closed by the outage
                    await client.receive()
                await client.aclose()
                with pytest.raises(OSError, match="connection attempts failed"):  # refused while stopped
                    await anyio.connect_tcp("127.0.0.1", proxy.port)
                port = proxy.port
                await proxy.start()
                assert proxy.port == port
                async with await anyio.connect_tcp("127.0.0.1", proxy.port) as again:
                    await again.send(b"back")
                    assert await again.receive() == b"back"
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("host", "port", "error"), [(1, 5432, TypeError), ("h", 0, ValueError), ("h", True, ValueError)]
)
async def test_tcp_proxy_checks_its_arguments(host: object, port: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        async with tcp_proxy(host, port):  # type: ignore[arg-type]
            pass
