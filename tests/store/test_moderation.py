"""Reports (once per user and job) and alerts (once per key), on both backends, also
when two stores on one database race for the same claim."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.store import SqlStore, open_store
from bot.store.moderation import Moderation

from .scenarios import ManualClock


async def test_a_report_is_kept_once_per_user_and_job(store: SqlStore, clock: ManualClock) -> None:
    mod = Moderation(store, clock)
    assert await mod.report(1, "discord:5", "eve", "discord:1", logged=True) is True
    assert await mod.report(1, "discord:5", "eve", "discord:1", logged=False) is False
    assert await mod.report(1, "discord:6", "bob", "discord:1", logged=False) is True
    clock.advance(days=2)
    assert await mod.report(2, "slack:U1", "ann", "slack:T1", logged=False) is True
    since = clock() - timedelta(days=1)
    [newest] = await mod.reports(None, since)
    assert (newest.job_id, newest.user_key, newest.scope, newest.logged) == (2, "slack:U1", "slack:T1", False)
    everything = await mod.reports("discord:1", since - timedelta(days=5))
    assert sorted((r.user_key, r.logged) for r in everything) == [("discord:5", True), ("discord:6", False)]


async def test_an_alert_is_claimed_once_across_stores(where: str | Path, clock: ManualClock) -> None:
    first, second = await open_store(where, clock=clock), await open_store(where, clock=clock)
    try:
        claims = await asyncio.gather(*(Moderation(s, clock).claim_alert("budget:global:2026-12-01")
                                        for s in (first, second, first, second)))
        assert sorted(claims) == [False, False, False, True]
        assert await Moderation(second, clock).claim_alert("budget:global:2026-12-02") is True
    finally:
        await first.close()
        await second.close()
