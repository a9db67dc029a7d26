"""LemonSqueezy's delivery signature: ``X-Signature`` is the hex HMAC-SHA256 of the raw body, keyed
with the webhook's signing secret. Checked on the bytes as received, before anything parses them:
re-serialising the same JSON differently is a different body, and fails."""

from __future__ import annotations

import hashlib
import hmac
import re

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    """Constant-time; a missing, malformed or mismatching signature, or no secret at all, fails."""
    if not secret or signature is None or not _HEX_SHA256.fullmatch(signature):
        return False
    return hmac.compare_digest(sign(body, secret), signature.lower())
