"""The metadata every event carries when an HTTP request caused it."""

from typing import Any

from aiohttp import web

from lf_web.request_context import REQUEST_ID


def event_metadata(request: web.Request, actor: str) -> dict[str, Any]:
    """The request id starts the chain: it correlates everything that follows from this request."""
    request_id = request[REQUEST_ID]
    return {"requestId": request_id, "correlationId": request_id, "causationId": request_id, "actor": actor}
