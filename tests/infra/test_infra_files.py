"""The files that run the system agree with the code and with each other.

The OpenAPI document describes exactly the routes wallet-api registers, with catalogue codes; the
gateway renders, nginx accepts it, and it routes the public prefixes and never /internal; compose,
the database roles, the broker definitions, the Dockerfile and .env.example name what the code uses.
Tools that may be missing (nginx, docker compose) skip their tests with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import inspect
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import tokenize
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from billing_webhook import app as billing_app
from billing_webhook import integration_events as billing_events
from billing_webhook.settings import BillingSettings
from execution_proxy import app as execution_app
from execution_proxy.settings import ExecutionSettings
from lf_contracts.errors import CATALOGUE, UPSTREAM_UNAVAILABLE
from lf_contracts.events import IntegrationEvent
from lf_messaging import definitions
from lightning_jobs import app as lightning_app
from lightning_jobs.settings import LightningSettings
from platform_api import app as platform_app
from platform_api.settings import PlatformSettings
from wallet_api import app as wallet_app
from wallet_api.http.errors import CODES as WALLET_CODES
from wallet_api.settings import WalletSettings

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "contracts" / "openapi" / "wallet-api.yaml"
TEMPLATE = ROOT / "infra" / "gateway" / "nginx.conf.template"
RENDER = ROOT / "infra" / "gateway" / "render.sh"
COMPOSE = ROOT / "docker-compose.yml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
UPSTREAM_VARIABLES = {
    "WALLET_API_UPSTREAM",
    "EXECUTION_PROXY_UPSTREAM",
    "BILLING_WEBHOOK_UPSTREAM",
    "LIGHTNING_JOBS_UPSTREAM",
    "PLATFORM_API_UPSTREAM",
}
# The services in docker compose: name -> (schema, settings).
SERVICES = {
    "wallet-api": (wallet_app.SCHEMA, WalletSettings),
    "execution-proxy": (execution_app.SCHEMA, ExecutionSettings),
    "billing-webhook": (billing_app.SCHEMA, BillingSettings),
    "lightning-jobs": (lightning_app.SCHEMA, LightningSettings),
    "platform-api": (platform_app.SCHEMA, PlatformSettings),
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --- OpenAPI ---------------------------------------------------------------------------------


def test_the_openapi_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_service_serves_this_document(spec):
    assert wallet_app.OPENAPI.resolve() == SPEC_PATH.resolve()


def test_the_spec_documents_exactly_the_routes_wallet_api_registers(spec):
    app = wallet_app.create_app(WalletSettings(), background=False)
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # aiohttp adds HEAD to every GET
    }
    documented = {
        (method, path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS
    }
    assert registered - documented == set(), "registered but not documented"
    assert documented - registered == set(), "documented but not registered"


def _responses(spec: dict) -> Iterator[tuple[str, str, str, dict]]:
    def resolve(node: dict) -> dict:
        while "$ref" in node:
            target: dict = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                for status, response in operation["responses"].items():
                    yield path, method, status, resolve(response)


def test_every_documented_error_is_a_catalogue_code_with_that_status(spec):
    for path, method, status, response in _responses(spec):
        for code in response.get("x-error-codes", []):
            assert code in CATALOGUE, f"{method} {path} {status}: {code} is not in the catalogue"
            assert CATALOGUE[code].status == int(status), f"{method} {path}: {code} is not a {status}"
        if int(status) >= 400 and path != "/health":  # /health keeps seed 001's own shape
            assert response.get("x-error-codes"), f"{method} {path} {status} names no error code"


def test_every_wallet_refusal_is_documented_somewhere(spec):
    documented = {code for *_, response in _responses(spec) for code in response.get("x-error-codes", [])}
    missing = {error.code for error in WALLET_CODES.values()} - documented
    assert not missing


# --- gateway ---------------------------------------------------------------------------------


def render(tmp: Path, **env: str) -> str:
    output = tmp / "nginx.conf"
    subprocess.run(["bash", str(RENDER), str(output)], check=True, env={**os.environ, **env})
    return output.read_text()


def test_the_gateway_template_renders_only_its_own_variables(tmp_path):
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", _without_comments(TEMPLATE.read_text())))
    assert placeholders == UPSTREAM_VARIABLES | {"GATEWAY_RESOLVER", "GATEWAY_SERVER_RESOLVE"}

    rendered = render(tmp_path, WALLET_API_UPSTREAM="wallet.test:8101", GATEWAY_RESOLVER="10.0.0.53")
    body = _without_comments(rendered)
    assert "${" not in body
    assert re.search(r"upstream wallet_api \{[^}]*server wallet.test:8101 ;[^}]*keepalive \d+;", body)
    assert "resolver 10.0.0.53 " in body
    assert "$lf_request_id" in body and "$http_x_request_id" in body  # nginx's own, untouched

    resolving = _without_comments(render(tmp_path, GATEWAY_SERVER_RESOLVE="resolve"))
    assert "server 127.0.0.1:8101 resolve;" in resolving


@pytest.mark.parametrize(
    ("variable", "value"),
    [("WALLET_API_UPSTREAM", "x; include /etc/passwd"), ("GATEWAY_SERVER_RESOLVE", "resolve; include x")],
)
def test_the_renderer_refuses_a_value_that_is_not_a_host_and_port(tmp_path, variable, value):
    result = subprocess.run(
        ["bash", str(RENDER), str(tmp_path / "nginx.conf")],
        env={**os.environ, variable: value},
        capture_output=True,
    )
    assert result.returncode != 0


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


@contextlib.contextmanager
def _nginx_prefix() -> Iterator[Path]:
    # Not tmp_path: nginx started as root runs its workers as nobody, who must reach this.
    prefix = Path(tempfile.mkdtemp(prefix="lf-gateway-test-"))
    prefix.chmod(0o755)
    try:
        yield prefix
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture
def nginx_prefix() -> Iterator[Path]:
    with _nginx_prefix() as prefix:
        yield prefix


@needs_nginx
def test_nginx_accepts_the_rendered_config(nginx_prefix):
    render(nginx_prefix)
    result = subprocess.run(
        ["nginx", "-t", "-p", str(nginx_prefix), "-c", str(nginx_prefix / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


HANG_UP_AFTER_S = 0.3


class _Echo(http.server.BaseHTTPRequestHandler):
    """A stand-in service: answers with the path and headers it received, and the port the
    gateway's connection came from (to count connections). HTTP/1.1: it keeps them alive."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/wallet/hang-up":  # a service that dies mid-request, a while into it
            time.sleep(HANG_UP_AFTER_S)
            self.close_connection = True
            return
        if self.path == "/wallet/refused":  # a service's own error answer
            body = json.dumps({"error": {"code": "wallet.not_found", "message": "no wallet"}, "meta": {}})
            status = 404
        elif self.path == "/wallet/upstream-refused":  # a service's own 502 (billing unreachable)
            body = json.dumps({"error": {"code": "billing.upstream_error", "message": "down"}, "meta": {}})
            status = 502
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = json.dumps({"path": self.path, "headers": headers, "peer": self.client_address[1]})
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", "set-by-the-service")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    """The rendered gateway on a free port, wallet-api played by an echo server, every other
    service down."""
    with _nginx_prefix() as prefix:
        yield from _run_gateway(prefix)


def _run_gateway(nginx_prefix: Path) -> Iterator[str]:
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    down = f"127.0.0.1:{_free_port()}"
    config = render(
        nginx_prefix,
        WALLET_API_UPSTREAM=f"127.0.0.1:{echo.server_address[1]}",
        EXECUTION_PROXY_UPSTREAM=down,
        BILLING_WEBHOOK_UPSTREAM=down,
        LIGHTNING_JOBS_UPSTREAM=down,
        PLATFORM_API_UPSTREAM=down,
        GATEWAY_RESOLVER="127.0.0.1",
    )
    port = _free_port()
    (nginx_prefix / "nginx.conf").write_text(config.replace("listen 8786 ", f"listen 127.0.0.1:{port} "))
    nginx = subprocess.Popen(
        [
            "nginx",
            "-p",
            str(nginx_prefix),
            "-c",
            str(nginx_prefix / "nginx.conf"),
            "-e",
            "stderr",
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read().decode() if nginx.stderr else ""
                time.sleep(0.05)
        yield base
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        if nginx.stderr:
            nginx.stderr.close()
        echo.shutdown()
        echo.server_close()


def _get(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


NOT_FOUND = {"code": "not_found", "message": "No route matched the request path"}


def _not_found(status: int, body: bytes) -> bool:
    return status == 404 and json.loads(body)["error"] == NOT_FOUND


@needs_nginx
def test_the_gateway_routes_wallet_and_passes_the_request_id(gateway):
    status, headers, body = _get(
        f"{gateway}/wallet/balance?x=1", headers={"X-Request-Id": "trace-1", "X-Platform-Api-Key": "stolen"}
    )
    seen = json.loads(body)
    assert status == 200 and seen["path"] == "/wallet/balance?x=1"
    assert seen["headers"]["x-request-id"] == "trace-1"
    assert "x-platform-api-key" not in seen["headers"]  # no key ever travels through the gateway
    assert headers.get_all("X-Request-Id") == ["trace-1"]

    status, headers, body = _get(f"{gateway}/wallet/balance", headers={"X-Request-Id": 'bad"id'})
    generated = json.loads(body)["headers"]["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated) and headers.get_all("X-Request-Id") == [generated]


@needs_nginx
def test_the_gateway_keeps_its_connections_to_a_service_alive(gateway):
    requests = 20
    peers = {json.loads(_get(f"{gateway}/wallet/balance")[2])["peer"] for _ in range(requests)}
    # One pooled connection per nginx worker at most (worker_processes auto: one per CPU), where a
    # connection per request would be 20.
    assert len(peers) <= min(os.cpu_count() or 1, requests - 1), peers


@needs_nginx
@pytest.mark.parametrize(
    "path",
    [
        "/internal/reservations",
        "/internal/wallets/x/grants",
        "/wallet/../internal/reservations",
        "/wallet/%2e%2e/internal/reservations",
        "/wallet/..%2finternal/reservations",
        "/metrics",
        "/openapi.yaml",
        "/unknown",
        "/",
        "/wallet",
        "/v1",
        "/internal",
    ],
)
def test_the_gateway_never_routes_internal_or_unknown_paths(gateway, path):
    # http.client sends the path as given: no client-side normalisation of the dot segments.
    status, headers, body = _get(gateway + path)
    assert _not_found(status, body), (status, body)
    assert headers["Content-Type"].startswith("application/json")
    meta = json.loads(body)["meta"]
    assert meta["requestId"] == headers["X-Request-Id"]
    assert type(meta["durationMs"]) is int and 0 <= meta["durationMs"] < 1000


@needs_nginx
@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/wallet/refused", 404, "wallet.not_found"),
        ("/wallet/upstream-refused", 502, "billing.upstream_error"),
    ],
)
def test_a_services_own_error_answer_passes_through_unchanged(gateway, path, status, code):
    answered, _, body = _get(gateway + path)
    assert answered == status and json.loads(body)["error"]["code"] == code


@needs_nginx
def test_an_oversized_body_gets_the_services_validation_error(gateway):
    status, _, body = _get(f"{gateway}/wallet/checkout", data=b"x" * (1024 * 1024 + 1))
    assert status == 400 and json.loads(body)["error"]["code"] == "validation_error"


@needs_nginx
@pytest.mark.parametrize(
    "path", ["/execute/wallet", "/webhook/lemonsqueezy", "/api/jobs", "/v1/runs/1", "/health"]
)
def test_a_service_that_is_not_running_answers_502_upstream_unavailable(gateway, path):
    status, headers, body = _get(gateway + path, headers={"X-Request-Id": "trace-down"})
    assert status == 502
    assert headers["Content-Type"].startswith("application/json"), body  # never nginx's HTML page
    answer = json.loads(body)
    assert answer["error"] == {"code": "upstream_unavailable", "message": UPSTREAM_UNAVAILABLE.message}
    assert answer["meta"]["requestId"] == "trace-down" == headers["X-Request-Id"]
    assert type(answer["meta"]["durationMs"]) is int


@needs_nginx
def test_a_service_that_hangs_up_answers_502_with_the_time_it_took(gateway):
    status, _, body = _get(f"{gateway}/wallet/hang-up")
    answer = json.loads(body)
    assert status == 502 and answer["error"]["code"] == "upstream_unavailable"
    # nginx's $request_time in whole milliseconds: exact to the millisecond nginx measures.
    assert HANG_UP_AFTER_S * 1000 <= answer["meta"]["durationMs"] < HANG_UP_AFTER_S * 1000 + 2000


# --- docker compose --------------------------------------------------------------------------


def test_compose_names_the_infrastructure_the_services_and_the_gateway(compose):
    services = compose["services"]
    assert {"postgres", "rabbitmq", "gateway", *SERVICES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    assert services["gateway"]["image"].startswith("nginx:1.27")
    for name in SERVICES:
        for built in (name, f"{name}-migrate"):  # one Dockerfile, told which service to build
            assert services[built]["build"]["dockerfile"] == "services/Dockerfile"
            assert services[built]["build"]["args"]["SERVICE"] == name
        assert (ROOT / services[name]["build"]["dockerfile"]).is_file()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts a missing {source}"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_compose_gives_the_gateway_every_template_variable(compose):
    environment = compose["services"]["gateway"]["environment"]
    assert UPSTREAM_VARIABLES | {"GATEWAY_RESOLVER", "GATEWAY_SERVER_RESOLVE"} <= set(environment)
    assert environment["GATEWAY_SERVER_RESOLVE"] == "resolve"  # names, and not all defined yet
    assert re.fullmatch(environment["NGINX_ENVSUBST_FILTER"].replace("$$", "$"), "GATEWAY_SERVER_RESOLVE")
    for name, (_, settings) in SERVICES.items():
        variable = name.upper().replace("-", "_") + "_UPSTREAM"
        assert environment[variable] == f"{name}:{settings().port}"
        assert name in compose["services"]["gateway"]["depends_on"]
    mounts = compose["services"]["gateway"]["volumes"]
    assert "./infra/gateway/nginx.conf.template:/etc/nginx/templates/nginx.conf.template:ro" in mounts
    assert environment["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_logs_in_with_the_role_and_password_init_sql_creates(compose, name):
    schema, _ = SERVICES[name]
    url = compose["services"][name]["environment"]["DATABASE_URL"]
    user, password = re.match(r"postgresql://([^:]+):([^@]+)@postgres:5432/lenserfight$", url).groups()
    init_sql = (ROOT / "infra" / "postgres" / "init.sql").read_text()
    assert re.search(rf"\('{user}',\s*'{schema}',\s*'{password}'\)", init_sql)
    assert "DB_ROLE" not in compose["services"][name]["environment"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_checked_for_health_on_its_own_port(compose, name):
    _, settings = SERVICES[name]
    port = settings().port
    service = compose["services"][name]
    assert f"http://127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"])
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]  # /internal only from this machine
    for infrastructure in ("postgres", "rabbitmq"):
        assert service["depends_on"][infrastructure] == {"condition": "service_healthy"}


def test_wallet_api_reaches_billing_webhook_in_compose(compose):
    url = compose["services"]["wallet-api"]["environment"]["BILLING_WEBHOOK_URL"]
    assert url == f"http://billing-webhook:{BillingSettings().port}"


def test_compose_defaults_billing_webhook_to_its_own_defaults(compose):
    """What compose passes when .env says nothing is what the service would use anyway (compose
    runs it in production, where a secret has no default: compose requires those with ${VAR:?})."""
    environment = compose["services"]["billing-webhook"]["environment"]
    lemonsqueezy = {name.upper() for name in BillingSettings.model_fields if name.startswith("lemonsqueezy_")}
    assert lemonsqueezy <= set(environment)
    secrets = {
        name: "s" * 32 for name in ("platform_api_key", "lemonsqueezy_webhook_secret", "lemonsqueezy_api_key")
    }

    def production(**values: str) -> BillingSettings:
        return BillingSettings(**{"env_mode": "production", **secrets, **values})

    for name, value in environment.items():
        field = name.lower()
        found = re.fullmatch(r"\$\{([A-Z_]+):-(.*)\}", str(value))
        if field not in BillingSettings.model_fields or field == "env_mode" or found is None:
            continue
        assert found[1] == name
        assert getattr(production(**{field: found[2]}), field) == getattr(production(), field), name


@pytest.mark.parametrize("name", SERVICES)
def test_compose_runs_each_service_in_production_with_secrets_required_from_env(compose, name):
    environment = compose["services"][name]["environment"]
    assert environment["ENV_MODE"] == "${ENV_MODE:-production}"
    assert environment["PLATFORM_API_KEY"].startswith("${PLATFORM_API_KEY:?")


def test_init_sql_gives_every_service_of_the_dev_runner_a_role_and_its_schemas():
    runner = (ROOT / "infra" / "dev" / "run.sh").read_text()
    services = re.findall(r'^\s+"([a-z-]+)\|[A-Z_]+:(\d+)\|([a-z_]+)\|([a-z_]+)"$', runner, re.MULTILINE)
    assert len(services) == 5
    init_sql = (ROOT / "infra" / "postgres" / "init.sql").read_text()
    roles = dict(re.findall(r"\('([a-z_]+)',\s*'([a-z_]+)',\s*'[^']+'\)", init_sql))
    assert {role for _, _, role, _ in services} == set(roles)
    assert roles["wallet_api"] == wallet_app.SCHEMA
    assert roles["billing_webhook"] == billing_app.SCHEMA
    assert "_rebuild" in init_sql and "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in init_sql


def test_the_broker_definitions_hold_the_topology_the_consumer_queues_and_the_services_users(compose):
    document = json.loads((ROOT / "infra" / "rabbitmq" / "definitions.json").read_text())
    # The consumers' queues are declared up front too, so that nothing a producer publishes
    # before a consumer's first start is dropped as unroutable.
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", ROOT / "infra" / "rabbitmq" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)

    # billing-webhook consumes nothing (it only relays): no queue of its own.
    source = inspect.getsource(billing_app)
    assert "Consumer" not in source and ".consume(" not in source
    assert (ROOT / "infra" / "rabbitmq" / "definitions.json").read_text() == generate.text(), (
        "stale: regenerate with `uv run python infra/rabbitmq/generate.py`"
    )
    from wallet_api.handlers import HANDLERS

    expected = definitions(
        {"wallet-api": sorted(model.routing_key for model in HANDLERS)},
        work={"platform-api": ["platform.run_node_queued.v1"]},  # the run workers' queue
    )
    for part in ("exchanges", "queues", "bindings"):
        assert document[part] == expected[part], f"stale {part}: regenerate with lf_messaging.definitions"
    # One user per service, logging in with the password its hash in the definitions holds, and
    # allowed to publish only its own context's routing keys.
    for name in SERVICES:
        url = compose["services"][name]["environment"]["AMQP_URL"]
        user, password = re.match(r"amqp://([^:]+):([^@]+)@rabbitmq:5672/$", url).groups()
        assert user == name
        (entry,) = [u for u in document["users"] if u["name"] == user]
        raw = base64.b64decode(entry["password_hash"])
        assert entry["hashing_algorithm"] == "rabbit_password_hashing_sha256"
        assert raw[4:] == hashlib.sha256(raw[:4] + password.encode()).digest()
        assert entry["tags"] == ""  # not an administrator
        (topic,) = [t for t in document["topic_permissions"] if t["user"] == user]
        assert (topic["exchange"], topic["write"]) == ("lf.events", "^" + name.split("-")[0] + "\\.")
        (rights,) = [p for p in document["permissions"] if p["user"] == user]
        assert ".*" not in rights.values()


def test_everything_billing_webhook_publishes_has_a_queue_from_the_brokers_first_boot():
    document = json.loads((ROOT / "infra" / "rabbitmq" / "definitions.json").read_text())
    published = {
        contract.routing_key
        for contract in vars(billing_events).values()
        if isinstance(contract, type)
        and issubclass(contract, IntegrationEvent)
        and contract is not IntegrationEvent
    }
    assert "billing.credits_purchased.v1" in published  # the introspection finds the contracts
    bound = {b["routing_key"] for b in document["bindings"] if b["source"] == "lf.events"}
    assert published - bound == set(), "published but dropped as unroutable"


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _docker_compose_works(), reason="`docker compose version` fails: no Compose plugin here"
)
def test_docker_compose_accepts_the_file():
    result = subprocess.run(["docker", "compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- image, settings, make -------------------------------------------------------------------


def _workspace_dependencies(package: str) -> set[str]:
    """Directories of the workspace members ``package`` needs, itself included."""
    projects = [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
    members = {
        tomllib.loads(p.read_text())["project"]["name"]: p.parent.relative_to(ROOT).as_posix()
        for p in [*projects, ROOT / "contracts" / "pyproject.toml"]
    }
    needed, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        project = tomllib.loads((ROOT / members[name] / "pyproject.toml").read_text())["project"]
        requirements = (re.split(r"[<>=\[ ;]", dep)[0] for dep in project.get("dependencies", []))
        todo += [requirement for requirement in requirements if requirement in members]
    return {members[name] for name in needed}


def _installed_members(package: str) -> set[str]:
    """Directories of the workspace members that ``uv sync --package`` installs for ``package``."""
    exported = subprocess.run(
        ["uv", "export", "--frozen", "--no-dev", "--package", package, "--no-editable", "--no-hashes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.removeprefix("./") for line in exported.splitlines() if line.startswith("./")}


@pytest.mark.parametrize("name", SERVICES)
def test_each_image_copies_exactly_the_members_it_needs(name, compose):
    _, settings = SERVICES[name]
    dockerfile = (ROOT / "services" / "Dockerfile").read_text()
    port = settings().port
    assert compose["services"][name]["build"]["args"] == {"SERVICE": name, "PORT": str(port)}
    # The image is one virtualenv, synced for this service alone and not editable (no source tree
    # comes along), over a layer of the same service's locked third-party dependencies.
    image = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.findall(r"^COPY .*$", image, re.MULTILINE) == ["COPY --from=build /app/.venv /app/.venv"]
    assert 'uv sync --frozen --no-dev --package "${SERVICE}" --no-editable' in dockerfile
    assert 'uv sync --frozen --no-dev --package "${SERVICE}" --no-install-workspace' in dockerfile
    assert _installed_members(name) == _workspace_dependencies(name)  # what that sync installs
    assert "USER " in image and "EXPOSE ${PORT}" in image and "PORT=${PORT}" in image
    assert 'CMD ["service", "serve"]' in image
    # `service` is written at build time: `python -m <package>` for the SERVICE built.
    launcher = re.search(r"(printf .*?) > /app/\.venv/bin/service", dockerfile)
    assert launcher is not None
    written = subprocess.run(
        ["sh", "-c", launcher.group(1)],
        env={"SERVICE": name, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    package = name.replace("-", "_")
    assert f'exec python -m {package} "$@"' in written.splitlines()


@pytest.mark.parametrize(
    "settings", [WalletSettings, BillingSettings, PlatformSettings], ids=lambda s: s.__name__
)
def test_env_example_lists_every_setting(settings):
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    expected = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        expected |= {str(choice) for choice in alias.choices} if alias is not None else {name.upper()}
    assert expected - listed == set()


def test_make_dev_gives_platform_api_the_fake_chainabit_unless_one_is_set():
    runner = (ROOT / "infra" / "dev" / "run.sh").read_text()
    started = re.search(
        r'python" -m lf_testing\.fakes\.chainabit --port "\$(\w+)" --api-key ([\w-]+)', runner
    )
    assert started, "make dev does not start the fake Chainabit"
    assert (
        f'export CHAINABIT_API_URL="http://127.0.0.1:${started[1]}" CHAINABIT_PARTNER_API_KEY={started[2]}'
        in runner
    )
    assert '-z "${CHAINABIT_API_URL:-}"' in runner


def test_make_dev_gives_billing_webhook_the_fake_lemonsqueezy_unless_one_is_set():
    runner = (ROOT / "infra" / "dev" / "run.sh").read_text()
    started = re.search(r'python" -m lf_testing\.fakes\.lemonsqueezy --port "\$(\w+)"', runner)
    assert started, "make dev does not start the fake LemonSqueezy"
    assert f'export LEMONSQUEEZY_API_URL="http://127.0.0.1:${started[1]}"' in runner
    assert '-z "${LEMONSQUEEZY_API_URL:-}"' in runner


def test_make_targets_exist_and_recipes_are_tab_indented():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.MULTILINE))
    assert {"help", "dev", "test", "token", "bench", "migrate", "compose-config"} <= targets
    for line in makefile.splitlines():
        assert not line.startswith("    "), f"recipe indented with spaces: {line!r}"


# --- docs ------------------------------------------------------------------------------------


def _codes_marked_ours() -> set[str]:
    """Catalogue codes whose ``_code(...)`` statement carries the comment ``# ours``."""
    with (ROOT / "contracts" / "src" / "lf_contracts" / "errors.py").open("rb") as source:
        tokens = list(tokenize.tokenize(source.readline))
    marked: set[str] = set()
    code, ours, calling = None, False, False
    for previous, token in itertools.pairwise(tokens):
        if previous.string == "_code" and token.string == "(":
            calling = True
        elif calling and code is None and token.type == tokenize.STRING:
            code = token.string.strip('"')
        elif token.type == tokenize.COMMENT and token.string.lstrip("# ").startswith("ours"):
            ours = True
        elif token.type == tokenize.NEWLINE:
            if code is not None and ours:
                marked.add(code)
            code, ours, calling = None, False, False
    return marked


def test_docs_errors_lists_every_code_with_its_status_and_marks_ours():
    rows = {
        match["code"]: (int(match["status"]), bool(match["ours"]))
        for match in re.finditer(
            r"^\| `(?P<code>[a-z_.]+)` \| (?P<status>\d{3}) \|[^|]*\|(?P<ours> \*\*ours\*\*)? *\|",
            (ROOT / "docs" / "errors.md").read_text(),
            re.MULTILINE,
        )
    }
    ours = _codes_marked_ours()
    assert "rate_limited" in ours and "wallet.not_found" not in ours
    assert rows == {code: (entry.status, code in ours) for code, entry in CATALOGUE.items()}
