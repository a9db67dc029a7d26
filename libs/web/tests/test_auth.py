import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from freezegun import freeze_time
from structlog.testing import capture_logs

from lf_contracts.errors import ApiError
from lf_testing.tokens import DEV_JWT_SECRET, make_token
from lf_web import JwtVerifier, ServiceSettings

LENSER = "0b6c1f3e-5d2a-4f6b-9c8d-7e6f5a4b3c2d"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
DEV_SECRET = DEV_JWT_SECRET.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, payload: dict, hmac_key: bytes | None = None) -> str:
    """A token PyJWT would refuse to make: any header, HMAC over any key, or no signature."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest() if hmac_key else b""
    return f"{signing_input}.{_b64(signature)}"


def claims(**overrides: object) -> dict:
    now = int(time.time())
    return {"sub": LENSER, "aud": "authenticated", "iat": now, "exp": now + 600, **overrides}


async def refused(verifier: JwtVerifier, token: str) -> ApiError:
    with pytest.raises(ApiError) as refusal:
        await verifier.verify(token)
    return refusal.value


async def refused_code(verifier: JwtVerifier, token: str) -> str:
    return (await refused(verifier, token)).error.code


async def refused_message(verifier: JwtVerifier, token: str) -> str:
    """The message of an ``auth.invalid_token`` refusal (any other code fails the test)."""
    refusal = await refused(verifier, token)
    assert refusal.error.code == "auth.invalid_token"
    return refusal.message


@pytest.fixture
def hs256() -> JwtVerifier:
    return JwtVerifier(ServiceSettings())


async def test_valid_hs256_token_gives_the_lenser_id(hs256: JwtVerifier) -> None:
    assert str(await hs256.verify(make_token(LENSER))) == LENSER


@pytest.mark.parametrize(
    ("token", "reason", "check"),
    [
        pytest.param(make_token(LENSER, ttl=-60), "ExpiredSignatureError", "expired", id="expired"),
        pytest.param(
            make_token(LENSER, secret="x" * 40),
            "InvalidSignatureError",
            "bad signature",
            id="wrong-signature",
        ),
        pytest.param(
            forge({"alg": "none"}, claims()), "InvalidAlgorithmError", "algorithm not allowed", id="alg-none"
        ),
        pytest.param(
            forge({"alg": "HS512"}, claims(), DEV_SECRET),
            "InvalidAlgorithmError",
            "algorithm not allowed",
            id="alg-hs512",
        ),
        pytest.param(
            make_token(LENSER, aud="anon"), "InvalidAudienceError", "wrong audience", id="wrong-audience"
        ),
        pytest.param(
            make_token(LENSER, aud=["authenticated", "x"]),
            "InvalidAudienceError",
            "wrong audience",
            id="audience-list",
        ),
        pytest.param(make_token(None), "MissingRequiredClaimError", "missing 'sub' claim", id="missing-sub"),
        pytest.param(make_token("not-a-uuid"), "ValueError", "sub is not a UUID", id="non-uuid-sub"),
        pytest.param(
            jwt.encode({"sub": LENSER, "aud": "authenticated"}, DEV_SECRET),
            "MissingRequiredClaimError",
            "missing 'exp' claim",
            id="no-exp",
        ),
        pytest.param("not.a.jwt", "DecodeError", "malformed", id="garbage"),
        pytest.param(
            jwt.encode(claims(), RSA_KEY, algorithm="RS256"),
            "InvalidAlgorithmError",
            "algorithm not allowed",
            id="rs256-without-jwks",
        ),
    ],
)
async def test_bad_tokens_are_refused_as_invalid_token_for_the_right_reason(
    hs256: JwtVerifier, token: str, reason: str, check: str
) -> None:
    with capture_logs() as logs:
        message = await refused_message(hs256, token)

    assert logs[-1] == {"event": "auth.token_refused", "reason": reason, "log_level": "info"}
    assert message == f"Invalid token: {check}"


async def test_the_refusal_never_echoes_the_token(client: TestClient) -> None:
    token = make_token("not-a-uuid")

    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})

    body = await response.text()
    assert response.status == 401 and "Invalid token: sub is not a UUID" in body
    assert not any(part in body for part in token.split(".")) and "not-a-uuid" not in body


@dataclass
class FakeJwks:
    url: str
    fetches: int = 0


@pytest.fixture
async def jwks() -> AsyncIterator[FakeJwks]:
    """A JWKS endpoint on 127.0.0.1 in Supabase's wire format, counting fetches."""
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    document = {
        "keys": [
            {**rsa_jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"},
            {**ec_jwk, "kid": "ec-1", "alg": "ES256", "use": "sig"},
        ]
    }

    async def serve(request: web.Request) -> web.Response:
        fake.fetches += 1
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", serve)
    async with TestServer(app, host="127.0.0.1") as server:
        fake = FakeJwks(url=str(server.make_url("")))
        yield fake


@pytest.fixture
def jwks_verifier(jwks: FakeJwks) -> JwtVerifier:
    return JwtVerifier(ServiceSettings(supabase_url=jwks.url))


@pytest.mark.parametrize(("key", "alg", "kid"), [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1")])
async def test_asymmetric_token_is_verified_with_the_fetched_jwks(
    jwks_verifier: JwtVerifier, key: object, alg: str, kid: str
) -> None:
    token = jwt.encode(claims(), key, algorithm=alg, headers={"kid": kid})

    assert str(await jwks_verifier.verify(token)) == LENSER


async def test_hs256_token_signed_with_the_public_key_is_refused(jwks_verifier: JwtVerifier) -> None:
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = forge({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims(), public_pem)

    assert await refused_message(jwks_verifier, token) == "Invalid token: algorithm not allowed"


async def test_a_jwks_only_deployment_refuses_hs256_signed_with_the_dev_secret(
    jwks_verifier: JwtVerifier,
) -> None:
    # SUPABASE_URL alone: anyone holding the public dev secret could otherwise mint any sub.
    assert await refused_code(jwks_verifier, make_token(LENSER)) == "auth.invalid_token"


async def test_hs256_and_jwks_together_when_the_secret_is_set_explicitly(jwks: FakeJwks) -> None:
    secret = "s" * 40
    verifier = JwtVerifier(ServiceSettings(supabase_url=jwks.url, supabase_jwt_secret=secret))

    assert str(await verifier.verify(make_token(LENSER, secret=secret))) == LENSER
    assert await refused_code(verifier, make_token(LENSER)) == "auth.invalid_token"


async def test_header_alg_that_does_not_match_the_key_is_refused(jwks_verifier: JwtVerifier) -> None:
    token = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"})

    assert await refused_message(jwks_verifier, token) == "Invalid token: algorithm not allowed"


async def test_unknown_kid_refetches_the_jwks_at_most_every_30_seconds(
    jwks: FakeJwks, jwks_verifier: JwtVerifier
) -> None:
    await jwks_verifier.verify(jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}))
    for _ in range(5):
        rotated = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": f"new-{uuid.uuid4()}"})
        assert await refused_message(jwks_verifier, rotated) == "Invalid token: unknown signing key"

    assert jwks.fetches == 1


async def test_user_route_accepts_a_valid_bearer_token(client: TestClient) -> None:
    response = await client.get("/me", headers={"Authorization": f"Bearer {make_token(LENSER)}"})

    assert response.status == 200
    assert (await response.json())["data"] == {"lenserId": LENSER}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({}, "auth.missing_token", id="missing-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "auth.missing_token", id="basic-scheme"),
        pytest.param({"Authorization": "Bearer "}, "auth.missing_token", id="empty-bearer"),
        pytest.param(
            {"Authorization": f"Bearer {make_token(LENSER, ttl=-60)}"}, "auth.invalid_token", id="expired"
        ),
    ],
)
async def test_user_route_refuses_with_401(client: TestClient, headers: dict, code: str) -> None:
    response = await client.get("/me", headers=headers)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == code


@pytest.mark.parametrize(
    "headers",
    [pytest.param({}, id="missing"), pytest.param({"X-Platform-Api-Key": "guess"}, id="wrong")],
)
async def test_internal_route_without_the_right_platform_key_is_401_unauthorized(
    client: TestClient, headers: dict
) -> None:
    response = await client.get("/internal/ping", headers=headers)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "auth.unauthorized"


async def test_internal_route_with_the_platform_key_answers(client: TestClient) -> None:
    response = await client.get("/internal/ping", headers={"X-Platform-Api-Key": "dev-platform-api-key"})

    assert response.status == 200
    assert (await response.json())["data"] == "pong"


async def test_with_an_issuer_configured_a_token_from_another_issuer_or_none_is_refused() -> None:
    issuer = "https://project.supabase.co/auth/v1"
    verifier = JwtVerifier(ServiceSettings(jwt_issuer=issuer))

    assert str(await verifier.verify(make_token(LENSER, iss=issuer))) == LENSER
    assert (
        await refused_message(verifier, make_token(LENSER, iss="https://evil.example/auth/v1"))
        == "Invalid token: wrong issuer"
    )
    assert await refused_message(verifier, make_token(LENSER)) == "Invalid token: missing 'iss' claim"


async def test_an_asymmetric_token_without_a_kid_is_refused_as_an_unknown_key(
    jwks_verifier: JwtVerifier,
) -> None:
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256")

    assert await refused_message(jwks_verifier, token) == "Invalid token: unknown signing key"


async def test_a_token_not_valid_yet_is_refused_as_such(hs256: JwtVerifier) -> None:
    token = jwt.encode(claims(nbf=int(time.time()) + 600), DEV_SECRET)

    assert await refused_message(hs256, token) == "Invalid token: not valid yet"


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    verifier = JwtVerifier(ServiceSettings(env_mode="development"))
    token = make_token(LENSER, ttl=30)
    assert str(await verifier.verify(token)) == LENSER  # verified, and remembered

    with freeze_time(timedelta(seconds=30 + 60)):  # past its expiry and the leeway
        assert await refused_code(verifier, token) == "auth.invalid_token"
