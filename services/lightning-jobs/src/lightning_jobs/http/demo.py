"""Seed 002's free demo, ``GET /api/demo?request=...``: the work model answers without payment,
5 requests an hour per client IP (``http/client_ip.py`` says whose), counted in PostgreSQL by
``lf_web.RateLimiter`` so that every replica shares the one allowance. The allowance is taken first,
so every answer, 400 and 500 included, carries the ``X-RateLimit-*`` headers, as the seed documents."""

from __future__ import annotations

from uuid import uuid4

from aiohttp import web

from lf_contracts import errors as codes
from lf_contracts.errors import ApiError
from lightning_jobs.http.client_ip import admit_per_ip
from lightning_jobs.http.jobs import answer
from lightning_jobs.http.keys import AGENT, DEMO

routes = web.RouteTableDef()

MAX_REQUEST_CHARS = 20_000  # as a job's request


@routes.get("/api/demo")
async def run_demo(request: web.Request) -> web.Response:
    await admit_per_ip(request, request.app[DEMO], "lightning.demo")
    text = request.query.get("request", "").strip()
    if not text or len(text) > MAX_REQUEST_CHARS:
        raise ApiError(codes.VALIDATION_ERROR, f"request: 1 to {MAX_REQUEST_CHARS} characters required")
    demo_id = uuid4()
    # A fresh reference: each demo request is its own execution (nothing to resume after a crash).
    done = await request.app[AGENT].work(
        demo_id, text, f"lightning-demo:{demo_id}", request.app[AGENT].work_model()
    )
    return answer({"result": done.result})
