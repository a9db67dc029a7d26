"""Services and the gateway as real processes, run the way an operator runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from lf_testing.waiting import eventually

REPO = Path(__file__).resolve().parents[4]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status < 600
    except aiohttp.ClientError:
        return False


class ServiceProcess:
    """``python -m <package> serve`` on a free port of 127.0.0.1, with the given environment."""

    def __init__(self, package: str, env: dict[str, str], *, log_to: Path | None = None) -> None:
        """``log_to``: a file for the service's standard output (its JSON log lines), read back
        with :func:`json_lines`; without it the output goes where the test's goes."""
        self.package = package
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.env.setdefault("LOG_LEVEL", "WARNING")
        self.log_to = log_to
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ServiceProcess:
        with self.log_to.open("ab") if self.log_to else contextlib.nullcontext() as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.package, "serve"], env=self.env, stdout=output
            )

        async def health_answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.package} exited with {self.process.returncode}")
            return await _answers(f"{self.url}/health")

        await eventually(health_answers, timeout=30)
        return self

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    async def terminate_within(self, seconds: float) -> int:
        """SIGTERM, as an orchestrator stops a service; the exit status, or ``AssertionError`` (and
        a SIGKILL) if the process is still there after ``seconds``."""
        assert self.process is not None
        self.process.terminate()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (status := self.process.poll()) is None:
            if loop.time() > deadline:
                self.kill()
                raise AssertionError(f"{self.package} still running {seconds} s after SIGTERM")
            await asyncio.sleep(0.05)
        return status


def nginx_binary() -> str | None:
    """nginx, also where root's PATH may lack /usr/sbin."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if Path(found).exists() else None


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a log file, one a line; other lines (a traceback, nginx's own) skipped."""
    lines = []
    for line in path.read_text().splitlines() if path.exists() else []:
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return [line for line in lines if isinstance(line, dict)]


class Gateway:
    """nginx with infra/gateway's config, on a free port, proxying to the given upstreams.

    Its access log (one JSON line per request, on nginx's standard output) is kept in a file of
    its prefix: :meth:`access_log`."""

    def __init__(self, upstreams: dict[str, str]) -> None:
        """``upstreams``: render.sh variable -> host:port, e.g. {"WALLET_API_UPSTREAM": "127.0.0.1:8101"}."""
        self.upstreams = upstreams
        self.port = free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="lf-gateway-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Gateway:
        nginx = nginx_binary()
        assert nginx is not None, "nginx is not installed"
        rendered = subprocess.run(
            ["bash", str(REPO / "infra/gateway/render.sh")],
            env={**os.environ, **self.upstreams, "GATEWAY_LISTEN": f"127.0.0.1:{self.port}"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (self.prefix / "logs").mkdir()
        (self.prefix / "nginx.conf").write_text(rendered)
        with (self.prefix / "access.log").open("ab") as access_log:
            self.process = subprocess.Popen(
                [nginx, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-g", "daemon off;"],
                stdout=access_log,
                stderr=subprocess.DEVNULL,
            )
        await eventually(lambda: _answers(f"{self.url}/"), timeout=10)
        return self

    def access_log(self) -> list[dict[str, Any]]:
        return json_lines(self.prefix / "access.log")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)


async def operator_command(
    package: str, *args: str, database_url: str, db_role: str | None
) -> tuple[int, list[str]]:
    """``python -m <package> <args>`` (e.g. ``verify``) on a test's database as its runtime role, the
    way an operator runs it: its exit code and the lines it printed."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    if db_role:
        env["DB_ROLE"] = db_role
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", package, *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines()
