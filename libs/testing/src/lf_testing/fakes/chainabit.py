"""A fake Chainabit: its partner API over HTTP on 127.0.0.1, as platform-api's adapter speaks it.

``FakeChainabit`` demands ``Authorization: ApiKey <key>`` and serves:

- ``POST /partner/provisions`` ``{email, display_name, source_user_id, starter_credits, token_scopes}``:
  201 with a new account ``{id, source_user_id, email, display_name, credits, token_scopes,
  access_token, refresh_token, expires_at}``; ``source_user_id`` is the idempotency key: a second
  provision with one it knows answers 200 with the same account and its current tokens, never a
  second account (what makes platform-api's retry after a crash safe).
- ``GET /partner/provisions/{id}/balance``: ``{provision_id, credits, as_of}``.
- ``POST /partner/provisions/{id}/refresh-token`` ``{refresh_token}``: a new bundle; the old refresh
  token stops working (401 ``invalid_refresh_token`` if it comes again).
- ``POST /partner/provisions/{id}/send-claim`` ``{email?}``: 202 ``{claim_id, provision_id, sent_to}``.

Errors are ``{"error": {"code", "message"}}``. It records every request (``requests``), counts the
accounts it made (``accounts``), and fails on demand: ``fail_with(status)`` answers every request so
(``retry_after`` adds the header), ``hang()`` never answers, ``lose_next_answers(n)`` does the work
and then breaks the connection (a partner that provisioned but whose answer never arrived).

Also runnable for development::

    python -m lf_testing.fakes.chainabit --port 8795 --api-key dev-chainabit-key
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from lf_testing.fakes.server import FakeServer, json_body

TOKEN_LIFETIME = timedelta(hours=1)
BODY = web.RequestKey("body", object)


@dataclass(frozen=True)
class ChainabitCall:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Account:
    id: str
    source_user_id: str
    email: str
    display_name: str
    credits: int
    token_scopes: list[str]
    access_token: str = ""
    refresh_token: str = ""
    claims: list[str] = field(default_factory=list)


class FakeChainabit(FakeServer):
    def __init__(self, *, api_key: str = "test-chainabit-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[ChainabitCall] = []
        self.accounts: dict[str, Account] = {}
        self._by_source: dict[str, str] = {}
        self._failure: tuple[int, float | None] | None = None
        self._lose = 0

    def fail_with(self, status: int, *, retry_after: float | None = None) -> None:
        """Answer every request with ``status`` and an error document."""
        self._failure = (status, retry_after)

    def lose_next_answers(self, count: int = 1) -> None:
        """Do the next ``count`` requests' work, then drop the connection instead of answering."""
        self._lose = count

    def recover(self) -> None:
        self._failure, self._lose = None, 0
        super().recover()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_post("/partner/provisions", self._provision)
        app.router.add_get("/partner/provisions/{id}/balance", self._balance)
        app.router.add_post("/partner/provisions/{id}/refresh-token", self._refresh)
        app.router.add_post("/partner/provisions/{id}/send-claim", self._send_claim)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await json_body(request)
        self.requests.append(ChainabitCall(request.method, request.path, dict(request.headers), body))
        request[BODY] = body
        await self.hang_if_told()
        if self._failure is not None:
            status, retry_after = self._failure
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
            return _error(status, "failure", "the fake was told to fail", headers=headers)
        if request.headers.get("Authorization") != f"ApiKey {self.api_key}":
            return _error(401, "unauthorized", "missing or wrong partner API key")
        response = await handler(request)
        if self._lose > 0:
            self._lose -= 1
            assert request.transport is not None
            request.transport.close()  # the work is done; the answer never leaves
        return response

    async def _provision(self, request: web.Request) -> web.Response:
        body = request[BODY]
        problem = _invalid_provision(body)
        if problem is not None:
            return _error(422, "invalid_provision", problem)
        known = self._by_source.get(body["source_user_id"])
        if known is not None:
            return web.json_response(_account(self.accounts[known]), status=200)
        account = Account(
            id=f"prov_{uuid.uuid4().hex[:16]}",
            source_user_id=body["source_user_id"],
            email=body["email"],
            display_name=body.get("display_name") or "",
            credits=body.get("starter_credits") or 0,
            token_scopes=list(body.get("token_scopes") or []),
        )
        _issue_tokens(account)
        self.accounts[account.id] = account
        self._by_source[account.source_user_id] = account.id
        return web.json_response(_account(account), status=201)

    def _account_of(self, request: web.Request) -> Account | None:
        return self.accounts.get(request.match_info["id"])

    async def _balance(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(404, "not_found", "no such provision")
        return web.json_response(
            {"provision_id": account.id, "credits": account.credits, "as_of": _now().isoformat()}
        )

    async def _refresh(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(404, "not_found", "no such provision")
        given = (request[BODY] or {}).get("refresh_token")
        if not given or not secrets.compare_digest(str(given), account.refresh_token):
            return _error(401, "invalid_refresh_token", "the refresh token is not this provision's latest")
        _issue_tokens(account)
        return web.json_response(_tokens(account))

    async def _send_claim(self, request: web.Request) -> web.Response:
        account = self._account_of(request)
        if account is None:
            return _error(404, "not_found", "no such provision")
        email = (request[BODY] or {}).get("email") or account.email
        if "@" not in str(email):
            return _error(422, "invalid_email", "email is not an address")
        claim_id = f"claim_{uuid.uuid4().hex[:16]}"
        account.claims.append(claim_id)
        return web.json_response(
            {"claim_id": claim_id, "provision_id": account.id, "sent_to": email}, status=202
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _issue_tokens(account: Account) -> None:
    account.access_token = f"cb_at_{secrets.token_urlsafe(24)}"
    account.refresh_token = f"cb_rt_{secrets.token_urlsafe(24)}"


def _tokens(account: Account) -> dict[str, Any]:
    return {
        "access_token": account.access_token,
        "refresh_token": account.refresh_token,
        "token_type": "Bearer",
        "token_scopes": account.token_scopes,
        "expires_at": (_now() + TOKEN_LIFETIME).isoformat(),
    }


def _account(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "source_user_id": account.source_user_id,
        "email": account.email,
        "display_name": account.display_name,
        "credits": account.credits,
        **_tokens(account),
    }


def _invalid_provision(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("source_user_id"), str) or not body["source_user_id"]:
        return "source_user_id is required"
    if not isinstance(body.get("email"), str) or "@" not in body["email"]:
        return "email is not an address"
    if not isinstance(body.get("starter_credits", 0), int) or body.get("starter_credits", 0) < 0:
        return "starter_credits must be a non-negative integer"
    if not isinstance(body.get("token_scopes", []), list):
        return "token_scopes must be a list"
    return None


def _error(status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8795)
    parser.add_argument("--api-key", default="dev-chainabit-key")
    arguments = parser.parse_args()
    fake = FakeChainabit(api_key=arguments.api_key)
    asyncio.run(fake.serve_forever(arguments.port, f"fake Chainabit on {{url}} (ApiKey {arguments.api_key})"))


if __name__ == "__main__":
    main()
