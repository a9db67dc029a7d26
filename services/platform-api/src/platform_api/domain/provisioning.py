"""A lenser's provisioning with one partner: one record per (lenser, partner), kept as events
(stream ``provisioning-<lenser id>.<partner>``).

Why two steps around the partner's call: no transaction may wait on the partner, and a crash
between its answer and our append must lose nothing and never make a second partner account. So
provisioning first records ``PartnerProvisionRequested`` (what will be sent, with the lenser's id as
``source_user_id``: the partner's idempotency key), commits, calls the partner outside any
transaction, then records ``PartnerProvisioned``. A crash in between leaves the request recorded:
the next provision re-sends the very same request, and the partner answers with the account it
already made (Chainabit is idempotent on ``source_user_id``). Once provisioned, provisioning again
records nothing and answers the record.

Tokens arrive here already sealed (``SealedText``, lf_web.sealing): the domain never holds a token in
clear, and neither does any event or read model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self
from uuid import UUID

from pydantic import BaseModel

from lf_eventstore import Aggregate, DomainEvent, by_name
from platform_api.domain.partner_errors import PartnerNotProvisioned


class SealedText(BaseModel):
    """A secret as stored: ``lf_web.sealing.Sealed``'s parts, base64."""

    master_key_id: str
    wrapped_data_key: str
    data_key_nonce: str
    secret_nonce: str
    ciphertext: str


class SealedTokens(BaseModel):
    access_token: SealedText
    refresh_token: SealedText | None
    expires_at: datetime | None
    scopes: list[str]


class ProvisionRequest(BaseModel):
    """What is sent to the partner, recorded before it is: a retry sends it again unchanged."""

    email: str
    display_name: str
    source_user_id: str
    starter_credits: int
    token_scopes: list[str]


class PartnerProvisionRequested(DomainEvent):
    lenser_id: UUID
    partner: str
    request: ProvisionRequest


class PartnerProvisioned(DomainEvent):
    lenser_id: UUID
    partner: str
    account_id: str
    tokens: SealedTokens


class PartnerTokensRefreshed(DomainEvent):
    lenser_id: UUID
    partner: str
    tokens: SealedTokens


class PartnerClaimSent(DomainEvent):
    lenser_id: UUID
    partner: str
    claim_id: str
    sent_to: str


class ProvisioningState(BaseModel):
    """The record as the aggregate holds it (and snapshots it)."""

    lenser_id: UUID | None = None
    partner: str | None = None
    request: ProvisionRequest | None = None
    account_id: str | None = None
    tokens: SealedTokens | None = None
    claims_sent: int = 0

    @property
    def provisioned(self) -> bool:
        return self.account_id is not None


class Provisioning(Aggregate):
    event_types = by_name(
        PartnerProvisionRequested, PartnerProvisioned, PartnerTokensRefreshed, PartnerClaimSent
    )

    def __init__(self) -> None:
        super().__init__()
        self.state = ProvisioningState()

    def request(self, lenser_id: UUID, partner: str, request: ProvisionRequest) -> ProvisioningState:
        """Record the request the partner is about to get, unless provisioned already (then the
        record stands, and nothing is sent). A request recorded before but never answered is
        replaced when this one differs (e.g. the partner refused its email): the ``source_user_id``
        is the lenser's id in every one, so the partner still makes at most one account."""
        if not self.state.provisioned and self.state.request != request:
            self._record(PartnerProvisionRequested(lenser_id=lenser_id, partner=partner, request=request))
        return self.state

    def complete(self, account_id: str, tokens: SealedTokens) -> ProvisioningState:
        """The partner's answer. Already provisioned (another replica's call landed first, with the
        same account, since the partner is idempotent on ``source_user_id``): the record stands."""
        if self.state.request is None:
            raise PartnerNotProvisioned()
        if not self.state.provisioned:
            assert self.state.lenser_id is not None and self.state.partner is not None
            self._record(
                PartnerProvisioned(
                    lenser_id=self.state.lenser_id,
                    partner=self.state.partner,
                    account_id=account_id,
                    tokens=tokens,
                )
            )
        return self.state

    def refresh(self, tokens: SealedTokens) -> ProvisioningState:
        lenser_id, partner = self._provisioned()
        self._record(PartnerTokensRefreshed(lenser_id=lenser_id, partner=partner, tokens=tokens))
        return self.state

    def claim_sent(self, claim_id: str, sent_to: str) -> ProvisioningState:
        lenser_id, partner = self._provisioned()
        self._record(
            PartnerClaimSent(lenser_id=lenser_id, partner=partner, claim_id=claim_id, sent_to=sent_to)
        )
        return self.state

    def _provisioned(self) -> tuple[UUID, str]:
        if not self.state.provisioned:
            raise PartnerNotProvisioned()
        assert self.state.lenser_id is not None and self.state.partner is not None
        return self.state.lenser_id, self.state.partner

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case PartnerProvisionRequested():
                self.state.lenser_id, self.state.partner = event.lenser_id, event.partner
                self.state.request = event.request
            case PartnerProvisioned():
                self.state.account_id, self.state.tokens = event.account_id, event.tokens
            case PartnerTokensRefreshed():
                self.state.tokens = event.tokens
            case PartnerClaimSent():
                self.state.claims_sent += 1

    def to_snapshot(self) -> dict[str, Any]:
        return self.state.model_dump(mode="json")

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Self:
        provisioning = cls()
        provisioning.state = ProvisioningState.model_validate(data)
        return provisioning
