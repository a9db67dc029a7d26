"""Dev and test JWTs shaped like Supabase's: HS256 with the project secret, aud=authenticated."""

from __future__ import annotations

import time
from typing import Any

import jwt

DEV_JWT_SECRET = "dev-supabase-jwt-secret-change-me-0123456789"


def make_token(sub: str | None, *, secret: str = DEV_JWT_SECRET, ttl: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl,
        **claims,
    }
    if sub is not None:
        payload["sub"] = sub
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(sub: object, **claims: Any) -> dict[str, str]:
    """An Authorization header carrying a dev token for ``sub``."""
    return {"Authorization": f"Bearer {make_token(str(sub), **claims)}"}
