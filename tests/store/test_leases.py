"""Job leases on both backends: one conditional UPDATE decides who adopts a job, a
renewal says which leases are still held, and the count of jobs at fal is store-wide."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.model import JobState
from bot.quota import Quota
from bot.store import SqlStore, open_store

from .scenarios import ALICE, GUILD, ManualClock, make_request, make_settings

LEASE = 30.0


async def admit(store: SqlStore, clock: ManualClock, db_path: Path) -> int:
    quota = Quota(store, make_settings(db_path, daily_credits=10_000,
                                     max_concurrent_jobs=100), clock=clock)
    job = await quota.admit(ALICE, GUILD, make_request(10))
    return job.id


async def test_a_new_job_is_its_creators_and_nobody_else_adopts_it(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    await store.register_instance("a", host="h", pid=1, platforms=["discord"], lease_seconds=LEASE)
    other = await open_store(where, clock=clock)
    try:
        await other.register_instance("b", host="h", pid=2, platforms=["discord"],
                                      lease_seconds=LEASE)
        job_id = await admit(store, clock, db_path)
        assert await other.adoptable_jobs(["discord"]) == []
        assert not await other.adopt_job(job_id)
        assert await store.lease_holder(job_id) == "a"
        assert (await store.renew_leases(["discord"])).held == {job_id}
    finally:
        await other.close()


async def test_two_adopters_of_an_expired_lease_one_wins(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    await store.register_instance("dead", host="h", pid=1, platforms=["discord"],
                                  lease_seconds=LEASE)
    job_ids = [await admit(store, clock, db_path) for _ in range(5)]
    adopters = [await open_store(where, clock=clock) for _ in range(2)]
    try:
        for i, adopter in enumerate(adopters):
            await adopter.register_instance(f"live{i}", host="h", pid=10 + i,
                                            platforms=["discord"], lease_seconds=LEASE)
        assert not any([await adopters[0].adopt_job(j) for j in job_ids])  # still leased
        clock.advance(seconds=LEASE + 1)
        found = [job.id for job in await adopters[0].adoptable_jobs(["discord"])]
        assert found == job_ids
        assert await adopters[0].adoptable_jobs(["slack"]) == []  # no port, no adoption
        results = await asyncio.gather(*(a.adopt_job(j) for j in job_ids for a in adopters))
        wins = [results[i * 2] + results[i * 2 + 1] for i in range(len(job_ids))]
        assert wins == [1] * len(job_ids)
        # The process that lost its leases learns it at its next renewal.
        assert (await store.renew_leases(["discord"])).held == frozenset()
        held = [(await a.renew_leases(["discord"])).held for a in adopters]
        assert held[0] | held[1] == set(job_ids) and not held[0] & held[1]
    finally:
        for adopter in adopters:
            await adopter.close()


async def test_a_clean_release_frees_the_leases_at_once_and_cancels_wait_for_the_owner(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    await store.register_instance("a", host="h", pid=1, platforms=["console"],
                                  lease_seconds=LEASE)
    job_id = await admit(store, clock, db_path)
    assert await store.request_cancel(job_id, "Admin")
    assert (await store.renew_leases(["console"])).cancels == {job_id: "Admin"}
    await store.release_leases()
    other = await open_store(where, clock=clock)
    try:
        await other.register_instance("b", host="h", pid=2, platforms=["discord"],
                                      lease_seconds=LEASE)
        assert await other.lease_holder(job_id) is None
        assert await other.adopt_job(job_id)
        assert await other.lease_holder(job_id) == "b"
    finally:
        await other.close()


async def test_slots_at_fal_are_counted_across_the_whole_store(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    other = await open_store(where, clock=clock)
    try:
        await store.register_instance("a", host="h", pid=1, platforms=["discord"],
                                      lease_seconds=LEASE)
        await other.register_instance("b", host="h", pid=2, platforms=["discord"],
                                      lease_seconds=LEASE)
        mine = [await admit(store, clock, db_path) for _ in range(3)]
        theirs = [await admit(other, clock, db_path) for _ in range(3)]
        taken = await asyncio.gather(*(store.take_fal_slot(j, 3) for j in mine),
                                     *(other.take_fal_slot(j, 3) for j in theirs))
        assert sum(taken) == 3
        # A process cannot take a slot for a job it does not hold.
        assert not await store.take_fal_slot(theirs[0], 100)
        states = [(await store.get_job(j)).state for j in mine + theirs]  # type: ignore[union-attr]
        assert states.count(JobState.SUBMITTED) == 3
    finally:
        await other.close()


async def test_a_job_being_sent_to_fal_stays_its_senders_for_the_whole_submit(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    """fal has no idempotency key: while a slow (not dead) sender waits for fal's answer,
    missed heartbeats must not let another process adopt the job and send it again. The
    slot is taken for the longest a submit can take; renewals meanwhile never shorten it;
    a job taken without that hold is free after one lease period as before."""
    await store.register_instance("slow", host="h1", pid=1, platforms=["discord"],
                                  lease_seconds=2)
    sending, plain = await admit(store, clock, db_path), await admit(store, clock, db_path)
    other = await open_store(where, clock=clock)
    try:
        await other.register_instance("b", host="h2", pid=2, platforms=["discord"],
                                      lease_seconds=2)
        assert await store.take_fal_slot(sending, 10, hold=90)
        assert await store.take_fal_slot(plain, 10)
        clock.advance(seconds=1)
        assert (await store.renew_leases(["discord"])).held == {sending, plain}
        clock.advance(seconds=5)  # heartbeats missed: the plain lease ran out, the hold not
        assert [j.id for j in await other.adoptable_jobs(["discord"])] == [plain]
        assert not await other.adopt_job(sending)
        assert await store.holds_lease(sending)
        clock.advance(seconds=90)  # a sender that died mid-submit: free after the hold
        assert await other.adopt_job(sending)
        # Once fal answered (the request id written), a renewal brings the lease back to
        # one period: a crash after the submit costs one lease period, not the hold.
        await other.update_job(sending, state=JobState.IN_QUEUE, fal_request_id="r1")
        assert (await other.renew_leases(["discord"])).held >= {sending}
        clock.advance(seconds=3)
        assert [j.id for j in await store.adoptable_jobs(["discord"])
                if j.id == sending] == [sending]
    finally:
        await other.close()


async def test_a_lease_that_ran_out_unadopted_is_still_its_owners(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    """A process that renews late (a loaded machine) keeps the jobs nobody adopted
    meanwhile, and loses exactly those another process took: ownership moves only by
    adoption, so a slow renewal never makes a job undriven."""
    await store.register_instance("slow", host="h1", pid=1, platforms=["discord"],
                                  lease_seconds=2)
    kept, taken = await admit(store, clock, db_path), await admit(store, clock, db_path)
    other = await open_store(where, clock=clock)
    try:
        await other.register_instance("b", host="h2", pid=2, platforms=["discord"],
                                      lease_seconds=2)
        clock.advance(seconds=10)  # both leases ran out; another process takes one
        assert await other.adopt_job(taken)
        assert (await store.renew_leases(["discord"])).held == {kept}
        assert await store.holds_lease(kept) and not await store.holds_lease(taken)
        assert not await other.adopt_job(kept)  # renewed: not free any more
        assert await store.take_fal_slot(kept, 10) and not await store.take_fal_slot(taken, 10)
    finally:
        await other.close()
