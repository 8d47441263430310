"""The driver's job-state writes are fenced by the lease, on both backends: once another
process adopted a job, the process that lost it writes nothing more to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model import JobState
from bot.store import JobNotFound, LeaseRefused, SqlStore, open_store

from .scenarios import ManualClock
from .test_leases import LEASE, admit


async def test_a_process_that_lost_a_job_cannot_write_its_state(
    store: SqlStore, where: str | Path, clock: ManualClock, db_path: Path
) -> None:
    await store.register_instance("slow", host="h", pid=1, platforms=["discord"],
                                  lease_seconds=LEASE)
    job_id = await admit(store, clock, db_path)
    held = await store.update_held_job(job_id, state=JobState.WAITING)
    assert held.state is JobState.WAITING  # its own job: written
    other = await open_store(where, clock=clock)
    try:
        await other.register_instance("live", host="h", pid=2, platforms=["discord"],
                                      lease_seconds=LEASE)
        clock.advance(seconds=LEASE + 1)
        # Expired but not taken yet: still nobody else's, so the owner may write on.
        assert (await store.update_held_job(job_id, progress=0.5)).progress == 0.5
        assert await other.adopt_job(job_id)
        with pytest.raises(LeaseRefused):
            await store.update_held_job(job_id, state=JobState.FAILED, error_type="result_expired")
        after = await other.get_job(job_id)
        assert after is not None and after.state is JobState.WAITING and after.error_type is None
        # The adopter writes as the owner now.
        assert (await other.update_held_job(job_id, state=JobState.SUBMITTED)).state is \
            JobState.SUBMITTED
        with pytest.raises(JobNotFound):
            await other.update_held_job(job_id + 1000, progress=0.1)
    finally:
        await other.close()


async def test_without_a_lease_a_write_is_a_plain_update(
    store: SqlStore, clock: ManualClock, db_path: Path
) -> None:
    job_id = await admit(store, clock, db_path)  # a tool that never registered
    assert (await store.update_held_job(job_id, progress=0.25)).progress == 0.25
