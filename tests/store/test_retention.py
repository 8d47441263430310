"""`[privacy] retention_days` with a moved clock, on both backends: old finished jobs lose
their text, links and saved files; amounts and newer jobs stay."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.model import JobState
from bot.ports import MessageRef
from bot.quota import Quota
from bot.retention import Retention
from bot.store import SqlStore

from .conftest import ALICE, GUILD, ManualClock, make_request, make_settings


async def _finished(store: SqlStore, quota: Quota, prompt: str, saved: Path) -> int:
    job = await quota.admit(ALICE, GUILD, make_request(20, prompt=prompt))
    await asyncio.to_thread(saved.write_bytes, b"video")
    await store.update_job(job.id, state=JobState.DONE, result_url="http://x/v.mp4",
                           result={"prompt": prompt},
                           result_message=MessageRef("console", "c", "m1", {"path": str(saved)}))
    await quota.settle(job.id, 0.2)
    return job.id


async def test_purge_after_the_retention_days(store: SqlStore, quota: Quota, clock: ManualClock,
                                              tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "bot.sqlite3")
    settings.privacy.retention_days = 30
    old = await _finished(store, quota, "an old secret", tmp_path / "old.mp4")
    clock.advance(days=20)
    new = await _finished(store, quota, "a newer secret", tmp_path / "new.mp4")
    retention = Retention(store, settings, clock=clock)
    ledger = await store.ledger_rows()

    assert await retention.purge_once() == 0  # 20 days: nothing is old enough
    clock.advance(days=10, seconds=1)  # the first job is now 30 days and a second old
    assert await retention.purge_once() == 1
    purged, kept = await store.get_job(old), await store.get_job(new)
    assert purged is not None and kept is not None
    assert (purged.prompt, purged.input, purged.result, purged.result_url) == ("", {}, None, None)
    assert purged.result_message is None and purged.settled_credits == 20
    assert not (tmp_path / "old.mp4").exists() and (tmp_path / "new.mp4").exists()
    assert kept.prompt == "a newer secret"
    assert await store.ledger_rows() == ledger
    assert await store.audit() == []
    assert await retention.purge_once() == 0  # idempotent


async def test_zero_keeps_everything_and_the_task_runs_at_start(
        store: SqlStore, quota: Quota, clock: ManualClock, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "bot.sqlite3")
    job_id = await _finished(store, quota, "kept forever", tmp_path / "a.mp4")
    clock.advance(days=3650)
    forever = Retention(store, settings, clock=clock)
    forever.start()
    assert await forever.purge_once() == 0 and forever._task is None
    settings.privacy.retention_days = 1
    daily = Retention(store, settings, clock=clock, interval=3600)
    daily.start()
    await asyncio.wait_for(daily.turned.wait(), 30)  # the first purge runs as the task starts
    await daily.stop()
    assert daily.turns == 1
    job = await store.get_job(job_id)
    assert job is not None and job.prompt == ""
