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


def main(argv: list[str] | None = None) -> int:
    """``python -m lf_testing.tokens SUB``: print a dev token for lenser SUB (``make token``).

    Signed with ``SUPABASE_JWT_SECRET`` when set (the secret the services verify with), else with
    the development default they share.
    """
    import argparse
    import os
    import sys
    from uuid import UUID

    parser = argparse.ArgumentParser(prog="python -m lf_testing.tokens", description=main.__doc__)
    parser.add_argument("sub", help="the lenser id (a UUID), the token's sub claim")
    parser.add_argument(
        "--ttl", type=int, default=24 * 3600, help="seconds until it expires (default: a day)"
    )
    args = parser.parse_args(argv)
    try:
        sub = str(UUID(args.sub))
    except ValueError:
        parser.error(f"SUB must be a UUID, not {args.sub!r}")
    secret = os.environ.get("SUPABASE_JWT_SECRET") or DEV_JWT_SECRET
    sys.stdout.write(make_token(sub, secret=secret, ttl=args.ttl) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
