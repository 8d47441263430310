"""When an admission on PostgreSQL waits for the bot's global usage rows of the day.

Another transaction holds one of them (as a concurrent admission or settle would).
The day's total is kept as a row per shard of users; under a global limit an
admission must wait for shard 0, the limit's gate, before it reads the usage it
decides on. It adds its reservation to its user's shard at the end, in the same
round trip as its COMMIT, so that it holds that row for the server's time alone,
not across round trips to the bot (which, under contention, is what queued every
admission of the bot behind one another), and users of other shards never wait
for it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.quota import Quota
from bot.store import open_store
from bot.store.dialect import POSTGRES
from bot.store.protocol import day_key
from bot.store.queries import shard_of, shard_period
from bot.store.schema import GLOBAL_KEY
from tests.pg import PgDatabases

from .conftest import ALICE, BOB, GUILD, ManualClock, make_request, make_settings

WAITING = """SELECT query FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'"""


async def waiting_statement(url: str) -> str:
    """The statement of the one transaction of this database waiting for a lock."""
    def look() -> list[str]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [row[0] for row in conn.execute(WAITING).fetchall()]

    for _ in range(600):
        found = await asyncio.to_thread(look)
        if found:
            assert len(found) == 1, found
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no admission waited for the held row")


def hold_global_row(holder: psycopg.Connection[Any], shard: int, clock: ManualClock) -> None:
    """Lock one shard's row of the bot's day (shard 0: also the gate of a global limit)."""
    period = shard_period(day_key(clock()), shard)
    holder.execute("SELECT 1 FROM usage_totals WHERE scope = 'global_day' AND key = %s"
                   " AND period = %s FOR UPDATE", (GLOBAL_KEY, period))


ALICE_SHARD = shard_of(ALICE.key, POSTGRES.shards)


@pytest.mark.parametrize(("global_limit", "held", "waits_in"), [
    # Her shard's row: adding her reservation, decided.
    (0, ALICE_SHARD, "usage_totals.credits + excluded.credits"),
    (10_000, ALICE_SHARD, "usage_totals.credits + excluded.credits"),
    # The gate: locking it before deciding, only under a global limit.
    (10_000, 0, "SET credits = usage_totals.credits"),
])
async def test_an_admission_reads_under_the_global_row_only_under_a_global_limit(
    pg_databases: PgDatabases, clock: ManualClock, db_path: Path, global_limit: int,
    held: int, waits_in: str
) -> None:
    url = pg_databases.lend()
    store = await open_store(url, clock=clock)
    try:
        quota = Quota(store, make_settings(db_path, global_daily_credits=global_limit), clock=clock)
        await quota.admit(ALICE, GUILD, make_request(5))  # her shard's rows exist from here on
        with psycopg.connect(url) as holder:  # a transaction: holds the lock until closed
            hold_global_row(holder, held, clock)
            admitted = asyncio.create_task(quota.admit(ALICE, GUILD, make_request(5)))
            assert waits_in in await waiting_statement(url)
            holder.rollback()  # let the admission through
        job = await asyncio.wait_for(admitted, 60.0)
        assert job.estimate_credits == 5
        assert await store.audit() == []
    finally:
        await store.close()
        pg_databases.give_back(url)


async def test_with_no_shared_limit_users_of_other_shards_do_not_wait_for_each_other(
    pg_databases: PgDatabases, clock: ManualClock, db_path: Path
) -> None:
    """Every admission and settle adds to the bot's day: on one row, each waited for
    the one before it to commit, whoever the users were."""
    assert ALICE_SHARD not in (0, shard_of(BOB.key, POSTGRES.shards))
    url = pg_databases.lend()
    store = await open_store(url, clock=clock)
    try:
        quota = Quota(store, make_settings(db_path), clock=clock)
        await quota.admit(ALICE, GUILD, make_request(5))
        with psycopg.connect(url) as holder:  # as Alice's admission or settle, mid-commit
            hold_global_row(holder, ALICE_SHARD, clock)
            job = await asyncio.wait_for(quota.admit(BOB, GUILD, make_request(5)), 30.0)
            assert await asyncio.wait_for(quota.settle(job.id, 0.0), 30.0) == 0
            holder.rollback()
        assert await store.audit() == []
        usage = await store.run(lambda tx: tx.usage(BOB.key, "discord:g1", clock()), write=False)
        assert usage.global_day_credits == usage.workspace_month_credits == 5  # Alice's 5 + Bob's 0
    finally:
        await store.close()
        pg_databases.give_back(url)
