import asyncio
import os
import signal
import socket
import sys
import textwrap
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from lf_web import ServiceSettings, create_app


async def test_openapi_document_is_served_as_yaml(database_url: str, tmp_path: Path) -> None:
    document = tmp_path / "openapi.yaml"
    document.write_text("openapi: 3.1.0\ninfo: {title: wallet, version: '1'}\n")
    app = create_app(
        ServiceSettings(database_url=database_url), service="t", schema="t", openapi_path=document
    )

    async with TestClient(TestServer(app)) as client:
        response = await client.get("/openapi.yaml")

        assert response.status == 200
        assert response.content_type == "application/yaml"
        assert await response.text() == document.read_text()


SERVICE = textwrap.dedent(
    """
    import asyncio
    from aiohttp import web
    from lf_web import ServiceSettings, create_app, ok, run

    async def slow(request):
        await asyncio.sleep(0.5)
        return ok(request, "finished")

    settings = ServiceSettings()
    app = create_app(settings, service="t", schema="t")
    app.router.add_get("/slow", slow)
    run(app, settings)
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_sigterm_lets_the_in_flight_request_finish_then_exits_cleanly(database_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port)}
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVICE, env=env)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for _ in range(100):  # until the service listens
                try:
                    await (await http.get("/health")).read()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            in_flight = asyncio.create_task(http.get("/slow"))
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            response = await in_flight

            assert response.status == 200
            assert (await response.json())["data"] == "finished"
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
