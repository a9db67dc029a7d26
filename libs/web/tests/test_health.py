import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from aiohttp.test_utils import TestClient

from lf_web import BROKER_CHECK, PG_POOL, BrokerCheck, add_health_check

MakeClient = Callable[..., Awaitable[TestClient]]


def with_broker(check: BrokerCheck) -> Callable[[web.Application], None]:
    def setup(app: web.Application) -> None:
        app[BROKER_CHECK] = check

    return setup


async def test_health_is_200_ok_in_the_seed_shape_without_envelope(make_client: MakeClient) -> None:
    client = await make_client(PLATFORM_API_VERSION="1.2.3")

    response = await client.get("/health")

    assert response.status == 200
    body = await response.json()
    assert set(body) == {"status", "db", "uptime_s", "version", "checked_at"}
    assert (body["status"], body["db"], body["version"]) == ("ok", True, "1.2.3")
    assert isinstance(body["uptime_s"], int) and body["uptime_s"] >= 0
    assert body["checked_at"].endswith("Z") and datetime.fromisoformat(body["checked_at"])


async def test_health_reports_a_working_broker(make_client: MakeClient) -> None:
    async def broker_alive() -> bool:
        return True

    client = await make_client(setup=with_broker(broker_alive))

    body = await (await client.get("/health")).json()

    assert (body["status"], body["db"], body["broker"]) == ("ok", True, True)


async def test_health_is_503_degraded_when_the_broker_is_down(make_client: MakeClient) -> None:
    client = await make_client(setup=with_broker(lambda: False))

    response = await client.get("/health")

    assert response.status == 503
    body = await response.json()
    assert (body["status"], body["db"], body["broker"]) == ("degraded", True, False)
    assert body["reason"] == "broker: down"


async def test_health_is_503_degraded_when_the_broker_check_raises(make_client: MakeClient) -> None:
    def broken() -> bool:
        raise ConnectionError("gone")

    client = await make_client(setup=with_broker(broken))

    body = await (await client.get("/health")).json()

    assert body["reason"] == "broker: ConnectionError"


async def test_health_is_503_degraded_when_the_database_is_unreachable(client: TestClient) -> None:
    await client.app[PG_POOL].close()

    response = await client.get("/health")

    assert response.status == 503
    body = await response.json()
    assert (body["status"], body["db"]) == ("degraded", False)
    assert body["reason"].startswith("database: ")


async def test_health_gives_up_on_the_database_after_1500_ms(client: TestClient) -> None:
    pool = client.app[PG_POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        started = asyncio.get_running_loop().time()
        body = await (await client.get("/health")).json()
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        for connection in held:
            await pool.release(connection)

    assert body["reason"] == "database: timeout"
    assert 1.4 < elapsed < 3


async def test_health_is_503_degraded_with_a_registered_checks_reason(make_client: MakeClient) -> None:
    state: dict[str, str | None] = {"consumer": None}
    client = await make_client(setup=lambda app: add_health_check(app, "consumer", lambda: state["consumer"]))

    healthy = await client.get("/health")
    state["consumer"] = "waiting for the database for 3s (ConnectionRefusedError)"
    waiting = await client.get("/health")

    assert healthy.status == 200 and (await healthy.json())["consumer"] is True
    assert waiting.status == 503
    body = await waiting.json()
    assert (body["status"], body["db"], body["consumer"]) == ("degraded", True, False)
    assert body["reason"] == "consumer: waiting for the database for 3s (ConnectionRefusedError)"
