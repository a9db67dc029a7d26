"""``POST /api/l402/request {request}`` (ours): pay per request with L402 (REFERENCE.md).

Without ``Authorization: L402 ...``: 402 with ``WWW-Authenticate: L402 macaroon="<base64>",
invoice="<bolt11>"``. With ``Authorization: L402 <macaroon>:<preimage hex>`` (``LSAT``, L402's
former name, is read too): 200 ``{state: complete | rejected | failed, result | reason |
errorMessage, amountSats}``; 401 for a token that is not good for this request, 409 for one used.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from lf_contracts.errors import LIGHTNING_PAYMENT_REQUIRED, ApiError
from lf_web import RequestBody, parse_body
from lightning_jobs.domain.errors import InvalidL402Token
from lightning_jobs.http.errors import error_body
from lightning_jobs.http.jobs import answer
from lightning_jobs.http.keys import L402

routes = web.RouteTableDef()


class L402Request(RequestBody):
    request: str = Field(min_length=1, max_length=20_000)


def token_of(request: web.Request) -> tuple[str, str] | None:
    """(macaroon, preimage) of ``Authorization: L402 <macaroon>:<preimage>``; None without one."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    macaroon, separator, preimage = credentials.strip().rpartition(":")
    if scheme.upper() not in ("L402", "LSAT") or not separator or not macaroon or not preimage:
        raise InvalidL402Token("Invalid L402 token: expected Authorization: L402 <macaroon>:<preimage>")
    return macaroon, preimage.lower()


@routes.post("/api/l402/request")
async def l402_request(request: web.Request) -> web.Response:
    body = await parse_body(request, L402Request)
    token = token_of(request)
    if token is None:
        macaroon, invoice = await request.app[L402].offer(body.request)
        return web.json_response(
            error_body(ApiError(LIGHTNING_PAYMENT_REQUIRED)),
            status=402,
            headers={"WWW-Authenticate": f'L402 macaroon="{macaroon}", invoice="{invoice}"'},
        )
    return answer(await request.app[L402].redeem(*token, body.request))
