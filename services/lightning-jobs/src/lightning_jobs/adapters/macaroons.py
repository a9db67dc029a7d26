"""Session macaroons and L402 macaroons (pymacaroons). Session macaroons: minted under
``MACAROON_ROOT_KEY``, bound to one session by a ``session_id = <id>`` caveat and good until an
``expires = <ISO time>`` caveat. Verification checks the signature (a tampered caveat breaks it),
that the session is this one (a macaroon of another session is refused) and that it has not
expired; any failure is ``InvalidMacaroon`` (401). L402 macaroons: ``L402Macaroons``."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from pymacaroons import Macaroon, Verifier
from pymacaroons.exceptions import MacaroonException

from lightning_jobs.domain.errors import InvalidL402Token, InvalidMacaroon

LOCATION = "lightning-jobs"
SESSION = "session_id = "
EXPIRES = "expires = "


class SessionMacaroons:
    def __init__(self, root_key: str, ttl: timedelta) -> None:
        self.root_key, self.ttl = root_key, ttl

    def mint(self, session_id: UUID, now: datetime) -> str:
        macaroon = Macaroon(location=LOCATION, identifier=f"session-{session_id}", key=self.root_key)
        macaroon.add_first_party_caveat(f"{SESSION}{session_id}")
        macaroon.add_first_party_caveat(f"{EXPIRES}{(now + self.ttl).isoformat()}")
        return macaroon.serialize()

    def verify(
        self, serialized: str | None, session_id: UUID, now: datetime, *, check_expiry: bool = True
    ) -> None:
        """``check_expiry=False``: for claiming an expired session's owed balance, with the last
        macaroon it handed out (which has usually expired with it); still this session's, unforged."""
        if not serialized:
            raise InvalidMacaroon()

        def not_expired(caveat: str) -> bool:
            if not caveat.startswith(EXPIRES):
                return False
            try:
                expires = datetime.fromisoformat(caveat.removeprefix(EXPIRES))
                return not check_expiry or now < expires
            except ValueError:
                return False

        verifier = Verifier()
        verifier.satisfy_exact(f"{SESSION}{session_id}")
        verifier.satisfy_general(not_expired)
        try:
            macaroon = Macaroon.deserialize(serialized)
            if not any(c.caveat_id.startswith(EXPIRES) for c in macaroon.first_party_caveats()):
                raise InvalidMacaroon()  # one with no expiry would be good for ever
            verifier.verify(macaroon, self.root_key)
        except InvalidMacaroon:
            raise
        except MacaroonException as bad:  # a bad signature, an unmet caveat
            raise InvalidMacaroon() from bad
        except Exception as bad:  # garbage: pymacaroons' decoders raise assorted errors on it
            raise InvalidMacaroon() from bad


# --- L402 ---------------------------------------------------------------------------------------

L402_CAVEATS = ("token_id", "payment_hash", "request_sha256", "amount_sats", "work_model", "work_provider")


@dataclass(frozen=True)
class L402Offer:
    """What an L402 macaroon commits to (each a first-party caveat ``<name> = <value>``)."""

    token_id: UUID
    payment_hash: str
    request_sha256: str
    """The request it was priced for: the token buys an answer to that request, no other."""
    amount_sats: int
    work_model: str
    work_provider: str
    expires_at: datetime | None = None
    """The offer's expiry (its ``expires`` caveat, set by ``verify``; ``mint`` sets it from its TTL)."""

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class L402Macaroons:
    """L402 macaroons (pymacaroons), signed with a key derived from ``MACAROON_ROOT_KEY`` for L402
    alone (HMAC-SHA256 of it with ``"l402"``: a session macaroon never verifies as an L402 one, nor
    the reverse). Caveats: the offer (``L402_CAVEATS``) and ``expires``; a macaroon with any other
    caveat (an attenuation we do not know), or missing one, is refused."""

    def __init__(self, root_key: str, ttl: timedelta) -> None:
        self.key = hmac.new(root_key.encode(), b"l402", hashlib.sha256).hexdigest()
        self.ttl = ttl

    def mint(self, offer: L402Offer, now: datetime) -> str:
        macaroon = Macaroon(location=LOCATION, identifier=f"l402-{offer.token_id}", key=self.key)
        for name in L402_CAVEATS:
            macaroon.add_first_party_caveat(f"{name} = {getattr(offer, name)}")
        macaroon.add_first_party_caveat(f"{EXPIRES}{(now + self.ttl).isoformat()}")
        return macaroon.serialize()

    def verify(self, serialized: str, now: datetime, *, check_expiry: bool = True) -> L402Offer:
        """The offer the macaroon commits to; ``InvalidL402Token`` when it is not ours, tampered,
        expired or not an L402 macaroon. ``check_expiry=False``: expired is no reason (the offer's
        ``expires_at`` says whether it is): the expiry bounds the offer, not a paid token."""
        seen: dict[str, str] = {}

        def known(caveat: str) -> bool:
            name, separator, value = caveat.partition(" = ")
            if not separator or name in seen:
                return False
            if name == "expires":
                try:
                    if check_expiry and not now < datetime.fromisoformat(value):
                        return False
                except ValueError:
                    return False
            elif name not in L402_CAVEATS:
                return False
            seen[name] = value
            return True

        verifier = Verifier()
        verifier.satisfy_general(known)
        try:
            verifier.verify(Macaroon.deserialize(serialized), self.key)
            if set(seen) != {*L402_CAVEATS, "expires"}:
                raise InvalidL402Token("Invalid L402 token")
            return L402Offer(
                token_id=UUID(seen["token_id"]),
                payment_hash=seen["payment_hash"],
                request_sha256=seen["request_sha256"],
                amount_sats=int(seen["amount_sats"]),
                work_model=seen["work_model"],
                work_provider=seen["work_provider"],
                expires_at=datetime.fromisoformat(seen["expires"]),
            )
        except InvalidL402Token:
            raise
        except Exception as bad:  # a bad signature, an unmet caveat, garbage: all the same to a client
            raise InvalidL402Token("Invalid L402 token") from bad
