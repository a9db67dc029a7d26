"""`make dev` owns its processes (issue 6 §6): nothing it started outlives it, and a taken port is
one line. Runs infra/dev/run.sh itself, on free ports, a database and a vhost of the test's own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from lf_testing.processes import REPO, free_port, nginx_binary
from lf_testing.waiting import eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (CI installs it with apt)"),
]

PORT_VARIABLES = [
    "GATEWAY_PORT",
    "WALLET_API_PORT",
    "EXECUTION_PROXY_PORT",
    "BILLING_WEBHOOK_PORT",
    "LIGHTNING_JOBS_PORT",
    "PLATFORM_API_PORT",
    "LEMONSQUEEZY_PORT",
    "CHAINABIT_PORT",
]


def _environment(database_url: str, amqp_url: str, ports: dict[str, int]) -> dict[str, str]:
    path = os.environ["PATH"]
    if "/usr/sbin" not in path.split(":"):
        path += ":/usr/sbin"  # nginx, where root's PATH lacks it
    return {
        **os.environ,
        "PATH": path,
        "DATABASE_URL": database_url,
        "DEV_DATABASE": urlsplit(database_url).path.lstrip("/"),
        "DEV_DB_ROLES": "0",
        "AMQP_URL": amqp_url,
        "LOG_LEVEL": "WARNING",
        **{name: str(port) for name, port in ports.items()},
    }


def _state(pid: int) -> str | None:
    """The process's state letter, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _session(sid: int) -> set[int]:
    """Every process of a session (run.sh is started as a session, like a terminal's job)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if _state(pid) not in (None, "Z")}


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status < 500
    except aiohttp.ClientError:
        return False


@pytest.fixture
def dev_ports() -> dict[str, int]:
    return {name: free_port() for name in PORT_VARIABLES}


@pytest.fixture
def make_dev(database_url: str, amqp_url: str, dev_ports: dict[str, int], tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        with (tmp_path / "make-dev.log").open("w") as output:
            process = subprocess.Popen(
                ["bash", str(REPO / "infra/dev/run.sh")],
                cwd=REPO,
                env=_environment(database_url, amqp_url, dev_ports),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session and process group, as under a terminal
            )
        started.append(process)
        return process

    yield start
    for process in started:  # whatever happens, leave nothing behind
        for pid in _session(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=10)


async def _everything_up(ports: dict[str, int], process: subprocess.Popen, log: Path) -> None:
    async def up() -> bool:
        assert process.poll() is None, f"make dev exited:\n{_read(log)}"
        return all(
            [
                await _answers(f"http://127.0.0.1:{ports['WALLET_API_PORT']}/health"),
                await _answers(f"http://127.0.0.1:{ports['BILLING_WEBHOOK_PORT']}/health"),
                await _answers(f"http://127.0.0.1:{ports['EXECUTION_PROXY_PORT']}/health"),
                await _answers(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/wallet/health"),
            ]
        )

    await eventually(up, timeout=90)


async def _all_gone(pids: set[int], ports: dict[str, int]) -> None:
    async def gone() -> bool:
        return not _alive(pids) and all(_free(port) for port in ports.values())

    try:
        await eventually(gone, timeout=5)
    except AssertionError:
        left = {pid: _read(Path(f"/proc/{pid}/cmdline")).replace("\0", " ") for pid in _alive(pids)}
        taken = [name for name, port in ports.items() if not _free(port)]
        raise AssertionError(f"still running: {left}; ports still taken: {taken}") from None


@pytest.mark.timeout(180)
async def test_sigkill_to_the_process_group_leaves_nothing_running(make_dev, dev_ports, tmp_path) -> None:
    process = make_dev()
    await _everything_up(dev_ports, process, tmp_path / "make-dev.log")
    started = _session(process.pid)
    assert len(started) >= 5  # run.sh, three services, the fake LemonSqueezy, nginx (and prefixers)

    os.killpg(process.pid, signal.SIGKILL)  # what `timeout -s KILL make dev` or the OOM killer does
    process.wait(timeout=10)

    await _all_gone(started, dev_ports)


@pytest.mark.timeout(180)
async def test_sigkill_to_the_runner_alone_takes_its_children_with_it(make_dev, dev_ports, tmp_path) -> None:
    process = make_dev()
    await _everything_up(dev_ports, process, tmp_path / "make-dev.log")
    started = _session(process.pid)

    os.kill(process.pid, signal.SIGKILL)  # only run.sh: its children die with it (PDEATHSIG)
    process.wait(timeout=10)

    await _all_gone(started - {process.pid}, dev_ports)


async def test_a_taken_port_is_one_line_naming_the_port_and_its_process(
    database_url: str, amqp_url: str, dev_ports: dict[str, int]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", dev_ports["WALLET_API_PORT"]))
        squatter.listen()
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(REPO / "infra/dev/run.sh"),
            cwd=REPO,
            env=_environment(database_url, amqp_url, dev_ports),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)

    text = output.decode()
    assert process.returncode != 0
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if str(dev_ports["WALLET_API_PORT"]) in line]
    assert len(lines) == 1, text
    assert f"port {dev_ports['WALLET_API_PORT']} (wallet-api) is taken by" in lines[0]
    assert f"pid {os.getpid()}" in lines[0]
    assert "WALLET_API_PORT" in lines[0]


@pytest.mark.timeout(180)
async def test_sigterm_still_stops_everything_gracefully(make_dev, dev_ports, tmp_path) -> None:
    process = make_dev()
    await _everything_up(dev_ports, process, tmp_path / "make-dev.log")
    started = _session(process.pid)

    os.kill(process.pid, signal.SIGTERM)
    status = await asyncio.to_thread(process.wait, 30)

    assert status == 0
    await _all_gone(started, dev_ports)
    log = _read(tmp_path / "make-dev.log")
    assert "[dev]             stopping" in log
    assert "killing" not in log  # every service stopped by itself, in time
