"""Rotating the BYOK master key: stored keys keep resolving across the restart, `keys rewrap` moves
them under the new master, and a key whose master is gone fails cleanly, logged without its secret."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from uuid import UUID, uuid4

import pytest
import structlog

from execution_proxy.adapters.envelope import MasterKeys
from execution_proxy.application.keys import ByokKeys
from execution_proxy.domain import errors

SECRET = "sk-ant-api03-rotation-0123456789abcdefghij-KLMN"
A, B, C = (os.urandom(32) for _ in range(3))
METADATA = {"actor": "test"}


def keys_on(db, current: bytes, *previous: bytes) -> ByokKeys:
    """The use cases as a replica started with these master keys sees them."""
    return ByokKeys(db, MasterKeys(current, list(previous)))


async def material_master(db, key_id: UUID) -> str:
    return await db.fetchval("SELECT master_key_id FROM byok_key_material WHERE key_id = $1", key_id)


async def run_cli(settings, *args: str, current: bytes, previous: bytes) -> tuple[int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DB_ROLE": settings.db_role,
        "DB_OWNER_ROLE": settings.db_owner_role,
        "BYOK_MASTER_KEY": base64.b64encode(current).decode(),
        "BYOK_PREVIOUS_MASTER_KEYS": base64.b64encode(previous).decode(),
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "execution_proxy", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_a_key_survives_rotation_and_after_rewrap_needs_only_the_new_master(db):
    lenser = uuid4()
    stored = await keys_on(db, A).store(lenser, "anthropic", SECRET, None, metadata=METADATA)

    rotating = keys_on(db, B, A)  # restarted with B current, A previous
    assert await rotating.resolve(lenser, stored.key_id) == ("anthropic", SECRET)
    assert await rotating.under_other_masters() == 1

    assert await rotating.rewrap() == 1

    assert await material_master(db, stored.key_id) == rotating.master_keys.current.key_id
    assert await rotating.under_other_masters() == 0
    assert await keys_on(db, B).resolve(lenser, stored.key_id) == ("anthropic", SECRET)


async def test_a_key_under_no_configured_master_fails_cleanly_and_is_logged_without_its_secret(db):
    lenser = uuid4()
    stored = await keys_on(db, A).store(lenser, "openai", SECRET, "old", metadata=METADATA)

    with structlog.testing.capture_logs() as logs:
        with pytest.raises(errors.KeyResolutionFailed):
            await keys_on(db, C, B).resolve(lenser, stored.key_id)

    [line] = [entry for entry in logs if entry["event"] == "byok.key_unreadable"]
    assert line["key_id"] == str(stored.key_id)
    assert line["master_key_id"] == MasterKeys(A).current.key_id
    assert SECRET not in repr(logs)
    # Left as it was: configuring A again (as a previous key) opens it.
    assert await keys_on(db, C, A).resolve(lenser, stored.key_id) == ("openai", SECRET)


async def test_the_rewrap_command_moves_keys_to_the_new_master_and_fails_while_one_cannot_move(settings, db):
    lenser = uuid4()
    stored = await keys_on(db, A).store(lenser, "gemini", SECRET, None, metadata=METADATA)
    orphan = await keys_on(db, C).store(lenser, "gemini", SECRET, None, metadata=METADATA)

    code, out = await run_cli(settings, "keys", "rewrap", current=B, previous=A)

    assert code == 1  # the key under C, which is not configured, is still there
    *logged, said = out.strip().splitlines()  # the log (JSON lines on stdout), then the answer
    assert said == f"execution-proxy: 1 key(s) re-wrapped under master key {MasterKeys(B).current.key_id}"
    assert [json.loads(line)["event"] for line in logged] == ["byok.key_not_rewrapped"]
    assert SECRET not in out
    assert await material_master(db, stored.key_id) == MasterKeys(B).current.key_id
    assert await material_master(db, orphan.key_id) == MasterKeys(C).current.key_id
    assert await keys_on(db, B).resolve(lenser, stored.key_id) == ("gemini", SECRET)
