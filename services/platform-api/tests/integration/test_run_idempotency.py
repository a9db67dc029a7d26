"""Idempotency keys of run requests, on the use case itself: one run per (lenser, key) while the
key is honoured, a new one once it has expired."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from lf_pg import create_pool
from platform_api.app import SCHEMA
from platform_api.application.runs import RunRequest, RunUseCases, keyed_run_id, request_hash
from platform_api.domain.definitions import LensDefinition
from platform_api.domain.errors import IdempotencyConflict
from platform_api.domain.run_plan import PlanNode, plan_node_data
from platform_api.settings import PlatformSettings

LENS = LensDefinition(
    name="l", template="Say {{text}}", parameters=[{"name": "text", "type": "string"}], model_id="m"
)


@pytest.fixture
async def pool(settings: PlatformSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url, SCHEMA, role=settings.db_role, min_size=1, max_size=4)
    yield pool
    await pool.close()


def a_request(lenser: UUID, key: str, text: str = "hi") -> RunRequest:
    lens_id = uuid4()
    body = {"params": {"text": text}, "idempotencyKey": key}
    return RunRequest(
        lenser_id=lenser,
        kind="lens",
        target_id=lens_id,
        version=1,
        inputs={"text": text},
        nodes=[plan_node_data(PlanNode("lens", str(lens_id), 1, LENS, "m", {}))],
        edges=[],
        funding_source="platform_credit",
        byok_key_ref_id=None,
        model_override=None,
        provider_override=None,
        budget_credits=None,
        deadline_seconds=None,
        idempotency_key=key,
        request_hash=request_hash("lens", UUID(int=1), body),  # one target for every request here
        request_id=uuid4(),
    )


async def test_one_key_is_one_run_per_lenser_while_honoured(
    pool: asyncpg.Pool, lenser: UUID, other_lenser: UUID
):
    runs = RunUseCases(pool)
    first = await runs.queue(a_request(lenser, "k"), metadata={})
    again = await runs.queue(a_request(lenser, "k"), metadata={})
    assert (again.run_id, again.created, first.created) == (first.run_id, False, True)
    with pytest.raises(IdempotencyConflict):
        await runs.queue(a_request(lenser, "k", text="other"), metadata={})
    theirs = await runs.queue(a_request(other_lenser, "k"), metadata={})
    assert theirs.run_id != first.run_id and theirs.created


async def test_an_expired_key_starts_a_new_run_whose_id_follows_from_the_expired_one(
    pool: asyncpg.Pool, lenser: UUID
):
    expiring = RunUseCases(pool, idempotency_window=timedelta(0))
    first = await expiring.queue(a_request(lenser, "k"), metadata={})
    second = await expiring.queue(a_request(lenser, "k", text="other"), metadata={})  # no conflict: expired
    assert second.run_id != first.run_id and second.created
    # Derived from the expired run: every replica that finds it expired goes to this same stream.
    assert second.run_id == keyed_run_id(lenser, "k", first.run_id)
