"""Each service's role can touch its own schema and nothing else."""

import asyncpg
import pytest

from lf_pg import MigrationSet, create_pool, migrate

EMPTY = MigrationSet("none", "lf_pg", folder="no-such-folder-is-needed")


@pytest.fixture
async def two_services(database_url):
    for schema, role in (("wallet", "wallet_api"), ("billing", "billing_webhook")):
        await migrate(database_url, schema, [], role=role)
    conn = await asyncpg.connect(database_url)
    await conn.execute("SET ROLE billing_webhook; CREATE TABLE billing.orders (id int); RESET ROLE")
    await conn.close()
    return database_url


async def test_a_service_role_owns_its_schema_and_cannot_read_another(two_services):
    pool = await create_pool(two_services, "wallet", role="wallet_api", min_size=1, max_size=1)
    try:
        await pool.execute("CREATE TABLE mine (id int)")  # its own schema: allowed
        assert await pool.fetchval("SELECT current_user") == "wallet_api"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.fetch("SELECT * FROM billing.orders")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute("CREATE TABLE public.stray (id int)")
    finally:
        await pool.close()


async def test_migrating_twice_applies_nothing_the_second_time(database_url):
    from lf_eventstore import MIGRATIONS

    first = await migrate(database_url, "wallet", [MIGRATIONS], role="wallet_api")
    again = await migrate(database_url, "wallet", [MIGRATIONS], role="wallet_api")
    assert first and again == []
