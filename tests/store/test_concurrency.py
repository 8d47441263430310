"""Exactness under contention: many admissions at once never overshoot a limit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.errors import QuotaExceeded
from bot.ports import User
from bot.quota import Quota
from bot.store import SqlStore, open_store

from .scenarios import ALICE, BOB, CASES, GUILD, ManualClock, make_request, make_settings


def callers(single_user: bool) -> list[User]:
    if single_user:
        return [ALICE] * 200
    return [User("discord", str(5000 + i), f"user{i}") for i in range(200)]


async def admit_all(quotas: list[Quota], users: list[User]) -> list[bool]:
    async def one(i: int, user: User) -> bool:
        try:
            await quotas[i % len(quotas)].admit(user, GUILD, make_request(10))
        except QuotaExceeded:
            return False
        return True

    return await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))


@pytest.mark.parametrize("case", sorted(CASES))
async def test_200_simultaneous_admits_admit_exactly_10(
    case: str, store: SqlStore, clock: ManualClock, db_path: Path
) -> None:
    limits, single = CASES[case]
    quota = Quota(store, make_settings(db_path, **limits), clock=clock)
    results = await admit_all([quota], callers(single))
    assert results.count(True) == 10
    assert len(await store.unfinished_jobs()) == 10
    assert await store.audit() == []


@pytest.mark.parametrize("case", sorted(CASES))
async def test_two_connections_to_one_store_admit_exactly_10(
    case: str, store: SqlStore, clock: ManualClock, db_path: Path, where: str | Path
) -> None:
    limits, single = CASES[case]
    settings = make_settings(db_path, **limits)
    other = await open_store(where, clock=clock)
    try:
        quotas = [Quota(store, settings, clock=clock), Quota(other, settings, clock=clock)]
        # Even-numbered callers go through one connection, odd ones through the other.
        results = await admit_all(quotas, callers(single))
    finally:
        await other.close()
    assert results.count(True) == 10
    assert len(await store.unfinished_jobs()) == 10
    assert await store.audit() == []


async def test_concurrent_settle_and_refund_close_a_job_once(quota: Quota, store: SqlStore) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(21))
    ops = [quota.settle(job.id, 0.30) for _ in range(10)] + [quota.refund(job.id) for _ in range(10)]
    await asyncio.gather(*ops)
    kinds = [r["kind"] for r in await store.ledger_rows(job.id)]
    assert kinds[0] == "reserve" and len(kinds) == 2
    assert await store.audit() == []


async def test_admissions_settles_and_refunds_at_once_never_deadlock(
    store: SqlStore, clock: ManualClock, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One workspace, mostly one user, granted credits in play: the transactions want the
    # same rows (user, job, totals), each code path in its own order. On PostgreSQL a
    # deadlock would show as a retried transaction.
    quota = Quota(store, make_settings(db_path, daily_credits=200, monthly_credits=100_000,
                                       max_concurrent_jobs=1000), clock=clock)
    await quota.grant(ALICE.key, 400, by="test")
    first = [await quota.admit(ALICE, GUILD, make_request(10)) for _ in range(30)]
    assert (await store.get_user(ALICE.key)).bonus_credits == 300  # type: ignore[union-attr]
    ops = [quota.admit(ALICE if i % 2 else BOB, GUILD, make_request(3)) for i in range(40)]
    ops += [quota.settle(j.id, 0.07) for j in first[::2]] + [quota.refund(j.id) for j in first[1::2]]
    with caplog.at_level(logging.INFO, logger="bot.store"):
        await asyncio.gather(*ops)
    assert "retried" not in caplog.text
    assert await store.audit() == []
