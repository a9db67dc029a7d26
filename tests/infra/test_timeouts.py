"""A test that hangs fails with the stacks of its asyncio tasks (pytest-timeout + lf_testing.hangs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HANGING_TEST = """
import asyncio


async def poll_forever():
    while True:
        await asyncio.sleep(0.2)


async def test_hangs():
    task = asyncio.create_task(poll_forever(), name="the-poller")
    await asyncio.Event().wait()
"""


def _run_pytest(directory: Path, method: str) -> subprocess.CompletedProcess[str]:
    (directory / "pytest.ini").write_text(
        f"[pytest]\nasyncio_mode = auto\ntimeout = 5\ntimeout_method = {method}\n"
    )
    (directory / "test_hanging.py").write_text(HANGING_TEST)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_hanging.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_hanging_test_fails_with_its_asyncio_tasks(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, "signal")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Timeout" in output
    assert "asyncio tasks at timeout" in output
    # Both tasks, each where it waits: the test on its event, the poller in its sleep.
    assert "the-poller" in output and "in poll_forever" in output, output
    assert "in test_hangs" in output, output


def test_the_thread_method_prints_the_tasks_too(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, "thread")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "asyncio tasks at timeout" in output
    assert "in poll_forever" in output, output
