"""The L402 token's rules, purely: claimed once, claimable again only after a release or a lapsed
lease, answered once; its price held when first claimed, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lightning_jobs.domain.errors import L402TokenUsed
from lightning_jobs.domain.l402 import L402Answered, L402Paid, L402Token

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
TOKEN = uuid4()


def claimed(token: L402Token, now: datetime = NOW) -> int:
    return token.claim(TOKEN, "h" * 64, 110, 10, now, LEASE)


def test_a_token_is_claimed_once_while_its_lease_holds_and_again_after_it_lapses():
    token = L402Token()
    assert claimed(token) == 1
    with pytest.raises(L402TokenUsed):
        claimed(token, NOW + LEASE / 2)
    assert claimed(token, NOW + LEASE) == 2
    assert [type(event) for event in token.pending()].count(L402Paid) == 1  # the price held once


def test_a_released_token_is_claimable_again_and_an_answered_one_never():
    token = L402Token()
    attempt = claimed(token)
    token.release(attempt, "the AI failed")
    attempt = claimed(token)
    assert token.answered("complete", "a haiku")
    assert not token.answered("complete", "a late report")  # a lapsed claimant's: changes nothing
    token.release(attempt, "too late")  # changes nothing either
    with pytest.raises(L402TokenUsed):
        claimed(token, NOW + 10 * LEASE)
    (answered,) = [event for event in token.pending() if isinstance(event, L402Answered)]
    assert (answered.amount_sats, answered.eval_fee_sats) == (110, 10)
