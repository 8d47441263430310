"""What only the PostgreSQL store has: its own migrations and version record, the pool,
and times as timestamptz. Everything else runs on both backends in the other files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from bot.config import DatabaseSettings
from bot.model import JobState
from bot.quota import Quota
from bot.store import SCHEMA_VERSION, StoreHealth, open_store
from bot.store.postgres import connect, migrate

from .conftest import ALICE, BOB, GUILD, ManualClock, PgDatabases, make_request, make_settings
from .scenarios import v1_rows


async def test_first_open_migrates_an_empty_database(pg_databases: PgDatabases) -> None:
    url = pg_databases.fresh(migrated=False)
    store = await open_store(url)
    try:
        health = await store.health()
    finally:
        await store.close()
    port = pg_databases.server.port
    assert health == StoreHealth("postgresql", f"127.0.0.1:{port}/{url.rsplit('/', 1)[1]}",
                                 SCHEMA_VERSION)
    assert health.ok and "postgres@" not in health.where
    with connect(url) as conn:
        tables = {r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        kinds = {r["column_name"]: r["data_type"] for r in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs'")}
    assert {"users", "jobs", "ledger", "usage_totals", "seen_events", "schema_version"} <= tables
    assert kinds["created_at"] == "timestamp with time zone"
    assert kinds["estimate_usd"] == "double precision"


async def test_newer_schema_is_refused(pg_databases: PgDatabases) -> None:
    url = pg_databases.fresh()
    with connect(url) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer than this code"):
        await open_store(url)


async def test_processes_opening_an_empty_database_together_migrate_once(pg_databases: PgDatabases) -> None:
    url = pg_databases.fresh(migrated=False)
    stores = await asyncio.gather(*(open_store(url) for _ in range(3)))
    try:
        assert [await s.schema_version() for s in stores] == [SCHEMA_VERSION] * 3
    finally:
        for s in stores:
            await s.close()
    with connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) AS n FROM schema_version").fetchone() == {"n": 1}


async def test_migration_from_v1_backfills_usage_totals(
    pg_databases: PgDatabases, clock: ManualClock, db_path: Path
) -> None:
    # A version-1 database with real ledger rows, as a first release would have left it.
    url = pg_databases.fresh(migrated=False)
    now = clock().isoformat(timespec="microseconds")
    with connect(url) as conn:
        assert migrate(conn, target=1) == 1
        for sql, params in v1_rows(now, "%s"):
            conn.execute(sql, params)

    store = await open_store(url, clock=clock)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.audit() == []
        usage = await store.run(lambda tx: tx.usage("discord:1", "discord:g", clock()), write=False)
        assert (usage.day_credits, usage.month_credits, usage.workspace_month_credits,
                usage.global_day_credits) == (25, 25, 25, 25)
        # New jobs continue after the migrated ones.
        job = await Quota(store, make_settings(db_path), clock=clock).admit(BOB, GUILD, make_request(1))
        assert job.id == 2
    finally:
        await store.close()


async def test_a_connection_the_server_dropped_is_replaced(
    pg_databases: PgDatabases, clock: ManualClock, db_path: Path
) -> None:
    url = pg_databases.fresh()
    store = await open_store(url, clock=clock)
    try:
        job = await Quota(store, make_settings(db_path), clock=clock).admit(ALICE, GUILD, make_request(1))
        with psycopg.connect(pg_databases.server.url(), autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                   " WHERE datname = %s", (url.rsplit("/", 1)[1],)).fetchall()
        assert len(killed) == DatabaseSettings().pool_size
        # Every pooled connection is gone; the next transactions get new ones.
        got = await asyncio.gather(*(store.get_job(job.id) for _ in range(8)))
        assert all(g is not None and g.state is JobState.ACCEPTED for g in got)
    finally:
        await store.close()
