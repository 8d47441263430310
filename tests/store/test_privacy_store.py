"""Forgetting a user and purging old jobs, in the store, on both backends: the text is
gone from the rows and from the database's own files, the amounts stay and add up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.model import JobState
from bot.privacy.compact import compact
from bot.quota import Quota
from bot.store import SqlStore, SqlTx
from bot.store.community import Community
from bot.store.moderation import Moderation
from bot.store.privacy import (
    expired_jobs,
    forget_user,
    forgotten_key,
    purge_jobs,
    user_data,
)

from .conftest import ALICE, BOB, GUILD, ManualClock, make_request

PROMPT = "a zanzibar quokka juggling seven teacups"


async def _jobs(store: SqlStore, quota: Quota) -> tuple[int, int]:
    mine = await quota.admit(ALICE, GUILD, make_request(30, prompt=PROMPT))
    await store.update_job(mine.id, state=JobState.DONE, result={"video": {"url": "http://x/v.mp4"},
                                                                 "prompt": PROMPT},
                           result_url="http://x/v.mp4", error_message=f"oops {PROMPT}")
    await quota.settle(mine.id, 0.25)
    theirs = await quota.admit(BOB, GUILD, make_request(10, prompt="a lighthouse at dusk"))
    await quota.refund(theirs.id)
    await store.update_job(theirs.id, state=JobState.CANCELLED)
    return mine.id, theirs.id


def _raw(backend: str, where: str | Path, request: pytest.FixtureRequest) -> bytes:
    """Every byte the database keeps in its own files (not PostgreSQL's WAL)."""
    if backend == "sqlite":
        path = Path(where)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())
    from bot.store.postgres import connect

    server = request.getfixturevalue("pg_databases").server
    with connect(str(where)) as conn:
        conn.execute("CHECKPOINT")  # the table files on disk, not only in shared buffers
        row = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    folder = server.data_dir / "base" / str(row["oid"])
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


async def test_forget_user_leaves_amounts_and_no_text(
        store: SqlStore, quota: Quota, backend: str, where: str | Path,
        request: pytest.FixtureRequest) -> None:
    mine, theirs = await _jobs(store, quota)
    # The safety tables name her too: an audit entry (by her, about her), a refused prompt
    # counted, a report she made, a block a moderator set on her.
    community, moderation = Community(store, store.clock), Moderation(store, store.clock)
    await community.record(ALICE.key, "discord:g1", "grant", target=ALICE.key)
    await community.count_event("discord:g1", ALICE.key, "blocklist", "c1")
    await moderation.report(theirs, ALICE.key, "alice", "discord:g1", logged=False)
    await community.set("discord:g1", f"blocked_user:{ALICE.key}", True, by="mod")
    ledger_before = [(r["kind"], r["credits"], r["usd"]) for r in await store.ledger_rows()]
    assert PROMPT.encode() in _raw(backend, where, request)
    new_key = forgotten_key(ALICE.key)
    scrubbed = await store.run(lambda tx: forget_user(tx, ALICE.key, new_key, store.clock()))
    done = await compact(store, None if backend == "sqlite" else str(where))
    assert scrubbed == 1 and ("VACUUM FULL" in done or "WAL truncated" in done)
    job = await store.get_job(mine)
    assert job is not None and job.prompt == "" and job.result is None and job.error_message is None
    assert job.owner_key == new_key and job.settled_credits == 25
    assert [(r["kind"], r["credits"], r["usd"]) for r in await store.ledger_rows()] == ledger_before
    assert await store.audit() == []
    assert await store.get_user(ALICE.key) is None
    assert (await store.get_user(new_key)) is not None
    other = await store.get_job(theirs)
    assert other is not None and other.prompt == "a lighthouse at dusk"
    raw = _raw(backend, where, request)
    assert PROMPT.encode() not in raw
    assert ALICE.key.encode() not in raw


async def test_two_keys_never_collide() -> None:
    assert forgotten_key(ALICE.key) != forgotten_key(ALICE.key)
    assert forgotten_key(ALICE.key).startswith("forgotten:")


async def test_user_data_holds_every_row(store: SqlStore, quota: Quota) -> None:
    mine, _ = await _jobs(store, quota)
    data = await store.run(lambda tx: user_data(tx, ALICE.key), write=False)
    assert data["user"]["name"] == "alice"
    assert [j["id"] for j in data["jobs"]] == [mine]
    assert [r["kind"] for r in data["ledger"]] == ["reserve", "settle"]
    assert {r["scope"] for r in data["usage_totals"]} >= {"user_day", "user_month"}
    await Community(store, store.clock).count_event("discord:g1", ALICE.key, "blocklist", "c1")
    data = await store.run(lambda tx: user_data(tx, ALICE.key), write=False)
    assert [(r["table"], r["kind"]) for r in data["moderation"]] == [("safety_events", "blocklist")]


async def test_purge_empties_old_finished_jobs_only(store: SqlStore, quota: Quota,
                                                    clock: ManualClock) -> None:
    mine, theirs = await _jobs(store, quota)
    clock.advance(days=10)
    late = await quota.admit(ALICE, GUILD, make_request(5, prompt="still running"))
    horizon = clock.now - timedelta(days=7)

    def purge(tx: SqlTx) -> int:
        return purge_jobs(tx, [j.id for j in expired_jobs(tx, horizon)], clock.now)

    assert await store.run(purge) == 2
    assert await store.run(purge) == 0  # nothing left to purge
    for job_id in (mine, theirs):
        job = await store.get_job(job_id)
        assert job is not None and job.prompt == "" and job.input == {} and job.result_url is None
    running = await store.get_job(late.id)
    assert running is not None and running.prompt == "still running"
    assert await store.audit() == []
