"""lf_web.run's backstop: a shutdown that cannot finish (here a cleanup that ignores cancellation,
as a library may) still ends the process, at 2 x SHUTDOWN_TIMEOUT_SECONDS + 5 s, with status 70."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from lf_testing.processes import free_port

STUCK_SERVICE = """
import asyncio, sys
from lf_web import ServiceSettings, create_app, run

async def never_finishes(app):
    yield
    while True:  # swallows every cancellation
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

settings = ServiceSettings(database_url=sys.argv[1], port=int(sys.argv[2]), host="127.0.0.1",
                           shutdown_timeout_seconds=1)
app = create_app(settings, service="stuck", schema="stuck")
app.cleanup_ctx.append(never_finishes)
run(app, settings)
"""


async def _serving(port: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        assert process.returncode is None, "the service exited at start"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("the service never listened")


async def test_a_shutdown_stuck_in_cleanup_still_ends_the_process_at_its_deadline(database_url: str) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STUCK_SERVICE, database_url, str(port), env={**os.environ, "LOG_LEVEL": "ERROR"}
    )
    try:
        await _serving(port, process)
        started = time.monotonic()
        process.terminate()
        status = await asyncio.wait_for(process.wait(), 20)  # before: never
        seconds = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 70
    assert 2 * 1 + 5 - 0.5 <= seconds < 2 * 1 + 5 + 3
