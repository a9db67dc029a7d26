"""Answers kept for retries are pruned once a day old, without waiting for the WAL flush (an answer a
server crash brings back goes at the next run); younger ones stay."""

import json
from uuid import uuid4

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from execution_proxy.app import SCHEMA, create_app
from execution_proxy.http.keys import EXECUTIONS
from lf_testing.durability import CommitSettings

OUTPUTS = f"{SCHEMA}.execution_outputs"


async def test_day_old_outputs_are_pruned_without_a_flush_and_younger_kept(settings, catalogue) -> None:
    # Without the periodic jobs: the app's own prune runs as it starts and, on a slow machine, could
    # take the old row first (this test would then see 0).
    admin = await asyncpg.connect(settings.database_url)
    api = TestClient(TestServer(create_app(settings, background=False)))
    await api.start_server()
    try:
        old, young = uuid4(), uuid4()
        await admin.execute(
            f"INSERT INTO {OUTPUTS} (execution_id, output, recorded_at)"
            " VALUES ($1, $3, now() - interval '25 hours'), ($2, $3, now() - interval '23 hours')",
            old,
            young,
            json.dumps({"content": "kept for retries"}),
        )
        commits = await CommitSettings.install(admin)
        await commits.watch(OUTPUTS)

        assert await api.app[EXECUTIONS].prune_outputs() == 1

        assert await admin.fetchval(f"SELECT array_agg(execution_id) FROM {OUTPUTS}") == [young]
        assert await commits.of(OUTPUTS) == ["off"]
    finally:
        await api.close()
        await admin.close()
