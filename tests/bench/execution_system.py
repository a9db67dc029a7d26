"""The systems the execution benchmark measures, as processes: the fake OpenAI, LiteLLM's proxy, and
(once the service exists) wallet-api and execution-proxy on a scratch database and RabbitMQ vhost.

Everything the benchmark assumes about execution-proxy is in ``SERVICE``, one place to change when
the service lands: how it is started, the environment it is given, the routes, the bodies it takes,
how a BYOK key is stored and how a lenser is funded.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
from common import logger

from lf_testing import infra
from lf_testing.processes import ServiceProcess, free_port
from lf_testing.tokens import make_token
from lf_testing.waiting import eventually, queue_declared

log = logger("execution-bench")
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LITELLM_VENV = REPO / "tests/bench/out/litellm-venv"
LITELLM_CONFIG = HERE / "litellm/config.yaml"
LITELLM_SETUP = HERE / "litellm/setup.sh"
# LiteLLM refuses to start without a master key; a fixed one, long enough for its check. Not a secret.
LITELLM_MASTER_KEY = "sk-bench-" + "0123456789abcdef" * 4
PLATFORM_KEY = "bench-platform-key"
MODEL = "gpt-4o-mini"
PROMPT = [{"role": "user", "content": "Say hello in five words."}]
MAX_TOKENS = 16


@dataclass(frozen=True)
class ServiceAssumptions:
    """What the benchmark assumes about execution-proxy (issue 9, the design brief), in one place."""

    package: str = "execution_proxy"
    directory: Path = REPO / "services/execution-proxy"
    provider: str = "openai"
    model: str = MODEL
    byok: str = "/execute/byok"
    wallet: str = "/execute/wallet"
    stream: str = "/execute/stream"
    openai: str = "/execute/openai/v1/chat/completions"
    keys: str = "/execute/keys"
    # wallet-api: credits granted to each benchmark lenser (enough for every request of a run).
    grant: int = 100_000_000
    # Extra environment for execution-proxy. The per-user rate limit (100/min on the credit routes)
    # is the one thing that would stop a benchmark: the lensers are many (BENCH_EXECUTION_LENSERS)
    # and requests cycle over them; if the service gets a setting for the limit, raise it here too.
    env: dict[str, str] = field(default_factory=dict)

    def present(self) -> bool:
        """The package is installed and has a ``serve`` (``__main__``): worth starting."""
        if not self.directory.exists():
            return False
        try:
            return importlib.util.find_spec(f"{self.package}.__main__") is not None
        except ModuleNotFoundError:
            return False

    def body(self, lenser: Lenser | None = None, *, byok: bool = False) -> dict[str, Any]:
        """The body of /execute/wallet, /execute/stream and (with the key) /execute/byok."""
        body: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "messages": PROMPT,
            "max_tokens": MAX_TOKENS,
        }
        if byok:
            assert lenser is not None and lenser.key_id is not None
            body["key_ref_id"] = lenser.key_id
        return body


SERVICE = ServiceAssumptions()


def openai_body(*, stream: bool = False, model: str = MODEL) -> dict[str, Any]:
    """A Chat Completions request as the OpenAI SDK sends it."""
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": MAX_TOKENS}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


@dataclass
class Lenser:
    lenser_id: str
    token: str
    key_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


def children(pid: int) -> set[int]:
    """``pid`` and its descendants (LiteLLM's CLI may serve from a child), from /proc."""
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                with contextlib.suppress(OSError):
                    for child in (task / "children").read_text().split():
                        if int(child) not in found:
                            found.add(int(child))
                            frontier.append(int(child))
    return found


async def _status(url: str, method: str = "GET", **kwargs: Any) -> int | None:
    try:
        async with aiohttp.ClientSession() as http, http.request(method, url, **kwargs) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, OSError):
        return None


class Process:
    """A command on a free port, started and stopped by the benchmark; ``ready`` is the URL that answers
    200 once it serves (any answer below 500 with ``any_answer``)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.command, self.port = name, command, port
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen | None = None
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(
        self, ready: str, *, timeout: float, any_answer: bool = False, log_to: Path | None = None
    ):
        t0 = time.perf_counter()
        with log_to.open("ab") if log_to else contextlib.nullcontext(subprocess.DEVNULL) as output:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO
            )

        async def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}")
            status = await _status(f"{self.url}{ready}")
            return status is not None and (status == 200 or (any_answer and status < 500))

        await eventually(up, timeout=timeout, interval=0.1)
        self.startup_seconds = time.perf_counter() - t0
        return self

    @property
    def pids(self) -> set[int]:
        return children(self.process.pid) if self.process else set()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def fake_openai_command(port: int) -> tuple[list[str], str]:
    """lf_testing's fake OpenAI (answers at once by default), and its name for the report."""
    command = [sys.executable, "-m", "lf_testing.fakes.openai", "--port", str(port)]
    return command, "lf_testing.fakes.openai"


async def start_fake() -> tuple[Process, str]:
    port = free_port()
    command, which = fake_openai_command(port)
    fake = Process("fake OpenAI", command, {}, port)
    # GET on a POST route: 405 (or 404) as soon as it serves.
    await fake.start("/v1/chat/completions", timeout=30, any_answer=True)
    log(f"fake OpenAI ({which}) on {fake.url}, up in {fake.startup_seconds:.1f}s")
    return fake, which


def litellm_version() -> str:
    python = LITELLM_VENV / "bin/python"
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


# How LiteLLM runs here (also listed in the report): one uvicorn worker like our one process, no
# database, no cost-map download, no .env loading, errors only in its log.
LITELLM_ENV = {
    "LITELLM_MODE": "PRODUCTION",  # skips load_dotenv and the development banners
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # the bundled price map: no download at start
    "LITELLM_LOG": "ERROR",
    "NUM_WORKERS": "1",
}


async def start_litellm(fake_url: str, log_to: Path) -> Process:
    """LiteLLM's proxy (tests/bench/litellm/setup.sh installs it once) in front of the fake."""
    subprocess.run(["bash", str(LITELLM_SETUP)], check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    port = free_port()
    command = [
        str(LITELLM_VENV / "bin/litellm"),
        "--config",
        str(LITELLM_CONFIG),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    env = {
        **LITELLM_ENV,
        "BENCH_FAKE_OPENAI_URL": f"{fake_url}/v1",
        "BENCH_LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
    }
    proxy = Process("LiteLLM", command, env, port)
    proxy.env.pop("DATABASE_URL", None)  # no database: LiteLLM would use the benchmark's PostgreSQL
    await proxy.start("/health/liveliness", timeout=120, log_to=log_to)
    log(f"LiteLLM on {proxy.url}, up in {proxy.startup_seconds:.1f}s")
    return proxy


@dataclass
class OurStack:
    """wallet-api and execution-proxy on a scratch database and vhost, and the funded lensers."""

    database_url: str
    amqp_url: str
    wallet: ServiceProcess
    proxy: ServiceProcess
    lensers: list[Lenser]
    startup_seconds: float
    missing: dict[str, str]  # route -> why it is not measured (it did not answer 200 to a probe)

    def stop(self) -> None:
        for process in (self.proxy, self.wallet):
            with contextlib.suppress(Exception):
                process.stop()


async def start_ours(fake_url: str, n_lensers: int, log_to: Path) -> OurStack | None:
    """execution-proxy and wallet-api as ``serve`` runs them, or None (with the reason logged) when
    the service is not there or does not start; the caller drops the database and vhost."""
    if not SERVICE.present():
        log(f"{SERVICE.package} has no serve yet: only direct and LiteLLM are measured")
        return None
    database_url = await infra.create_database()
    amqp_url = await infra.create_vhost()
    common = {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "PLATFORM_API_KEY": PLATFORM_KEY,
        "ENV_MODE": "development",
        "LOG_LEVEL": "WARNING",
    }
    # No DB_ROLE: each ``serve`` logs in as the owner (the server's superuser here) and migrates its
    # own schema before serving, so nothing else has to know the service's migrations.
    wallet = ServiceProcess("wallet_api", common, log_to=log_to)
    proxy = ServiceProcess(
        SERVICE.package,
        {
            **common,
            "WALLET_API_URL": wallet.url,
            "OPENAI_API_URL": f"{fake_url}/v1",
            "OPENAI_API_KEY": "bench",
            **SERVICE.env,
        },
        log_to=log_to,
    )
    stack = OurStack(database_url, amqp_url, wallet, proxy, [], 0.0, {})
    try:
        t0 = time.perf_counter()
        await wallet.start()
        with contextlib.suppress(Exception):
            await queue_declared(amqp_url, "wallet-api.events")
        await proxy.start()
        stack.startup_seconds = time.perf_counter() - t0
        stack.lensers = await make_lensers(wallet.url, proxy.url, n_lensers)
        stack.missing = await probe_routes(proxy.url, stack.lensers[0])
    except Exception as error:  # noqa: BLE001 - reported, and the rest of the benchmark still runs
        log(f"{SERVICE.package} could not be benchmarked: {type(error).__name__}: {error}")
        stack.stop()
        stack.missing = {"all": f"{type(error).__name__}: {error}"}
        return stack
    log(
        f"wallet-api and {SERVICE.package} up in {stack.startup_seconds:.1f}s, {len(stack.lensers)} lensers;"
        f" not measured: {stack.missing or 'none'}"
    )
    return stack


async def make_lensers(wallet_url: str, proxy_url: str, n: int) -> list[Lenser]:
    """``n`` lensers, each granted credits in wallet-api and with a BYOK key stored in execution-proxy
    (the requests cycle over them, so that no one meets the per-user rate limit)."""
    lensers = [Lenser(str(uuid4()), "") for _ in range(n)]
    for lenser in lensers:
        lenser.token = make_token(lenser.lenser_id, ttl=6 * 3600)
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as http:

        async def one(lenser: Lenser) -> None:
            async with sem:
                async with http.post(
                    f"{wallet_url}/internal/wallets/{lenser.lenser_id}/grants",
                    json={"amount": SERVICE.grant, "reason": "benchmark", "idempotencyKey": lenser.lenser_id},
                    headers={"X-Platform-Api-Key": PLATFORM_KEY},
                ) as response:
                    if response.status not in (200, 201):
                        raise RuntimeError(f"grant: {response.status} {await response.text()}")
                async with http.post(
                    f"{proxy_url}{SERVICE.keys}",
                    json={"provider": SERVICE.provider, "key": "sk-bench-byok-key", "label": "bench"},
                    headers=lenser.headers,
                ) as response:
                    answer = await response.json(content_type=None)
                    if response.status not in (200, 201):
                        raise RuntimeError(f"POST {SERVICE.keys}: {response.status} {answer}")
                data = answer.get("data", answer)
                lenser.key_id = str(data.get("id") or data.get("keyId") or data.get("key_id"))

        await asyncio.gather(*(one(lenser) for lenser in lensers))
    return lensers


async def probe_routes(proxy_url: str, lenser: Lenser) -> dict[str, str]:
    """One request to each of our routes; those that do not answer 200 are left out (with why)."""
    bodies = {
        SERVICE.byok: SERVICE.body(lenser, byok=True),
        SERVICE.wallet: SERVICE.body(lenser),
        SERVICE.stream: SERVICE.body(lenser),
        SERVICE.openai: openai_body(),
    }
    missing: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        for route, body in bodies.items():
            try:
                async with http.post(f"{proxy_url}{route}", json=body, headers=lenser.headers) as response:
                    text = await response.text()
                    if response.status != 200:
                        missing[route] = f"{response.status} {text[:200]}"
            except aiohttp.ClientError as error:
                missing[route] = f"{type(error).__name__}: {error}"
    return missing
