"""The partner routes over HTTP against a fake Chainabit (real HTTP on 127.0.0.1): every route, one
provisioning record (and one Chainabit account) per lenser and partner whatever the concurrency or
a lost answer, Chainabit's failures mapped to partner.* codes, and no token in clear at rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from lf_testing.fakes.chainabit import FakeChainabit
from lf_testing.processes import operator_command
from lf_testing.tokens import bearer
from platform_api.app import create_app
from platform_api.settings import PlatformSettings

EMAIL = "ada@example.com"
ROUTES = (
    ("post", "provision", {"email": EMAIL}),
    ("get", "balance", None),
    ("post", "refresh-token", {}),
    ("post", "send-claim", {}),
)


@pytest.fixture
async def chainabit() -> AsyncIterator[FakeChainabit]:
    fake = await FakeChainabit(api_key="test-chainabit-key-0123456789abcdef").start()
    yield fake
    await fake.close()


def with_chainabit(settings: PlatformSettings, fake: FakeChainabit, **changes: Any) -> PlatformSettings:
    return settings.model_copy(
        update={
            "chainabit_api_url": fake.url,
            "chainabit_partner_api_key": fake.api_key,
            "chainabit_timeout_seconds": 2.0,
            "chainabit_starter_credits": 250,
            **changes,
        }
    )


@pytest.fixture
async def partner_api(settings: PlatformSettings, chainabit: FakeChainabit) -> AsyncIterator[TestClient]:
    async with TestClient(
        TestServer(create_app(with_chainabit(settings, chainabit), background=False))
    ) as client:
        yield client


class Partners:
    def __init__(self, api: TestClient) -> None:
        self.api = api

    async def call(self, lenser: UUID, route: str, body: Any = None, *, partner: str = "chainabit"):
        path = f"/v1/partners/{partner}/{route}"
        if route == "balance":
            return await self.api.get(path, headers=bearer(lenser))
        return await self.api.post(path, json=body if body is not None else {}, headers=bearer(lenser))

    async def ok(self, lenser: UUID, route: str, body: Any = None) -> dict[str, Any]:
        response = await self.call(lenser, route, body)
        assert response.status == 200, await response.text()
        return (await response.json())["data"]

    async def provisioned(self, lenser: UUID) -> dict[str, Any]:
        return await self.ok(lenser, "provision", {"email": EMAIL, "displayName": "Ada"})


@pytest.fixture
def partners(partner_api: TestClient) -> Partners:
    return Partners(partner_api)


async def refusal(response) -> tuple[int, str]:
    return response.status, (await response.json())["error"]["code"]


def provision_calls(fake: FakeChainabit) -> list[Any]:
    return [call for call in fake.requests if call.path == "/partner/provisions"]


async def stored_events(db: asyncpg.Pool, lenser: UUID) -> list[str]:
    rows = await db.fetch(
        "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"provisioning-{lenser}.chainabit"
    )
    return [row["type"] for row in rows]


# --- provision -------------------------------------------------------------------------------


async def test_provision_sends_chainabit_the_reference_body_with_the_api_key_and_answers_the_record(
    partners, chainabit, lenser
):
    record = await partners.provisioned(lenser)

    [call] = provision_calls(chainabit)
    assert call.headers["Authorization"] == f"ApiKey {chainabit.api_key}"
    assert call.body == {
        "email": EMAIL,
        "display_name": "Ada",
        "source_user_id": str(lenser),
        "starter_credits": 250,
        "token_scopes": ["balance:read", "claims:write"],
    }
    account = chainabit.accounts[record["provisionId"]]
    assert record["accessToken"] == account.access_token
    assert (record["partner"], record["status"], record["sourceUserId"]) == (
        "chainabit",
        "provisioned",
        str(lenser),
    )
    assert (record["email"], record["displayName"], record["starterCredits"]) == (EMAIL, "Ada", 250)
    assert record["tokenScopes"] == ["balance:read", "claims:write"] and record["tokenExpiresAt"]


async def test_provisioning_twice_answers_the_same_record_without_calling_chainabit_again(
    partners, chainabit, db, lenser
):
    first = await partners.provisioned(lenser)
    again = await partners.ok(lenser, "provision", {"email": "other@example.com"})

    assert again == first
    assert len(provision_calls(chainabit)) == 1 and len(chainabit.accounts) == 1
    assert await stored_events(db, lenser) == ["PartnerProvisionRequested", "PartnerProvisioned"]


async def test_concurrent_provisions_on_two_replicas_make_one_chainabit_account_and_one_record(
    partners, settings, chainabit, db, lenser
):
    async with TestClient(
        TestServer(create_app(with_chainabit(settings, chainabit), background=False))
    ) as other:
        replicas = [partners, Partners(other)]
        answers = await asyncio.gather(*(replicas[n % 2].provisioned(lenser) for n in range(12)))

    assert len(chainabit.accounts) == 1
    assert {answer["provisionId"] for answer in answers} == set(chainabit.accounts)
    assert (await stored_events(db, lenser)).count("PartnerProvisioned") == 1


async def test_an_answer_lost_after_chainabit_provisioned_is_recovered_by_the_next_provision(
    partners, chainabit, db, lenser
):
    chainabit.lose_next_answers(1)  # Chainabit makes the account; its answer never arrives
    lost = await partners.call(lenser, "provision", {"email": EMAIL})
    assert await refusal(lost) == (503, "partner.unavailable")
    assert len(chainabit.accounts) == 1
    assert await stored_events(db, lenser) == ["PartnerProvisionRequested"]

    record = await partners.provisioned(lenser)

    assert len(chainabit.accounts) == 1 and record["provisionId"] in chainabit.accounts
    assert {call.body["source_user_id"] for call in provision_calls(chainabit)} == {str(lenser)}
    assert (await stored_events(db, lenser))[-1] == "PartnerProvisioned"


async def test_each_lenser_gets_their_own_account(partners, chainabit, lenser, other_lenser):
    mine, theirs = await partners.provisioned(lenser), await partners.provisioned(other_lenser)
    assert mine["provisionId"] != theirs["provisionId"] and len(chainabit.accounts) == 2


# --- balance, refresh-token, send-claim ------------------------------------------------------


async def test_balance_is_chainabit_s_for_the_lenser_s_account(partners, chainabit, lenser):
    record = await partners.provisioned(lenser)
    chainabit.accounts[record["provisionId"]].credits = 1234

    balance = await partners.ok(lenser, "balance")

    assert (balance["partner"], balance["provisionId"], balance["credits"]) == (
        "chainabit",
        record["provisionId"],
        1234,
    )
    assert chainabit.requests[-1].path == f"/partner/provisions/{record['provisionId']}/balance"


async def test_refresh_token_sends_the_stored_refresh_token_and_keeps_the_new_bundle(
    partners, chainabit, lenser
):
    record = await partners.provisioned(lenser)

    refreshed = await partners.ok(lenser, "refresh-token", {})
    # Chainabit refuses a refresh token that is not the latest: a second refresh passes only if
    # the first one's new refresh token was stored (sealed) and opened again.
    again = await partners.ok(lenser, "refresh-token", {})

    account = chainabit.accounts[record["provisionId"]]
    assert len({record["accessToken"], refreshed["accessToken"], again["accessToken"]}) == 3
    assert again["accessToken"] == account.access_token
    assert again["provisionId"] == record["provisionId"]


async def test_a_refresh_whose_answer_was_lost_is_recovered_by_the_next_refresh(partners, chainabit, lenser):
    record = await partners.provisioned(lenser)
    chainabit.lose_next_answers(1)  # Chainabit rotates the tokens; its answer never arrives
    assert await refusal(await partners.call(lenser, "refresh-token", {})) == (503, "partner.unavailable")

    # Our refresh token is now stale (Chainabit refuses it): the account's current tokens are
    # recovered through a provision of the same source user, and kept.
    recovered = await partners.ok(lenser, "refresh-token", {})
    again = await partners.ok(lenser, "refresh-token", {})

    account = chainabit.accounts[record["provisionId"]]
    assert again["accessToken"] == account.access_token != recovered["accessToken"]
    assert len(chainabit.accounts) == 1


async def test_send_claim_forwards_the_email_and_answers_the_claim(partners, chainabit, db, lenser):
    record = await partners.provisioned(lenser)

    claim = await partners.ok(lenser, "send-claim", {"email": "ada@claims.example.com"})
    default = await partners.ok(lenser, "send-claim", {})

    assert (claim["provisionId"], claim["sentTo"]) == (record["provisionId"], "ada@claims.example.com")
    assert default["sentTo"] == EMAIL
    assert chainabit.accounts[record["provisionId"]].claims == [claim["claimId"], default["claimId"]]
    assert (await partners.provisioned(lenser))["claimsSent"] == 2
    assert (await stored_events(db, lenser))[-2:] == ["PartnerClaimSent", "PartnerClaimSent"]


@pytest.mark.parametrize(("method", "route", "body"), ROUTES[1:])
async def test_routes_before_provisioning_are_not_provisioned(
    partners, chainabit, lenser, method, route, body
):
    response = await partners.call(lenser, route, body)
    assert await refusal(response) == (404, "partner.not_provisioned")
    assert chainabit.requests == []


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
async def test_an_unknown_partner_is_not_found(partners, chainabit, lenser, method, route, body):
    response = await partners.call(lenser, route, body, partner="coinbarn")
    assert await refusal(response) == (404, "partner.not_found")
    assert chainabit.requests == []


async def test_bodies_are_validated_and_tokens_required(partners, partner_api, lenser):
    assert await refusal(await partners.call(lenser, "provision", {"email": "not-an-address"})) == (
        400,
        "validation_error",
    )
    assert await refusal(
        await partners.call(lenser, "provision", {"email": EMAIL, "starterCredits": 10**6})
    ) == (
        400,
        "validation_error",
    )
    anonymous = await partner_api.post("/v1/partners/chainabit/provision", json={"email": EMAIL})
    assert await refusal(anonymous) == (401, "auth.missing_token")


# --- Chainabit's failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "answered"),
    [
        (500, "partner.unavailable", 503),
        (503, "partner.unavailable", 503),
        (422, "partner.invalid_request", 400),
        (409, "partner.invalid_request", 400),
        (403, "partner.refused", 502),
        (404, "partner.refused", 502),
    ],
)
async def test_chainabit_s_failures_are_mapped_to_partner_codes(
    partners, chainabit, lenser, status, code, answered
):
    chainabit.fail_with(status)
    response = await partners.call(lenser, "provision", {"email": EMAIL})
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (answered, code)
    assert body["error"]["details"]["partnerStatus"] == status


async def test_a_rate_limited_chainabit_is_unavailable_with_its_retry_after(partners, chainabit, lenser):
    chainabit.fail_with(429, retry_after=7)
    response = await partners.call(lenser, "provision", {"email": EMAIL})
    assert await refusal(response) == (503, "partner.unavailable")
    assert response.headers["Retry-After"] == "7"


async def test_a_wrong_partner_key_is_refused_by_chainabit_and_answered_502(settings, chainabit, lenser):
    wrong = with_chainabit(
        settings, chainabit, chainabit_partner_api_key="not-the-key-0123456789abcdef012345"
    )
    async with TestClient(TestServer(create_app(wrong, background=False))) as api:
        response = await Partners(api).call(lenser, "provision", {"email": EMAIL})
        assert await refusal(response) == (502, "partner.refused")
    assert chainabit.accounts == {}


async def test_a_silent_chainabit_times_out_as_unavailable_and_a_later_provision_succeeds(
    settings, chainabit, lenser
):
    quick = with_chainabit(settings, chainabit, chainabit_timeout_seconds=0.3)
    async with TestClient(TestServer(create_app(quick, background=False))) as api:
        chainabit.hang()
        response = await Partners(api).call(lenser, "provision", {"email": EMAIL})
        assert await refusal(response) == (503, "partner.unavailable")
        chainabit.recover()
        record = await Partners(api).provisioned(lenser)
    assert list(chainabit.accounts) == [record["provisionId"]]


async def test_an_unreadable_chainabit_answer_is_a_bad_response(partners, chainabit, lenser):
    await partners.provisioned(lenser)
    chainabit.accounts[next(iter(chainabit.accounts))].credits = "lots"  # type: ignore[assignment]
    assert await refusal(await partners.call(lenser, "balance")) == (502, "partner.bad_response")


async def test_without_chainabit_configured_partners_are_unavailable(settings, lenser):
    async with TestClient(TestServer(create_app(settings, background=False))) as api:
        response = await Partners(api).call(lenser, "provision", {"email": EMAIL})
        assert await refusal(response) == (503, "partner.unavailable")


# --- at rest ---------------------------------------------------------------------------------


async def test_no_partner_token_is_stored_in_clear(partners, chainabit, db, lenser):
    record = await partners.provisioned(lenser)
    refreshed = await partners.ok(lenser, "refresh-token", {})
    account = chainabit.accounts[record["provisionId"]]
    issued = {record["accessToken"], refreshed["accessToken"], account.access_token, account.refresh_token}

    stored = " ".join(
        [row["data"] for row in await db.fetch("SELECT data::text FROM events")]
        + [row["r"] for row in await db.fetch("SELECT p::text AS r FROM partner_provisions p")]
        + [
            row["s"]
            for row in await db.fetch("SELECT snapshot::text AS s FROM streams WHERE snapshot IS NOT NULL")
        ]
    )

    assert "master_key_id" in stored  # the sealed tokens are there...
    assert [token for token in issued if token in stored] == []  # ...and no token in clear


async def test_verify_finds_the_partner_read_model_and_streams_equal_to_a_replay_of_the_log(
    partners, settings, lenser, other_lenser
):
    await partners.provisioned(lenser)
    await partners.ok(lenser, "refresh-token", {})
    await partners.ok(lenser, "send-claim", {})
    await partners.provisioned(other_lenser)

    code, lines = await operator_command(
        "platform_api", "verify", database_url=settings.database_url, db_role=settings.db_role
    )

    assert code == 0, lines
    [line] = [line for line in lines if line.startswith("partner_provisions:")]
    assert line.endswith(", 0 differences")
