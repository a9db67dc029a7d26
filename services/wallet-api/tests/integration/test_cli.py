"""The operator's commands: ``python -m wallet_api migrate`` and ``projections rebuild``."""

import asyncio
import os
import subprocess
import sys


async def run_cli(settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DB_ROLE": settings.db_role,
        "DB_OWNER_ROLE": settings.db_owner_role,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wallet_api", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return process.returncode, out.decode()


async def test_migrate_reports_nothing_to_do_on_a_migrated_schema(settings):
    code, out = await run_cli(settings, "migrate")
    assert (code, out.strip()) == (0, "wallet-api: 0 migration(s) applied")


async def test_projections_rebuild_replays_the_log_into_the_same_rows(wallet, lenser, db):
    await wallet.grant(lenser, 40)
    rid = (await (await wallet.reserve(lenser, 15)).json())["data"]["reservationId"]
    await wallet.capture(rid, 10)
    before = [tuple(r) for r in await db.fetch("SELECT * FROM balances")]
    await db.execute("UPDATE balances SET balance = 0")  # a read model gone wrong
    code, out = await run_cli(wallet.settings, "projections", "rebuild", "balances", "reservations")
    assert code == 0 and "balances: rebuilt, 1 rows" in out
    assert [tuple(r) for r in await db.fetch("SELECT * FROM balances")] == before


async def test_rebuild_refuses_an_unknown_projection(settings):
    code, _ = await run_cli(settings, "projections", "rebuild", "nope")
    assert code == 2


def test_production_refuses_to_start_with_dev_secrets_in_one_line():
    env = {**os.environ, "ENV_MODE": "production", "PLATFORM_API_KEY": "dev-platform-api-key"}
    env.pop("SUPABASE_JWT_SECRET", None)
    env["SUPABASE_URL"] = "https://project.supabase.co"
    refused = subprocess.run(
        [sys.executable, "-m", "wallet_api", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "refusing to start: ENV_MODE=production: PLATFORM_API_KEY is a development default"
    ]
