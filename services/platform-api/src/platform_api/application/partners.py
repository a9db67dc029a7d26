"""Partner integrations' use cases: provision, balance, refresh-token, send-claim.

Each partner call happens between two commands, never inside a transaction (a slow partner holds
no lock and no connection). Provisioning is safe against a crash between the partner's answer and
our append, and against concurrent provisions, in three ways (docs: the service README):

1. the request is recorded first (``PartnerProvisionRequested``) with the lenser's id as
   ``source_user_id``, Chainabit's idempotency key; a retry sends the same ``source_user_id``;
2. concurrent provisions of one (lenser, partner) in this process share one partner call;
3. across replicas the partner answers the same account to both, and the second
   ``PartnerProvisioned`` is never recorded (the aggregate keeps the first).

Tokens are sealed (``lf_web.sealing``, purpose ``partner-token``, bound to the lenser, the partner
and which token it is) before they reach a command, and opened only to answer their owner.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import asyncpg

from lf_contracts.errors import PARTNER_BAD_RESPONSE, PARTNER_REFUSED, PARTNER_UNAVAILABLE, ApiError
from lf_eventstore import AggregateRepository, Command, CommandRunner, Decision, UseCases
from lf_web.sealing import MasterKeys, Sealed
from platform_api.adapters.chainabit import ChainabitClient, PartnerAccount, TokenBundle
from platform_api.application import partner_queries
from platform_api.domain.partner_errors import PartnerNotProvisioned, UnknownPartner
from platform_api.domain.provisioning import (
    Provisioning,
    ProvisioningState,
    ProvisionRequest,
    SealedText,
    SealedTokens,
)
from platform_api.projections import INLINE

PROVISIONINGS = AggregateRepository(Provisioning, "provisioning", snapshot_every=100)
TOKEN_PURPOSE = "partner-token"


def stream_key(lenser: UUID, partner: str) -> str:
    return f"{lenser}.{partner}"


class PartnerUseCases(UseCases):
    def __init__(
        self,
        pool: asyncpg.Pool,
        partners: Mapping[str, ChainabitClient],
        token_keys: MasterKeys | None,
        *,
        starter_credits: int,
        token_scopes: list[str],
        appended: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(CommandRunner(pool, INLINE, appended=appended))
        self.pool, self.partners, self._token_keys = pool, partners, token_keys
        self.starter_credits, self.token_scopes = starter_credits, token_scopes
        self._in_flight: dict[str, asyncio.Future[PartnerAccount]] = {}

    def partner(self, name: str) -> ChainabitClient:
        client = self.partners.get(name)
        if client is None:
            raise UnknownPartner()
        if self._token_keys is None:
            raise ApiError(
                PARTNER_UNAVAILABLE, "Partners are not configured (PARTNER_TOKEN_MASTER_KEY is unset)"
            )
        return client

    @property
    def token_keys(self) -> MasterKeys:
        assert self._token_keys is not None, "partner() refuses every call without keys"
        return self._token_keys

    # --- provision -----------------------------------------------------------------------------

    async def provision(
        self, caller: UUID, name: str, *, email: str, display_name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        client = self.partner(name)
        request = ProvisionRequest(
            email=email,
            display_name=display_name,
            source_user_id=str(caller),
            starter_credits=self.starter_credits,
            token_scopes=self.token_scopes,
        )

        def record_request(_: Decision, provisioning: Provisioning) -> ProvisioningState:
            return provisioning.request(caller, name, request).model_copy(deep=True)

        state = await self.commands.submit(
            Command(PROVISIONINGS, stream_key(caller, name), record_request, metadata)
        )
        if not state.provisioned:
            assert state.request is not None
            account = await self._call_once(stream_key(caller, name), client, state.request)
            tokens = self._seal(caller, name, account.tokens)

            def record_account(_: Decision, provisioning: Provisioning) -> ProvisioningState:
                return provisioning.complete(account.account_id, tokens)

            await self.commands.submit(
                Command(PROVISIONINGS, stream_key(caller, name), record_account, metadata)
            )
        return await self.record(caller, name)

    async def _call_once(
        self, key: str, client: ChainabitClient, request: ProvisionRequest
    ) -> PartnerAccount:
        """One partner call per (lenser, partner) at a time in this process: concurrent provisions
        wait for the same answer (and share its failure)."""
        running = self._in_flight.get(key)
        if running is None:
            running = asyncio.ensure_future(client.provision(**request.model_dump()))
            self._in_flight[key] = running
            running.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return await asyncio.shield(running)

    # --- the record and the other routes -------------------------------------------------------

    async def record(self, caller: UUID, name: str) -> dict[str, Any]:
        """The provisioning record as its owner sees it, with the current access token opened."""
        self.partner(name)
        row = await partner_queries.provisioning(self.pool, caller, name)
        if row is None or row["account_id"] is None:
            raise PartnerNotProvisioned()
        return self._answer(caller, name, row)

    async def balance(self, caller: UUID, name: str) -> dict[str, Any]:
        client = self.partner(name)
        row = await self._provisioned(caller, name)
        balance = await client.balance(row["account_id"])
        return {
            "partner": name,
            "provisionId": row["account_id"],
            "credits": balance.credits,
            "asOf": balance.as_of.isoformat() if balance.as_of else None,
        }

    async def refresh_token(self, caller: UUID, name: str, *, metadata: dict[str, Any]) -> dict[str, Any]:
        client = self.partner(name)
        row = await self._provisioned(caller, name)
        sealed_refresh = SealedTokens.model_validate(row["tokens"]).refresh_token
        if sealed_refresh is None:  # Chainabit's answers gave this account none: nothing to refresh with
            raise ApiError(PARTNER_BAD_RESPONSE, "Chainabit gave this account no refresh token")
        refresh = self.token_keys.open_bound(_sealed(sealed_refresh), (caller, name, "refresh_token"))
        try:
            bundle = await client.refresh_token(row["account_id"], refresh)
        except ApiError as refused:
            if not _stale_refresh_token(refused):
                raise
            # Our refresh token is no longer Chainabit's latest: a refresh whose answer we lost (a
            # crash, a timeout) or a concurrent one rotated it. A provision of the same source user
            # answers the account's current tokens: the lost bundle is recovered from there.
            bundle = (
                await self._call_once(stream_key(caller, name), client, await self._request(caller, name))
            ).tokens
        tokens = self._seal(caller, name, bundle)

        def record_tokens(_: Decision, provisioning: Provisioning) -> ProvisioningState:
            return provisioning.refresh(tokens)

        await self.commands.submit(Command(PROVISIONINGS, stream_key(caller, name), record_tokens, metadata))
        return await self.record(caller, name)

    async def send_claim(
        self, caller: UUID, name: str, *, email: str | None, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        client = self.partner(name)
        row = await self._provisioned(caller, name)
        claim = await client.send_claim(row["account_id"], email)

        def record_claim(_: Decision, provisioning: Provisioning) -> ProvisioningState:
            return provisioning.claim_sent(claim.claim_id, claim.sent_to)

        await self.commands.submit(Command(PROVISIONINGS, stream_key(caller, name), record_claim, metadata))
        return {
            "partner": name,
            "provisionId": row["account_id"],
            "claimId": claim.claim_id,
            "sentTo": claim.sent_to,
        }

    async def _request(self, caller: UUID, name: str) -> ProvisionRequest:
        """The provision request recorded for this record (read without a lock or a transaction)."""
        async with self.pool.acquire() as conn:
            provisioning = await PROVISIONINGS.load(conn, stream_key(caller, name), lock=False)
        if provisioning is None or provisioning.state.request is None:
            raise PartnerNotProvisioned()
        return provisioning.state.request

    async def _provisioned(self, caller: UUID, name: str) -> asyncpg.Record:
        row = await partner_queries.provisioning(self.pool, caller, name)
        if row is None or row["account_id"] is None:
            raise PartnerNotProvisioned()
        return row

    # --- sealing -------------------------------------------------------------------------------

    def _seal(self, caller: UUID, name: str, bundle: TokenBundle) -> SealedTokens:
        def seal(secret: str, which: str) -> SealedText:
            sealed = self.token_keys.seal_bound(secret, (caller, name, which))
            return SealedText(
                master_key_id=sealed.master_key_id,
                wrapped_data_key=_b64(sealed.wrapped_data_key),
                data_key_nonce=_b64(sealed.data_key_nonce),
                secret_nonce=_b64(sealed.secret_nonce),
                ciphertext=_b64(sealed.ciphertext),
            )

        return SealedTokens(
            access_token=seal(bundle.access_token, "access_token"),
            refresh_token=seal(bundle.refresh_token, "refresh_token") if bundle.refresh_token else None,
            expires_at=bundle.expires_at,
            scopes=bundle.scopes,
        )

    def _answer(self, caller: UUID, name: str, row: asyncpg.Record) -> dict[str, Any]:
        tokens = SealedTokens.model_validate(row["tokens"])
        access = self.token_keys.open_bound(_sealed(tokens.access_token), (caller, name, "access_token"))
        return {
            "partner": name,
            "status": "provisioned",
            "provisionId": row["account_id"],
            "sourceUserId": str(caller),
            "email": row["email"],
            "displayName": row["display_name"],
            "starterCredits": row["starter_credits"],
            "tokenScopes": tokens.scopes,
            "accessToken": access,
            "tokenExpiresAt": tokens.expires_at.isoformat() if tokens.expires_at else None,
            "provisionedAt": row["provisioned_at"].isoformat(),
            "tokensRefreshedAt": row["tokens_refreshed_at"].isoformat(),
            "claimsSent": row["claims_sent"],
        }


def _stale_refresh_token(refused: ApiError) -> bool:
    """Chainabit's 401 to a refresh: the refresh token it got is not the account's latest."""
    return refused.error is PARTNER_REFUSED and (refused.details or {}).get("partnerStatus") == 401


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _sealed(text: SealedText) -> Sealed:
    return Sealed(
        text.master_key_id,
        base64.b64decode(text.wrapped_data_key),
        base64.b64decode(text.data_key_nonce),
        base64.b64decode(text.secret_nonce),
        base64.b64decode(text.ciphertext),
    )
