"""BYOK keys end to end: /execute/keys (store, list, revoke) and /execute/byok on the caller's own
key against the fake OpenAI server, with no platform OpenAI key configured."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy.app import SCHEMA, create_app
from execution_proxy.verification import VERIFIABLE
from lf_projections.verify import verify
from lf_testing.fakes.openai import FakeOpenAI
from lf_testing.tokens import bearer
from lf_testing.waiting import eventually
from lf_web import configure_logging

SECRET = "sk-proj-Byok0123456789abcdefghijklmnopqrstuvWXYZ"
ANTHROPIC_SECRET = "sk-ant-api03-0123456789abcdefghijklmn-QRST"
HELLO = [{"role": "user", "content": "Hello there"}]
INTERNAL = {"X-Platform-Api-Key": "test-platform-key"}  # conftest's platform key


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI(api_key=SECRET).start()  # refuses any other key with OpenAI's 401
    yield fake
    await fake.stop()


@pytest.fixture
async def api(settings, catalogue, openai) -> AsyncIterator[TestClient]:
    """The service pointed at the fake OpenAI, without a platform OpenAI key: only BYOK can call it."""
    on_fake = settings.model_copy(update={"openai_api_url": openai.url, "openai_api_key": ""})
    async with TestClient(TestServer(create_app(on_fake))) as client:
        yield client


async def store(api, lenser: UUID, provider: str = "openai", key: str = SECRET, **body: Any):
    return await api.post(
        "/execute/keys", json={"provider": provider, "key": key, **body}, headers=bearer(lenser)
    )


async def stored_key(api, lenser: UUID, provider: str = "openai", key: str = SECRET) -> str:
    response = await store(api, lenser, provider, key)
    assert response.status == 201, await response.text()
    return (await response.json())["data"]["id"]


async def execute_byok(api, lenser: UUID, key_id: str, **body: Any):
    payload = {"provider": "openai", "model": "gpt-4o-mini", "messages": HELLO, "key_ref_id": key_id, **body}
    return await api.post("/execute/byok", json=payload, headers=bearer(lenser))


async def error_of(response) -> tuple[int, dict[str, Any]]:
    return response.status, (await response.json())["error"]


# --- /execute/keys -----------------------------------------------------------------------------


async def test_a_stored_key_is_listed_by_id_provider_label_and_suffix_never_the_secret(api, lenser):
    response = await store(api, lenser, label="my openai key")

    assert response.status == 201
    created = (await response.json())["data"]
    assert set(created) == {"id", "provider", "label", "suffix", "status", "createdAt"}
    assert (created["provider"], created["label"], created["suffix"], created["status"]) == (
        "openai",
        "my openai key",
        "WXYZ",
        "active",
    )
    listed = await api.get("/execute/keys", headers=bearer(lenser))
    assert listed.status == 200
    text = await listed.text()
    assert json.loads(text)["data"]["keys"] == [created]
    assert SECRET not in text and SECRET not in await response.text()


async def test_a_lenser_lists_only_their_own_keys(api, lenser):
    mine = await stored_key(api, lenser)
    await stored_key(api, uuid4())

    listed = await api.get("/execute/keys", headers=bearer(lenser))

    assert [key["id"] for key in (await listed.json())["data"]["keys"]] == [mine]


async def test_the_secret_is_stored_encrypted_only(api, lenser, db):
    key_id = await stored_key(api, lenser)

    row = await db.fetchrow("SELECT * FROM byok_key_material WHERE key_id = $1", UUID(key_id))
    logged = await db.fetchval("SELECT string_agg(data::text, ' ') FROM events")

    assert row is not None and SECRET.encode() not in bytes(row["ciphertext"])
    assert len(row["master_key_id"]) == 16
    assert SECRET not in logged and key_id in logged


async def test_revoking_removes_the_key_from_the_list_and_shreds_its_material(api, lenser, db):
    key_id = await stored_key(api, lenser)

    response = await api.delete(f"/execute/keys/{key_id}", headers=bearer(lenser))

    assert response.status == 200
    assert (await response.json())["data"]["status"] == "revoked"
    assert await db.fetchval("SELECT count(*) FROM byok_key_material WHERE key_id = $1", UUID(key_id)) == 0
    assert await db.fetchval("SELECT status FROM byok_keys WHERE key_id = $1", UUID(key_id)) == "revoked"
    listed = await api.get("/execute/keys", headers=bearer(lenser))
    assert (await listed.json())["data"]["keys"] == []


async def test_the_keys_read_model_is_what_a_replay_of_the_log_gives(api, lenser, settings):
    await stored_key(api, lenser)
    revoked = await stored_key(api, lenser, "gemini")
    await api.delete(f"/execute/keys/{revoked}", headers=bearer(lenser))

    findings = await verify(settings.database_url, SCHEMA, VERIFIABLE, role=settings.db_role)

    assert "byok_keys" in [f.subject for f in findings]
    assert [str(d) for f in findings for d in f.differences] == []


async def test_revoking_twice_answers_the_revoked_key_again(api, lenser):
    key_id = await stored_key(api, lenser)
    first = await api.delete(f"/execute/keys/{key_id}", headers=bearer(lenser))

    again = await api.delete(f"/execute/keys/{key_id}", headers=bearer(lenser))

    assert again.status == 200
    assert (await again.json())["data"] == (await first.json())["data"]


async def test_someone_elses_key_is_answered_exactly_like_a_missing_one(api, lenser, db):
    theirs = await stored_key(api, uuid4())

    missing = await error_of(await api.delete(f"/execute/keys/{uuid4()}", headers=bearer(lenser)))
    foreign = await error_of(await api.delete(f"/execute/keys/{theirs}", headers=bearer(lenser)))
    run_missing = await error_of(await execute_byok(api, lenser, str(uuid4())))
    run_foreign = await error_of(await execute_byok(api, lenser, theirs))

    assert missing == foreign == run_missing == run_foreign
    assert missing[0] == 403 and missing[1]["code"] == "execute.key_resolution_failed"
    assert await db.fetchval("SELECT status FROM byok_keys WHERE key_id = $1", UUID(theirs)) == "active"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "local", "key": SECRET}, "provider"),
        ({"provider": "openai", "key": "abc"}, "key"),
        ({"provider": "openai", "key": SECRET, "label": "x" * 101}, "label"),
        ({"provider": "openai"}, "key"),
        ({"provider": "openai", "key": 12345678}, "key"),
    ],
)
async def test_a_key_that_cannot_be_stored_is_a_validation_error_naming_the_field(api, lenser, body, field):
    response = await api.post("/execute/keys", json=body, headers=bearer(lenser))

    status, error = await error_of(response)
    assert (status, error["code"]) == (400, "validation_error")
    assert [problem["field"] for problem in error["details"]["fields"]] == [field]


async def test_key_routes_need_a_lensers_token(api):
    response = await api.get("/execute/keys")

    assert response.status == 401


async def test_key_routes_are_limited_per_lenser(api, lenser):
    for _ in range(30):
        assert (await api.get("/execute/keys", headers=bearer(lenser))).status == 200

    refused = await api.get("/execute/keys", headers=bearer(lenser))

    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await api.get("/execute/keys", headers=bearer(uuid4()))).status == 200


# --- /execute/byok -----------------------------------------------------------------------------


async def test_an_execution_on_the_callers_key_sends_that_key_and_charges_nothing(
    api, lenser, openai, db, wallet_db
):
    key_id = await stored_key(api, lenser)

    response = await execute_byok(api, lenser, key_id)

    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["content"] == openai.reply
    assert (data["provider"], data["creditsCharged"]) == ("openai", 0)
    assert openai.last.headers["Authorization"] == f"Bearer {SECRET}"
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations WHERE lenser_id = $1", lenser) == 0
    query = "SELECT * FROM executions WHERE execution_id = $1"

    async def recorded() -> bool:  # after the answer: no money moved (application/afterwards.py)
        return await db.fetchrow(query, UUID(data["executionId"])) is not None

    await eventually(recorded)
    row = await db.fetchrow(query, UUID(data["executionId"]))
    assert (row["funding"], row["key_id"], row["credits_charged"]) == ("user_byok_cloud", UUID(key_id), 0)
    assert row["reservation_id"] is None and row["payer_id"] is None


async def test_an_internal_execution_funded_by_the_lensers_key_uses_it(api, lenser, openai, wallet_db):
    key_id = await stored_key(api, lenser)
    body = {"funding": "user_byok_cloud", "lenserId": str(lenser), "keyRefId": key_id}

    response = await api.post(
        "/internal/executions",
        json={**body, "provider": "openai", "model": "gpt-4o-mini", "messages": HELLO},
        headers=INTERNAL,
    )

    assert response.status == 200, await response.text()
    assert (await response.json())["data"]["creditsCharged"] == 0
    assert openai.last.headers["Authorization"] == f"Bearer {SECRET}"
    assert await wallet_db.fetchval("SELECT count(*) FROM reservations") == 0


async def test_without_a_stored_key_the_platform_has_no_openai_key_to_use(api, lenser):
    response = await api.post(
        "/execute/wallet",
        json={"provider": "openai", "model": "gpt-4o-mini", "messages": HELLO},
        headers=bearer(lenser),
    )

    status, error = await error_of(response)
    assert (status, error["code"]) == (400, "execute.unsupported_provider")


async def test_a_key_for_another_provider_is_a_provider_mismatch(api, lenser, openai):
    key_id = await stored_key(api, lenser, "anthropic", ANTHROPIC_SECRET)

    status, error = await error_of(await execute_byok(api, lenser, key_id))

    assert (status, error["code"]) == (400, "execute.provider_mismatch")
    assert openai.requests == []


async def test_a_revoked_key_no_longer_executes(api, lenser, openai):
    key_id = await stored_key(api, lenser)
    assert (await execute_byok(api, lenser, key_id)).status == 200
    await api.delete(f"/execute/keys/{key_id}", headers=bearer(lenser))

    status, error = await error_of(await execute_byok(api, lenser, key_id))

    assert (status, error["code"]) == (403, "execute.key_resolution_failed")
    assert len(openai.requests) == 1


# --- the secret is never logged ------------------------------------------------------------------


@pytest.fixture
def json_logs() -> Any:
    """The real log pipeline (lf_web.configure_logging), its stdout handler writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG", "execution-proxy")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    yield buffer.getvalue
    root.handlers, root.level = saved
    structlog.reset_defaults()


async def test_the_secret_never_reaches_the_log(api, lenser, json_logs):
    key_id = await stored_key(api, lenser)
    assert (await execute_byok(api, lenser, key_id)).status == 200
    assert (await store(api, lenser, "local", SECRET)).status == 400
    assert (
        await execute_byok(api, lenser, key_id, provider="anthropic", model="claude-haiku-4-5")
    ).status == 400
    assert (await api.delete(f"/execute/keys/{key_id}", headers=bearer(lenser))).status == 200

    logged = json_logs()

    assert "byok.key_stored" in logged  # the pipeline did capture this service's lines
    assert SECRET not in logged
    assert SECRET[:-4] not in logged
