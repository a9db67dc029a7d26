"""Seed 002's ``GET /api/healthz``: ``HealthStatus`` ``{status: "ok"}`` while the process serves.
(The kit's ``/health`` is the readiness probe: database and broker.)"""

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/api/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
