"""Chainabit's partner API, as platform-api needs it (REFERENCE.md, seed 001's partner routes).

``Authorization: ApiKey <CHAINABIT_PARTNER_API_KEY>`` on every call, ``CHAINABIT_API_URL`` as base:
``POST /partner/provisions`` ``{email, display_name, source_user_id, starter_credits, token_scopes}``,
``GET /partner/provisions/{id}/balance``, ``POST /partner/provisions/{id}/refresh-token``
``{refresh_token}``, ``POST /partner/provisions/{id}/send-claim`` ``{email?}``.

What we rely on (and the fake in lf_testing.fakes.chainabit does): ``source_user_id`` is Chainabit's
idempotency key, so provisioning a source user it knows answers that account (with its current
tokens) rather than making a second one; that is what makes a retry after a crash safe.

Every failure is a catalogue code (docs/errors.md): no answer within the timeout, a 5xx or a 429 is
``partner.unavailable`` (503, with the partner's ``Retry-After``); a refusal of the request's content
(400, 409, 422) is ``partner.invalid_request`` (400, the partner's message in ``details``); any other
refusal (401, 403, 404: our key or a record it no longer knows) is ``partner.refused`` (502); a 2xx
we cannot use is ``partner.bad_response`` (502). The API key and tokens are sent, never logged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import structlog
from prometheus_client import Counter, Histogram

from lf_contracts.errors import (
    PARTNER_BAD_RESPONSE,
    PARTNER_INVALID_REQUEST,
    PARTNER_REFUSED,
    PARTNER_UNAVAILABLE,
    ApiError,
)

NAME = "chainabit"
CONTENT_REFUSALS = frozenset({400, 409, 422})

log = structlog.get_logger(__name__)

PARTNER_REQUESTS = Counter(
    "platform_partner_requests_total",
    "Calls to partners, by partner, operation and outcome",
    ["partner", "operation", "outcome"],
)
PARTNER_LATENCY = Histogram(
    "platform_partner_request_seconds",
    "Time partners took to answer, by partner and operation",
    ["partner", "operation"],
)


@dataclass(frozen=True, slots=True)
class TokenBundle:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    scopes: list[str]


@dataclass(frozen=True, slots=True)
class PartnerAccount:
    account_id: str
    tokens: TokenBundle


@dataclass(frozen=True, slots=True)
class Balance:
    credits: int
    as_of: datetime | None


@dataclass(frozen=True, slots=True)
class Claim:
    claim_id: str
    sent_to: str


class ChainabitClient:
    name = NAME

    def __init__(
        self, http: aiohttp.ClientSession, *, api_url: str | None, api_key: str, timeout_seconds: float
    ) -> None:
        self._http, self._api_url = http, (api_url or "").rstrip("/")
        self._headers = {"Authorization": f"ApiKey {api_key}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def provision(
        self,
        *,
        email: str,
        display_name: str,
        source_user_id: str,
        starter_credits: int,
        token_scopes: list[str],
    ) -> PartnerAccount:
        body = {
            "email": email,
            "display_name": display_name,
            "source_user_id": source_user_id,
            "starter_credits": starter_credits,
            "token_scopes": token_scopes,
        }
        answer = await self._call("provision", "POST", "/partner/provisions", body)
        try:
            return PartnerAccount(_text(answer, "id"), _tokens(answer))
        except (KeyError, TypeError, ValueError):
            raise _bad_answer("provision") from None

    async def balance(self, account_id: str) -> Balance:
        answer = await self._call("balance", "GET", f"/partner/provisions/{account_id}/balance")
        try:
            credits = answer["credits"]
            if not isinstance(credits, int) or isinstance(credits, bool):
                raise TypeError("credits is not an integer")
            return Balance(credits, _time(answer.get("as_of")))
        except (KeyError, TypeError, ValueError):
            raise _bad_answer("balance") from None

    async def refresh_token(self, account_id: str, refresh_token: str) -> TokenBundle:
        answer = await self._call(
            "refresh_token",
            "POST",
            f"/partner/provisions/{account_id}/refresh-token",
            {"refresh_token": refresh_token},
        )
        try:
            return _tokens(answer)
        except (KeyError, TypeError, ValueError):
            raise _bad_answer("refresh_token") from None

    async def send_claim(self, account_id: str, email: str | None) -> Claim:
        body = {"email": email} if email else {}
        answer = await self._call("send_claim", "POST", f"/partner/provisions/{account_id}/send-claim", body)
        try:
            return Claim(_text(answer, "claim_id"), _text(answer, "sent_to"))
        except (KeyError, TypeError, ValueError):
            raise _bad_answer("send_claim") from None

    async def _call(self, operation: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self._api_url:
            raise ApiError(PARTNER_UNAVAILABLE, "Chainabit is not configured (CHAINABIT_API_URL is unset)")
        started = time.perf_counter()
        try:
            async with self._http.request(
                method, f"{self._api_url}{path}", json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                status, raw, retry_after = (
                    response.status,
                    await response.read(),
                    response.headers.get("Retry-After"),
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            _count(operation, "unreachable", started)
            log.warning("chainabit.unreachable", operation=operation, error=type(error).__name__)
            raise ApiError(PARTNER_UNAVAILABLE, f"Chainabit did not answer: {type(error).__name__}") from None
        if 200 <= status < 300:
            try:
                answer = json.loads(raw)
            except ValueError:
                _count(operation, "malformed", started)
                raise _bad_answer(operation) from None
            _count(operation, "ok", started)
            return answer
        _count(operation, "unavailable" if status >= 500 or status == 429 else "refused", started)
        raise _refusal(operation, status, raw, retry_after)


def _refusal(operation: str, status: int, raw: bytes, retry_after: str | None) -> ApiError:
    code, message = _partner_error(raw)
    log.warning("chainabit.refused", operation=operation, status=status, partner_code=code)
    details = {"partner": NAME, "partnerStatus": status, "partnerCode": code, "partnerMessage": message}
    if status >= 500 or status == 429:
        headers = {"Retry-After": retry_after} if retry_after and retry_after.isdigit() else None
        return ApiError(PARTNER_UNAVAILABLE, f"Chainabit answered {status}", details, headers)
    if status in CONTENT_REFUSALS:
        return ApiError(PARTNER_INVALID_REQUEST, f"Chainabit refused the request: {message}", details)
    return ApiError(PARTNER_REFUSED, f"Chainabit refused the platform's call ({status})", details)


def _bad_answer(operation: str) -> ApiError:
    log.error("chainabit.malformed_answer", operation=operation)
    return ApiError(PARTNER_BAD_RESPONSE, f"Chainabit's answer to {operation} is not usable")


def _partner_error(raw: bytes) -> tuple[str | None, str]:
    """Chainabit's ``{"error": {"code", "message"}}``, for the log and the client's ``details``."""
    try:
        error = json.loads(raw)["error"]
        return str(error.get("code")), str(error.get("message"))[:300]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "no error document"


def _text(answer: Any, key: str) -> str:
    value = answer[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is not a string")
    return value


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _tokens(answer: Any) -> TokenBundle:
    refresh = answer.get("refresh_token")
    scopes = answer.get("token_scopes") or []
    if not isinstance(scopes, list):
        raise TypeError("token_scopes is not a list")
    return TokenBundle(
        _text(answer, "access_token"),
        refresh if isinstance(refresh, str) and refresh else None,
        _time(answer.get("expires_at")),
        [str(scope) for scope in scopes],
    )


def _count(operation: str, outcome: str, started: float) -> None:
    PARTNER_REQUESTS.labels(NAME, operation, outcome).inc()
    PARTNER_LATENCY.labels(NAME, operation).observe(time.perf_counter() - started)
