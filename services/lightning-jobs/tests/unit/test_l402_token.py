"""The L402 token's rules, purely: claimed once, claimable again only after a release or a lapsed
lease, answered once; its price held when first claimed, never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from lightning_jobs.domain.errors import L402TokenUsed
from lightning_jobs.domain.l402 import L402Answer, L402Answered, L402Paid, L402Token

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
TOKEN = uuid4()


def claimed(token: L402Token, now: datetime = NOW) -> int:
    return token.claim(TOKEN, "h" * 64, 110, 10, now, LEASE).attempt


def references(token: L402Token, now: datetime = NOW) -> tuple[str, str]:
    claim = token.claim(TOKEN, "h" * 64, 110, 10, now, LEASE)
    return claim.reference_id("eval"), claim.reference_id("work")


def test_a_token_is_claimed_once_while_its_lease_holds_and_again_after_it_lapses():
    token = L402Token()
    assert claimed(token) == 1
    with pytest.raises(L402TokenUsed):
        claimed(token, NOW + LEASE / 2)
    assert claimed(token, NOW + LEASE) == 2
    assert [type(event) for event in token.pending()].count(L402Paid) == 1  # the price held once


def test_a_released_token_is_claimable_again_and_an_answered_one_is_answered_its_recorded_answer():
    token = L402Token()
    attempt = claimed(token)
    token.release(attempt, "the AI failed")
    attempt = claimed(token)
    assert token.answered("complete", "a haiku")
    assert not token.answered("complete", "a late report")  # a lapsed claimant's: changes nothing
    token.release(attempt, "too late")  # changes nothing either
    recorded = len(token.pending())
    again = token.claim(TOKEN, "h" * 64, 110, 10, NOW + 10 * LEASE, LEASE)
    assert again == L402Answer("complete", "a haiku", 110)
    assert len(token.pending()) == recorded  # answered again, nothing claimed nor held
    (answered,) = [event for event in token.pending() if isinstance(event, L402Answered)]
    assert (answered.amount_sats, answered.eval_fee_sats) == (110, 10)
    restored = L402Token.from_snapshot(token.to_snapshot())
    assert restored.claim(TOKEN, "h" * 64, 110, 10, NOW, LEASE) == again


def test_a_claim_after_a_recorded_failure_asks_that_step_anew_and_one_after_a_lapse_or_outage_does_not():
    token = L402Token()
    base = f"lightning:l402:{TOKEN}"
    assert references(token) == (f"{base}:eval", f"{base}:work")
    token.release(1, "execution-proxy answered 502", "work")  # the evaluation was recorded: kept
    assert references(token) == (f"{base}:eval", f"{base}:work:2")
    token.release(2, "execution-proxy unreachable")  # nothing known to have failed
    assert references(token) == (f"{base}:eval", f"{base}:work:2")
    assert references(token, NOW + LEASE) == (f"{base}:eval", f"{base}:work:2")  # a lapsed claim's


def test_a_token_claimed_before_executions_were_counted_asks_under_its_first_references():
    token = L402Token()
    claimed(token)
    snapshot = token.to_snapshot()
    del snapshot["executions"], snapshot["failed_step"]
    restored = L402Token.from_snapshot(snapshot)
    restored.release(1, "the AI failed")
    assert references(restored) == (f"lightning:l402:{TOKEN}:eval", f"lightning:l402:{TOKEN}:work")
