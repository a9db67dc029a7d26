"""Session macaroons: bound to one session, good until their expiry caveat, refused when tampered;
and the root key they are signed with has no usable default outside development."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pymacaroons import Macaroon

from lightning_jobs.adapters.macaroons import SessionMacaroons
from lightning_jobs.domain.errors import InvalidMacaroon
from lightning_jobs.settings import DEV_MACAROON_ROOT_KEY, LightningSettings

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MACAROONS = SessionMacaroons("k" * 40, timedelta(hours=24))


def test_a_macaroon_is_good_for_its_own_session_until_it_expires():
    session = uuid4()
    macaroon = MACAROONS.mint(session, NOW)
    MACAROONS.verify(macaroon, session, NOW + timedelta(hours=23))
    with pytest.raises(InvalidMacaroon):
        MACAROONS.verify(macaroon, session, NOW + timedelta(hours=24))


def test_a_macaroon_of_another_session_is_refused():
    with pytest.raises(InvalidMacaroon):
        MACAROONS.verify(MACAROONS.mint(uuid4(), NOW), uuid4(), NOW)


def test_a_tampered_macaroon_is_refused():
    session, other = uuid4(), uuid4()
    original = Macaroon.deserialize(MACAROONS.mint(other, NOW))
    # The same signature over caveats naming another session, or a later expiry: both forged.
    forged = Macaroon(location=original.location, identifier=original.identifier, key="guess")
    forged.add_first_party_caveat(f"session_id = {session}")
    forged.add_first_party_caveat(f"expires = {(NOW + timedelta(days=9)).isoformat()}")
    for bad in (forged.serialize(), MACAROONS.mint(session, NOW)[:-3] + "AAA", "not-a-macaroon", "", None):
        with pytest.raises(InvalidMacaroon):
            MACAROONS.verify(bad, session, NOW)


def test_a_macaroon_with_an_added_caveat_it_cannot_meet_is_refused():
    session = uuid4()
    macaroon = Macaroon.deserialize(MACAROONS.mint(session, NOW))
    macaroon.add_first_party_caveat("admin = true")  # an attenuation the verifier knows nothing of
    with pytest.raises(InvalidMacaroon):
        MACAROONS.verify(macaroon.serialize(), session, NOW)


def test_a_macaroon_signed_with_another_root_key_is_refused():
    session = uuid4()
    with pytest.raises(InvalidMacaroon):
        MACAROONS.verify(SessionMacaroons("x" * 40, timedelta(hours=1)).mint(session, NOW), session, NOW)


def test_the_root_key_has_a_dev_default_only_in_development_and_production_refuses_without_one():
    assert LightningSettings(env_mode="development").macaroon_root_key == DEV_MACAROON_ROOT_KEY
    with pytest.raises(ValueError, match="MACAROON_ROOT_KEY is missing"):
        LightningSettings(env_mode="production", platform_api_key="p" * 40)
    with pytest.raises(ValueError, match="MACAROON_ROOT_KEY"):
        LightningSettings(
            env_mode="production", platform_api_key="p" * 40, macaroon_root_key=DEV_MACAROON_ROOT_KEY
        )
    assert LightningSettings(env_mode="production", platform_api_key="p" * 40, macaroon_root_key="m" * 40)
