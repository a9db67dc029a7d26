"""Who is calling: Supabase JWTs for lensers, a shared key for internal calls.

Supabase signs either with the project's HS256 secret (legacy) or with asymmetric keys (RS256/ES256)
published as a JWKS. Which key verifies a token is chosen by us, never by the token: HS256 only
ever checks against the secret and RS256/ES256 only against JWKS keys, so neither ``alg: none`` nor
the HMAC-with-public-key confusion can pass. The JWKS is fetched with aiohttp (PyJWKClient would
block the event loop with urllib) and cached; an unknown ``kid`` (key rotation) triggers a refetch
at most every 30 seconds so forged kids cannot make us hammer Supabase.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

import aiohttp
import jwt
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from lf_contracts.errors import (
    AUTH_INVALID_TOKEN,
    AUTH_MISSING_TOKEN,
    AUTH_UNAUTHORIZED,
    ApiError,
)
from lf_web.keys import SETTINGS
from lf_web.settings import ServiceSettings

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256"})
VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 60.0
JWKS_REFETCH_SECONDS = 30.0
LEEWAY_SECONDS = 10

log = structlog.get_logger("lf_web.auth")


class UnknownKeyError(jwt.InvalidTokenError):
    """An asymmetric token whose ``kid`` is missing or not in the JWKS."""


# Most specific first: InvalidSignatureError is a DecodeError.
_FAILED_CHECKS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not valid yet"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (UnknownKeyError, "unknown signing key"),
    (jwt.exceptions.InvalidSubjectError, "sub is not a string"),
    (jwt.DecodeError, "malformed"),
    (ValueError, "sub is not a UUID"),
)


def failed_check(exc: Exception) -> str:
    """Which check refused a token, for the client: built from the exception's type (and the
    claim's name), never from the token, so nothing of it is echoed back."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing {exc.claim!r} claim"
    return next((why for kind, why in _FAILED_CHECKS if isinstance(exc, kind)), "malformed")


class JwtVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self._secret = settings.supabase_jwt_secret
        self._jwks_url = settings.supabase_jwks_url
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._fetch_lock = asyncio.Lock()
        # A client sends the same token with every request: verifying its signature again each time
        # is a fifth of a cheap request's CPU. A verified token is remembered for a minute at most
        # and never past its own expiry (checked on every use), so the cache changes no answer
        # except that a JWKS key withdrawn by Supabase stops verifying within that minute.
        self._verified: OrderedDict[str, tuple[UUID, float]] = OrderedDict()

    async def verify(self, token: str) -> UUID:
        """The lenser id (``sub``) of a valid token; ``auth.invalid_token`` for anything else."""
        remembered = self._verified.get(token)
        if remembered is not None and time.time() < remembered[1]:
            return remembered[0]
        lenser_id, expires = await self._verify_signed(token)
        self._verified[token] = (lenser_id, min(expires, time.time() + VERIFIED_CACHE_SECONDS))
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return lenser_id

    async def _verify_signed(self, token: str) -> tuple[UUID, float]:
        try:
            header = jwt.get_unverified_header(token)
            alg, key = await self._key_for(header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={
                    "require": ["exp", "aud", "sub", *(["iss"] if self._issuer else [])],
                    "strict_aud": True,
                },
            )
            return UUID(claims["sub"]), float(claims["exp"])
        except (jwt.PyJWTError, ValueError) as exc:  # ValueError: sub is not a UUID
            log.info("auth.token_refused", reason=type(exc).__name__)
            raise ApiError(AUTH_INVALID_TOKEN, f"Invalid token: {failed_check(exc)}") from None

    async def _key_for(self, header: dict[str, Any]) -> tuple[str, jwt.PyJWK | str]:
        alg = header.get("alg")
        # No secret (a JWKS-only deployment): HS256 is refused, never checked against a default.
        if alg == "HS256" and self._secret:
            return alg, self._secret
        if isinstance(alg, str) and alg in ASYMMETRIC_ALGORITHMS and self._jwks_url:
            return alg, await self._jwks_key(header.get("kid"))
        raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} is not allowed")

    async def _jwks_key(self, kid: Any) -> jwt.PyJWK:
        if not isinstance(kid, str):
            raise UnknownKeyError("asymmetric token without a kid")
        if kid not in self._keys and self._may_fetch():
            async with self._fetch_lock:
                if kid not in self._keys and self._may_fetch():  # another request may have fetched
                    await self._fetch_jwks()
        if kid not in self._keys:
            raise UnknownKeyError("unknown kid")
        return self._keys[kid]

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= JWKS_REFETCH_SECONDS

    async def _fetch_jwks(self) -> None:
        assert self._jwks_url is not None
        self._fetched_at = time.monotonic()  # before fetching: failures are throttled too
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.get(self._jwks_url, raise_for_status=True) as response,
            ):
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("auth.jwks_fetch_failed", url=self._jwks_url, error=type(exc).__name__)
            return
        self._keys = _asymmetric_keys(document)


def _asymmetric_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """The RS256/ES256 keys of a JWKS document by kid; anything else in it is ignored."""
    keys = {}
    for entry in document.get("keys", []) if isinstance(document, dict) else []:
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, TypeError, AttributeError):
            continue  # a key type or curve we do not use, or not a JWK at all
        if isinstance(entry.get("kid"), str) and key.algorithm_name in ASYMMETRIC_ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


JWT_VERIFIER = web.AppKey("jwt_verifier", JwtVerifier)
LENSER_ID = web.RequestKey("lenser_id", UUID)


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(AUTH_MISSING_TOKEN)
    return token.strip()


async def require_user(request: web.Request) -> UUID:
    """The calling lenser's id, verified once per request."""
    if LENSER_ID not in request:
        request[LENSER_ID] = await request.config_dict[JWT_VERIFIER].verify(bearer_token(request))
    return request[LENSER_ID]


@web.middleware
async def internal_key_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``/internal/*`` is for our own services: they present the platform key."""
    if request.path.startswith("/internal/"):
        expected = (request.config_dict[SETTINGS].platform_api_key or "").encode()
        presented = request.headers.get("X-Platform-Api-Key", "").encode(errors="replace")
        if not expected or not hmac.compare_digest(presented, expected):
            raise ApiError(AUTH_UNAUTHORIZED)
    return await handler(request)
