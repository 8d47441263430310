"""A job's reservation given back during a fal-account pause and taken again after
(bot/quota_pause.py), on both backends: the ledger stays exact (`audit()` is empty at
every step), the user sees the credits back, the second reservation is checked like a
new command (tier by the owner's roles, admin exemption, every credit limit; the job
not counted twice against the concurrency limit), and a cancel refunds nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import PermissionDenied, QuotaExceeded
from bot.model import JobState
from bot.ports import User
from bot.quota import Quota
from bot.quota_pause import give_back, reserve_again
from bot.store import LedgerEntry, LedgerTx, SqlStore
from bot.store.protocol import LeaseRefused

from .conftest import ADMIN, ALICE, GUILD, ManualClock, make_request, make_settings
from .test_quota import tiered


async def _ledger(store: SqlStore, job_id: int) -> list[tuple[str, int, int]]:
    return [(r["kind"], r["credits"], r["reservation"]) for r in await store.ledger_rows(job_id)]


async def _waiting(quota: Quota, store: SqlStore, credits: int, user: User = ALICE) -> int:
    job = await quota.admit(user, GUILD, make_request(credits))
    await store.update_job(job.id, state=JobState.WAITING)
    return job.id


async def test_given_back_then_taken_again_then_settled(quota: Quota, store: SqlStore) -> None:
    job_id = await _waiting(quota, store, 30)
    assert await give_back(quota, job_id, owner=None)
    assert await _ledger(store, job_id) == [("reserve", 30, 0), ("refund", -30, 0)]
    assert (await quota.status(ALICE, GUILD)).daily_used == 0
    job = await store.get_job(job_id)
    assert job is not None and job.unreserved and job.owner_roles == ALICE.roles
    assert await store.audit() == []
    assert not await give_back(quota, job_id, owner=None)  # once only

    assert await reserve_again(quota, job, owner=None)
    assert not await reserve_again(quota, job, owner=None)  # it holds one now
    assert (await quota.status(ALICE, GUILD)).daily_used == 30
    stored = await store.get_job(job_id)
    assert stored is not None and not stored.unreserved
    assert await store.audit() == []
    assert await quota.settle(job_id, 0.25) == 25
    assert await _ledger(store, job_id) == [("reserve", 30, 0), ("refund", -30, 0),
                                            ("reserve", 30, 1), ("settle", -5, 1)]
    assert (await quota.status(ALICE, GUILD)).daily_used == 25
    assert await store.audit() == []


async def test_a_cancel_after_the_give_back_refunds_nothing_more(quota: Quota,
                                                                  store: SqlStore) -> None:
    job_id = await _waiting(quota, store, 30)
    assert await give_back(quota, job_id, owner=None)
    await quota.refund(job_id)
    await store.update_job(job_id, state=JobState.CANCELLED)
    assert await _ledger(store, job_id) == [("reserve", 30, 0), ("refund", -30, 0)]
    ended = await store.get_job(job_id)  # `jobs` lists it as costing nothing
    assert ended is not None and ended.settled_credits == 0
    assert (await quota.status(ALICE, GUILD)).daily_used == 0
    assert await store.audit() == []


async def test_only_a_waiting_job_gives_back(quota: Quota, store: SqlStore) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(30))
    await store.update_job(job.id, state=JobState.RUNNING)
    assert not await give_back(quota, job.id, owner=None)
    assert await _ledger(store, job.id) == [("reserve", 30, 0)]


async def test_taken_again_as_a_new_command_would_be(store: SqlStore, clock: ManualClock,
                                                     db_path: Path) -> None:
    # Carol's role puts her in the "member" tier: 50 credits a day (the default is 10),
    # one job at once. Her job fits again only with her tier known from admission and
    # itself not counted twice against that one job.
    quota = Quota(store, tiered(db_path), clock=clock)
    carol = User("discord", "2001", "carol", roles=("member",))
    job_id = await _waiting(quota, store, 40, user=carol)
    assert await give_back(quota, job_id, owner=None)
    job = await store.get_job(job_id)
    assert job is not None and job.owner_roles == ("member",)
    assert await reserve_again(quota, job, owner=None)
    assert (await quota.status(carol, GUILD)).daily_used == 40
    assert await store.audit() == []


async def test_a_job_that_no_longer_fits_is_refused_and_nothing_is_written(
        store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = Quota(store, make_settings(db_path, daily_credits=100), clock=clock)
    job_id = await _waiting(quota, store, 60)
    assert await give_back(quota, job_id, owner=None)
    other = await quota.admit(ALICE, GUILD, make_request(60))  # spent meanwhile
    job = await store.get_job(job_id)
    assert job is not None
    with pytest.raises(QuotaExceeded, match="you have 40 of your 100 daily credits left"):
        await reserve_again(quota, job, owner=None)
    assert await _ledger(store, job_id) == [("reserve", 60, 0), ("refund", -60, 0)]
    stored = await store.get_job(job_id)
    assert stored is not None and stored.unreserved
    await store.set_blocked(ALICE.key, True)
    await quota.refund(other.id)
    with pytest.raises(PermissionDenied):
        await reserve_again(quota, job, owner=None)
    assert await store.audit() == []


async def test_an_admin_s_job_stays_exempt(store: SqlStore, clock: ManualClock,
                                          db_path: Path) -> None:
    quota = Quota(store, make_settings(db_path, daily_credits=10), clock=clock)
    job_id = await _waiting(quota, store, 50, user=ADMIN)  # over the 10: exempt
    assert await give_back(quota, job_id, owner=None)
    job = await store.get_job(job_id)
    assert job is not None and job.owner_admin
    assert await reserve_again(quota, job, owner=None)
    assert await store.audit() == []


async def test_a_new_day_counts_the_second_reservation_in_its_own_window(
        quota: Quota, store: SqlStore, clock: ManualClock) -> None:
    job_id = await _waiting(quota, store, 30)
    assert await give_back(quota, job_id, owner=None)
    clock.advance(hours=6)  # past midnight UTC
    job = await store.get_job(job_id)
    assert job is not None and await reserve_again(quota, job, owner=None)
    await quota.refund(job_id)
    rows = await store.ledger_rows(job_id)
    assert [r["day"] for r in rows] == ["2026-04-29", "2026-04-29", "2026-04-30", "2026-04-30"]
    assert await store.audit() == []


async def test_fenced_by_the_lease(quota: Quota, store: SqlStore) -> None:
    await store.register_instance("one", host="host", pid=1, platforms=["discord"],
                                 lease_seconds=30.0)
    job_id = await _waiting(quota, store, 30)
    with pytest.raises(LeaseRefused):
        await give_back(quota, job_id, owner="another-process")
    assert await _ledger(store, job_id) == [("reserve", 30, 0)]
    assert store.lease is not None
    assert await give_back(quota, job_id, owner=store.lease.owner)


async def test_the_database_still_refuses_a_second_reserve_or_close_in_one_round(
        quota: Quota, store: SqlStore, clock: ManualClock) -> None:
    job_id = await _waiting(quota, store, 30)

    def again(kind: str, reservation: int) -> Callable[[LedgerTx], None]:
        entry = LedgerEntry(kind=kind, credits=0, user_key=ALICE.key,  # type: ignore[arg-type]
                            charged_at=clock.now, job_id=job_id, reservation=reservation)
        return lambda tx: tx.record(entry, clock.now)

    with pytest.raises(Exception, match=r"(?i)unique"):
        await store.run(again("reserve", 0))
    await quota.refund(job_id)
    for kind in ("refund", "settle"):
        with pytest.raises(Exception, match=r"(?i)unique"):
            await store.run(again(kind, 0))
    assert await _ledger(store, job_id) == [("reserve", 30, 0), ("refund", -30, 0)]
    assert await store.audit() == []
