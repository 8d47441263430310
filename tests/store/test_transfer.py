"""`ltx-bot migrate-store`'s copy (SQLite -> an empty PostgreSQL database) and the
PostgreSQL backup with pg_dump."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bot.model import JobState
from bot.ports import MessageRef
from bot.quota import Quota
from bot.store import SCHEMA_VERSION, SqlStore, open_store, transfer
from bot.store.installs import Installations
from bot.store.postgres import connect, migrate
from bot.store.schema import migrate as migrate_sqlite
from bot.store.sqlite import connect as connect_sqlite
from bot.store.transfer import (
    CopyRefused,
    backup_postgres,
    copy_sqlite_to_postgres,
)

from .conftest import ALICE, BOB, DM, GUILD, ManualClock, PgDatabases, make_request, make_settings


async def fill(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    """Every kind of row: users (granted credits, a tier, a block), jobs in every ending,
    a parent, a status message with a datetime inside, ledger rows, seen events."""
    quota = Quota(store, make_settings(db_path, daily_credits=100, max_concurrent_jobs=10), clock=clock)
    await quota.grant(ALICE.key, 40, by="test")
    done = await quota.admit(ALICE, GUILD, make_request(60),
                             status_message=MessageRef("discord", "c1", "m1", extra={"at": clock()}))
    await store.update_job(done.id, state=JobState.DONE, progress=1.0, finished_at=clock())
    await quota.settle(done.id, 0.55)
    clock.advance(hours=6)  # the next day: other usage rows
    failed = await quota.admit(ALICE, DM, make_request(90), parent_id=done.id, parent_kind="reroll")
    await store.update_job(failed.id, state=JobState.FAILED, error_type="FalError")
    await quota.refund(failed.id)
    await quota.admit(BOB, GUILD, make_request(5))
    await store.set_tier(BOB.key, "pro")
    await store.set_blocked("slack:U9", True)
    assert await store.first_seen("Ev1")
    await Installations(store, "chat").save("", "T1", "sealed-token")


async def contents(store: SqlStore) -> tuple[object, ...]:
    users = [await store.get_user(k) for k in (ALICE.key, BOB.key, "slack:U9")]
    jobs = [await store.get_job(i) for i in (1, 2, 3)]
    totals = await store.run(lambda tx: tx.fetch(
        "SELECT scope, key, period, credits, bonus FROM usage_totals ORDER BY 1, 2, 3"), write=False)
    installed = await Installations(store, "chat").find("", "T1")
    return users, jobs, await store.ledger_rows(), [dict(r) for r in totals], installed


@pytest.fixture
async def source(tmp_path: Path, clock: ManualClock) -> Path:
    path = tmp_path / "old.sqlite3"
    store = await open_store(path, clock=clock)
    try:
        await fill(store, clock, path)
    finally:
        await store.close()
    return path


async def test_copy_moves_every_row_and_the_books_still_balance(
    source: Path, pg_databases: PgDatabases, clock: ManualClock
) -> None:
    url = pg_databases.fresh(migrated=False)
    report = await asyncio.to_thread(copy_sqlite_to_postgres, source, url)
    assert report.schema_version == SCHEMA_VERSION and report.audit == []
    assert report.rows == {"users": 3, "jobs": 3, "ledger": 6, "usage_totals": 8, "seen_events": 1,
                           "workspace_settings": 0, "admin_audit": 0, "safety_events": 0,
                           "installations": 1, "reports": 0, "alerts_sent": 0,
                           "modlog_posts": 0, "forget_requests": 0, "block_marks": 0}
    assert report.target == f"127.0.0.1:{pg_databases.server.port}/{url.rsplit('/', 1)[1]}"
    old, new = await open_store(source, clock=clock), await open_store(url, clock=clock)
    try:
        assert await contents(new) == await contents(old)
        assert await new.audit() == []
        # The copy goes on where the SQLite store stopped: ids continue, events stay seen.
        job = await Quota(new, make_settings(source), clock=clock).admit(BOB, GUILD, make_request(1))
        assert job.id == 4 and [r["id"] for r in await new.ledger_rows(job.id)] == [7]
        assert await new.first_seen("Ev1") is False
    finally:
        await old.close()
        await new.close()


async def test_copy_into_a_migrated_empty_database(source: Path, pg_databases: PgDatabases) -> None:
    report = await asyncio.to_thread(copy_sqlite_to_postgres, source, pg_databases.fresh())
    assert report.rows["ledger"] == 6


async def test_copy_refuses_a_database_that_is_not_empty(
    source: Path, pg_databases: PgDatabases, clock: ManualClock
) -> None:
    url = pg_databases.fresh()
    store = await open_store(url, clock=clock)
    try:
        await store.first_seen("something")
    finally:
        await store.close()
    with pytest.raises(CopyRefused, match=r"not empty \(seen_events has rows\)"):
        await asyncio.to_thread(copy_sqlite_to_postgres, source, url)
    with connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) AS n FROM users").fetchone() == {"n": 0}


async def test_copy_refuses_other_schema_versions(
    tmp_path: Path, source: Path, pg_databases: PgDatabases
) -> None:
    url = pg_databases.fresh(migrated=False)
    with connect(url) as conn:
        migrate(conn, target=SCHEMA_VERSION - 1)
    with pytest.raises(CopyRefused, match=f"SQLite store is at {SCHEMA_VERSION}, the PostgreSQL database at {SCHEMA_VERSION - 1}"):
        await asyncio.to_thread(copy_sqlite_to_postgres, source, url)
    with pytest.raises(CopyRefused, match="no SQLite store"):
        await asyncio.to_thread(copy_sqlite_to_postgres, tmp_path / "none.sqlite3", url)


async def test_an_older_sqlite_store_is_refused_and_left_alone(
    tmp_path: Path, pg_databases: PgDatabases
) -> None:
    old = tmp_path / "v1.sqlite3"
    conn = connect_sqlite(old)
    try:
        migrate_sqlite(conn, target=1)
    finally:
        conn.close()
    with pytest.raises(CopyRefused, match=f"SQLite store is at schema version 1, this ltx-bot at {SCHEMA_VERSION}"):
        await asyncio.to_thread(copy_sqlite_to_postgres, old, pg_databases.fresh(migrated=False))
    with sqlite3.connect(old) as raw:  # the source was only read
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1


async def test_backup_with_pg_dump(
    tmp_path: Path, pg_databases: PgDatabases, clock: ManualClock, source: Path
) -> None:
    url = pg_databases.fresh(migrated=False)
    await asyncio.to_thread(copy_sqlite_to_postgres, source, url)
    dest = tmp_path / "backups" / "ltx.dump"
    ok, message = await asyncio.to_thread(backup_postgres, url, dest)
    assert ok, message
    assert "pg_dump custom format" in message and "postgres@" not in message
    listing = (await asyncio.to_thread(subprocess.run, ["pg_restore", "--list", str(dest)],
                                       capture_output=True, text=True, check=True)).stdout
    assert "TABLE DATA public ledger" in listing
    ok, message = await asyncio.to_thread(backup_postgres, url, dest)
    assert not ok and "exists" in message


async def test_a_copy_that_does_not_match_is_rolled_back(
    source: Path, pg_databases: PgDatabases, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_table = transfer._copy_table

    def lossy(source: sqlite3.Connection, target: object, table: str) -> int:
        count = copy_table(source, target, table)  # type: ignore[arg-type]
        if table == "ledger":  # as if a row went missing on the way
            target.execute("DELETE FROM ledger WHERE id = (SELECT MAX(id) FROM ledger)")  # type: ignore[attr-defined]
        return count

    monkeypatch.setattr(transfer, "_copy_table", lossy)
    url = pg_databases.fresh()
    with pytest.raises(CopyRefused, match="does not match its source"):
        await asyncio.to_thread(copy_sqlite_to_postgres, source, url)
    with connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) AS n FROM jobs").fetchone() == {"n": 0}
