from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.model import JobState
from bot.ports import InteractionInfo, MessageRef, Place
from bot.quota import Quota
from bot.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    JobNotFound,
    SqlStore,
    SqlTx,
    open_store,
)
from bot.store.schema import migrate
from bot.store.sqlite import connect

from .conftest import ALICE, BOB, GUILD, ManualClock, make_request
from .scenarios import v1_rows


async def test_first_open_creates_file_and_schema(db_path: Path, clock: ManualClock) -> None:
    assert not db_path.parent.exists()
    store = await open_store(db_path, clock=clock)
    try:
        assert await asyncio.to_thread(db_path.is_file)
        assert await store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    finally:
        await store.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "jobs", "ledger", "usage_totals"} <= tables


async def test_reopen_keeps_data_and_open_is_idempotent(where: str | Path, clock: ManualClock, settings: Settings) -> None:
    store = await open_store(where, clock=clock)
    job = await Quota(store, settings, clock=clock).admit(ALICE, GUILD, make_request(21))
    await store.close()
    again = await open_store(where, clock=clock)
    try:
        assert await again.schema_version() == SCHEMA_VERSION
        kept = await again.get_job(job.id)
        assert kept == job
        assert [r["kind"] for r in await again.ledger_rows(job.id)] == ["reserve"]
    finally:
        await again.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this code"):
        await open_store(db_path)


async def test_migration_from_v1_backfills_usage_totals(db_path: Path, clock: ManualClock) -> None:
    # Build a version-1 file with real ledger rows, as an old release would have left it.
    db = connect(db_path)
    try:
        assert migrate(db, target=1) == 1
        now = clock().isoformat(timespec="microseconds")
        for sql, params in v1_rows(now):
            db.execute(sql, params)
    finally:
        db.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1

    store = await open_store(db_path, clock=clock)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.audit() == []
        usage = await store.run(lambda tx: tx.usage("discord:1", "discord:g", clock()), write=False)
        assert (usage.day_credits, usage.month_credits, usage.workspace_month_credits,
                usage.global_day_credits) == (25, 25, 25, 25)
    finally:
        await store.close()


async def test_two_connections_opening_a_fresh_file_migrate_once(db_path: Path) -> None:
    a, b = await asyncio.gather(open_store(db_path), open_store(db_path))
    try:
        assert await a.schema_version() == await b.schema_version() == SCHEMA_VERSION
    finally:
        await a.close()
        await b.close()


async def test_job_round_trip_every_field(store: SqlStore, quota: Quota, clock: ManualClock) -> None:
    expires = clock() + timedelta(minutes=15)
    status = MessageRef("discord", "c1", "m1", extra={"token_expires": expires, "n": 3})
    job = await quota.admit(ALICE, Place("discord", "c1", "g1", "t1"), make_request(21),
                            status_message=status,
                            interaction=InteractionInfo(token="tok", expires_at=expires))
    assert job.state is JobState.ACCEPTED
    assert job.owner_key == ALICE.key and job.owner_name == "alice"
    assert job.place.thread == "t1" and job.interaction_token == "tok"
    assert job.interaction_expires_at == expires
    assert job.status_message == status  # the datetime inside extra survives JSON
    assert job.created_at.tzinfo is not None and job.created_at == clock()

    clock.advance(seconds=5)
    started = clock() - timedelta(seconds=1)
    fresh = await store.update_job(
        job.id, state=JobState.RUNNING, fal_request_id="req-1", local_position=None,
        queue_position=3, progress=0.5, started_at=started,
        result_message=MessageRef("discord", "c1", "m2"), result_url="http://x/v.mp4",
        result_size=123, result={"video": {"url": "http://x/v.mp4"}}, error_type=None,
        error_message=None, parent_id=None, parent_kind="reroll",
    )
    assert fresh.updated_at == clock() and fresh.started_at == started
    assert fresh.state is JobState.RUNNING and fresh.progress == 0.5
    assert fresh.result == {"video": {"url": "http://x/v.mp4"}}
    assert await store.get_job(job.id) == fresh


async def test_update_job_refuses_unknown_fields_and_naive_times(store: SqlStore, quota: Quota) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(1))
    with pytest.raises(ValueError, match="colour"):
        await store.update_job(job.id, colour="red")
    with pytest.raises(ValueError):
        await store.update_job(job.id, updated_at=datetime.now(UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.update_job(job.id, finished_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        await store.update_job(job.id, state="exploded")
    with pytest.raises(JobNotFound):
        await store.update_job(99999, progress=0.1)
    # A refused update leaves the job exactly as it was.
    assert await store.get_job(job.id) == job


async def test_claim_delivery_is_true_exactly_once(store: SqlStore, quota: Quota) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(1))
    results = await asyncio.gather(*(store.claim_delivery(job.id) for _ in range(20)))
    assert results.count(True) == 1
    assert await store.claim_delivery(job.id) is False


async def test_claim_delivery_across_connections(where: str | Path, store: SqlStore, quota: Quota) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(1))
    other = await open_store(where)
    try:
        results = await asyncio.gather(*(s.claim_delivery(job.id) for s in (store, other) * 10))
    finally:
        await other.close()
    assert results.count(True) == 1


async def test_unfinished_and_list_jobs(store: SqlStore, quota: Quota) -> None:
    a = await quota.admit(ALICE, GUILD, make_request(1))
    b = await quota.admit(ALICE, GUILD, make_request(1))
    await store.update_job(a.id, state=JobState.DONE)
    assert [j.id for j in await store.unfinished_jobs()] == [b.id]
    assert [j.id for j in await store.list_jobs(ALICE.key)] == [b.id, a.id]
    assert [j.id for j in await store.list_jobs(ALICE.key, limit=1)] == [b.id]
    assert await store.list_jobs("discord:nobody") == []


async def test_users_tier_and_block(store: SqlStore) -> None:
    row = await store.ensure_user(ALICE)
    assert (row.key, row.name, row.tier, row.blocked) == ("discord:1001", "alice", None, False)
    await store.set_tier(ALICE.key, "pro")
    await store.set_blocked(ALICE.key, True)
    row = await store.ensure_user(ALICE)  # seeing the user again keeps what admins set
    assert (row.tier, row.blocked) == ("pro", True)
    # An admin may act on someone who never used the bot.
    await store.set_blocked("slack:U9", True)
    stranger = await store.get_user("slack:U9")
    assert stranger is not None and stranger.blocked and stranger.platform == "slack"
    with pytest.raises(ValueError):
        await store.set_blocked("nocolon", True)


async def test_failed_transaction_rolls_back(store: SqlStore) -> None:
    def body(tx: SqlTx) -> None:
        tx.upsert_user(ALICE, store.clock())
        raise RuntimeError("boom")

    results = await asyncio.gather(store.run(body), store.ensure_user(BOB), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert await store.get_user(ALICE.key) is None
    # A failing transaction in the same batch does not take the others down with it.
    assert await store.get_user(BOB.key) is not None


async def test_closed_store_refuses_work(where: str | Path) -> None:
    store = await open_store(where)
    pending = store.get_job(1)
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await pending



async def test_ledger_rows_read_the_same_on_both_backends(quota: Quota, store: SqlStore) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(21))
    [row] = await store.ledger_rows(job.id)
    # Times come back as the text the codec writes, whatever the column type.
    assert row["at"] == row["charged_at"] == "2026-04-29T19:00:00.000000+00:00"
    assert (row["kind"], row["credits"], row["day"], row["month"]) == ("reserve", 21, "2026-04-29", "2026-04")


async def test_first_seen_is_true_once_per_event_across_connections(
    where: str | Path, store: SqlStore, clock: ManualClock
) -> None:
    other = await open_store(where, clock=clock)
    try:
        results = await asyncio.gather(*(s.first_seen("Ev1") for s in (store, other) * 10))
        assert results.count(True) == 1
        assert await other.first_seen("Ev2") is True
        # Platforms stop retrying within hours; after two days an id is forgotten.
        clock.advance(days=2, seconds=1)
        assert await store.first_seen("Ev1") is True
    finally:
        await other.close()


async def test_health_names_the_store_and_its_version(store: SqlStore, backend: str, where: str | Path) -> None:
    health = await store.health()
    assert health.ok and health.schema_version == SCHEMA_VERSION and health.backend == backend
    if backend == "sqlite":
        assert health.where == str(where)
