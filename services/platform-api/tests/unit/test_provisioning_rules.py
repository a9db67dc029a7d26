"""The Provisioning aggregate's rules, pure: one request and one account per record, whatever the
retries; nothing about tokens before there is an account."""

from __future__ import annotations

from uuid import uuid4

import pytest

from platform_api.domain.partner_errors import PartnerNotProvisioned
from platform_api.domain.provisioning import Provisioning, ProvisionRequest, SealedText, SealedTokens

LENSER = uuid4()
REQUEST = ProvisionRequest(
    email="ada@example.com",
    display_name="Ada",
    source_user_id=str(LENSER),
    starter_credits=0,
    token_scopes=[],
)
SEALED = SealedText(
    master_key_id="k", wrapped_data_key="w", data_key_nonce="n", secret_nonce="s", ciphertext="c"
)
TOKENS = SealedTokens(access_token=SEALED, refresh_token=None, expires_at=None, scopes=[])


def recorded(provisioning: Provisioning) -> list[str]:
    return [event.type_name() for event in provisioning.pending()]


def test_the_same_request_is_recorded_once_and_an_account_once() -> None:
    provisioning = Provisioning()
    provisioning.request(LENSER, "chainabit", REQUEST)
    provisioning.request(LENSER, "chainabit", REQUEST)
    provisioning.complete("prov_1", TOKENS)
    provisioning.complete("prov_2", TOKENS)  # a second replica's answer: the record stands
    provisioning.request(LENSER, "chainabit", REQUEST.model_copy(update={"email": "new@example.com"}))

    assert recorded(provisioning) == ["PartnerProvisionRequested", "PartnerProvisioned"]
    assert provisioning.state.account_id == "prov_1"


def test_an_unanswered_request_is_replaced_by_one_with_other_details_and_the_same_source_user() -> None:
    provisioning = Provisioning()
    provisioning.request(LENSER, "chainabit", REQUEST)
    state = provisioning.request(LENSER, "chainabit", REQUEST.model_copy(update={"email": "new@example.com"}))

    assert recorded(provisioning) == ["PartnerProvisionRequested", "PartnerProvisionRequested"]
    assert state.request is not None and state.request.source_user_id == str(LENSER)


def test_nothing_but_a_request_comes_before_an_account() -> None:
    provisioning = Provisioning()
    with pytest.raises(PartnerNotProvisioned):
        provisioning.complete("prov_1", TOKENS)
    provisioning.request(LENSER, "chainabit", REQUEST)
    with pytest.raises(PartnerNotProvisioned):
        provisioning.refresh(TOKENS)
    with pytest.raises(PartnerNotProvisioned):
        provisioning.claim_sent("claim_1", "ada@example.com")


def test_a_snapshot_restores_the_record() -> None:
    provisioning = Provisioning()
    provisioning.request(LENSER, "chainabit", REQUEST)
    provisioning.complete("prov_1", TOKENS)
    provisioning.claim_sent("claim_1", "ada@example.com")

    restored = Provisioning.from_snapshot(provisioning.to_snapshot())

    assert restored.state == provisioning.state
