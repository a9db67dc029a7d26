"""Session macaroons (pymacaroons): minted under ``MACAROON_ROOT_KEY``, bound to one session by a
``session_id = <id>`` caveat and good until an ``expires = <ISO time>`` caveat. Verification checks
the signature (a tampered caveat breaks it), that the session is this one (a macaroon of another
session is refused) and that it has not expired; any failure is ``InvalidMacaroon`` (401)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pymacaroons import Macaroon, Verifier
from pymacaroons.exceptions import MacaroonException

from lightning_jobs.domain.errors import InvalidMacaroon

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
