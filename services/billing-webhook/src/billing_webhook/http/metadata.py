from typing import Any

from aiohttp import web

from lf_web import REQUEST_ID


def from_request(request: web.Request, actor: str) -> dict[str, Any]:
    """Event metadata for an effect caused by an HTTP request."""
    request_id = request[REQUEST_ID]
    return {"requestId": request_id, "correlationId": request_id, "causationId": request_id, "actor": actor}
