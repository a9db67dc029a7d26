"""``/v1/partners/{partnerName}/*``: a lenser's account at a partner (seed 001; only ``chainabit``).

The seed leaves the bodies to the partner; ours for Chainabit (docs: the service README):
``provision`` ``{email, displayName?}`` answers the provisioning record (the same record however
often it is called); ``balance`` the partner's balance of that account; ``refresh-token`` ``{}``
a new token bundle (the record with its new access token); ``send-claim`` ``{email?}`` the claim
Chainabit sent. Each answers 200 enveloped. An unknown partner is 404 ``partner.not_found``; an
account not provisioned yet 404 ``partner.not_provisioned``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import Field

from lf_web import RequestBody, event_metadata, ok, parse_body, require_user
from platform_api.application.partners import PartnerUseCases
from platform_api.http.keys import PARTNERS

routes = web.RouteTableDef()
BASE = "/v1/partners/{partnerName}"


# An address's shape only: the partner decides what it accepts (partner.invalid_request otherwise).
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ProvisionBody(RequestBody):
    email: str = Field(max_length=320, pattern=EMAIL)
    display_name: str = Field(default="", max_length=200)


class RefreshBody(RequestBody):
    """Nothing to send: the refresh token is the platform's, kept sealed."""


class ClaimBody(RequestBody):
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL)


def _metadata(request: web.Request, caller: UUID) -> dict[str, Any]:
    return event_metadata(request, f"lenser:{caller}")


async def _called(request: web.Request) -> tuple[UUID, PartnerUseCases, str]:
    """The caller, the partners and the name asked for: an unknown partner is 404 before the body is
    looked at."""
    caller = await require_user(request)
    partners = request.app[PARTNERS]
    name = request.match_info["partnerName"]
    partners.partner(name)
    return caller, partners, name


@routes.post(f"{BASE}/provision")
async def provision(request: web.Request) -> web.Response:
    caller, partners, name = await _called(request)
    body = await parse_body(request, ProvisionBody)
    record = await partners.provision(
        caller, name, email=body.email, display_name=body.display_name, metadata=_metadata(request, caller)
    )
    return ok(request, record)


@routes.get(f"{BASE}/balance")
async def balance(request: web.Request) -> web.Response:
    caller, partners, name = await _called(request)
    return ok(request, await partners.balance(caller, name))


@routes.post(f"{BASE}/refresh-token")
async def refresh_token(request: web.Request) -> web.Response:
    caller, partners, name = await _called(request)
    await parse_body(request, RefreshBody)
    return ok(request, await partners.refresh_token(caller, name, metadata=_metadata(request, caller)))


@routes.post(f"{BASE}/send-claim")
async def send_claim(request: web.Request) -> web.Response:
    caller, partners, name = await _called(request)
    body = await parse_body(request, ClaimBody)
    claim = await partners.send_claim(caller, name, email=body.email, metadata=_metadata(request, caller))
    return ok(request, claim)
