"""Random sequences of quota operations against a real store: a SQLite file, and a
PostgreSQL database (fewer examples there: each costs a database and round trips).

The oracle recomputes every limit from the raw ledger rows (not from the totals
the store keeps beside them) and checks that each admission is granted exactly
when no limit would be broken, and that the books always balance.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.errors import QuotaExceeded
from bot.model import JobState
from bot.ports import Place, User
from bot.quota import Quota
from bot.store import SqlStore, open_store, workspace_key_of

from .conftest import ManualClock, PgDatabases, make_request, make_settings


@dataclass(frozen=True)
class UserLimits:
    daily: int
    monthly: int
    concurrent: int
    cooldown: float
    exempt: bool = False


USERS = [
    User("discord", "1", "plain"),
    User("discord", "2", "vip", roles=("vip",)),
    User("discord", "3", "admin", is_admin=True),
]
PLACES = [Place("discord", "c1", "g1"), Place("discord", "c2", "g2"), Place("discord", "dm")]


@dataclass(frozen=True)
class Policy:
    daily: int
    monthly: int
    concurrent: int
    cooldown: float
    workspace: int  # 0 = none
    global_daily: int  # 0 = none

    def limits(self, user_index: int) -> UserLimits:
        if user_index == 2:
            return UserLimits(0, 0, 0, 0, exempt=True)
        if user_index == 1:  # the vip tier: more per day, one more job at once
            return UserLimits(self.daily + 50, self.monthly, self.concurrent + 1, self.cooldown)
        return UserLimits(self.daily, self.monthly, self.concurrent, self.cooldown)


policies = st.builds(
    Policy,
    daily=st.sampled_from([30, 100]),
    monthly=st.sampled_from([60, 300]),
    concurrent=st.sampled_from([1, 2]),
    cooldown=st.sampled_from([0.0, 20.0]),
    workspace=st.sampled_from([0, 70, 200]),
    global_daily=st.sampled_from([0, 50, 150]),
)
admit = st.tuples(st.just("admit"), st.integers(0, 2), st.integers(0, 2),
                  st.sampled_from([0, 1, 5, 10, 21, 30, 45, 60, 90]))
op = st.one_of(
    # Admissions are listed twice so that sequences reach the limits often.
    admit,
    admit,
    st.tuples(st.just("settle"), st.integers(0, 1000), st.integers(0, 150)),
    st.tuples(st.just("refund"), st.integers(0, 1000)),
    st.tuples(st.just("grant"), st.integers(0, 2), st.integers(1, 60)),
    st.tuples(st.just("advance"), st.sampled_from([1, 25, 25, 3600, 6 * 3600, 86400, 20 * 86400])),
)


def expected_refusal(policy: Policy, user_index: int, place: Place, cost: int, now: datetime,
                     ledger: list[dict[str, Any]], jobs: list[Any]) -> bool:
    """Would any limit be broken by admitting `cost` now? Computed from raw rows."""
    user, limits = USERS[user_index], policy.limits(user_index)
    day, month = now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")
    job_rows = [r for r in ledger if r["kind"] != "grant"]
    mine = [r for r in job_rows if r["user_key"] == user.key]
    regular_day = sum(r["credits"] - r["bonus"] for r in mine if r["day"] == day)
    regular_month = sum(r["credits"] - r["bonus"] for r in mine if r["month"] == month)
    balance = (sum(r["credits"] for r in ledger if r["kind"] == "grant" and r["user_key"] == user.key)
               - sum(r["bonus"] for r in mine))
    ws = workspace_key_of(place)
    ws_used = sum(r["credits"] for r in job_rows if r["workspace_key"] == ws and r["month"] == month)
    global_used = sum(r["credits"] for r in job_rows if r["day"] == day)
    my_jobs = [j for j in jobs if j.owner_key == user.key]
    running = sum(1 for j in my_jobs if not j.state.final)
    last = max((j.created_at for j in my_jobs), default=None)
    free = max(0, min(limits.daily - regular_day, limits.monthly - regular_month))
    reasons = [
        bool(policy.workspace) and ws is not None and ws_used + cost > policy.workspace,
        bool(policy.global_daily) and global_used + cost > policy.global_daily,
    ]
    if not limits.exempt:
        reasons += [
            cost - free > balance,
            running >= limits.concurrent,
            last is not None and (now - last).total_seconds() < limits.cooldown,
        ]
    return any(reasons)


async def check_books(policy: Policy, store: SqlStore) -> None:
    assert await store.audit() == []
    ledger = await store.ledger_rows()
    # Granted credits never go below zero.
    balance: dict[str, int] = defaultdict(int)
    for r in ledger:
        balance[r["user_key"]] += r["credits"] if r["kind"] == "grant" else -r["bonus"]
    assert all(v >= 0 for v in balance.values())
    # Per job: reserved = settled + refunded + outstanding.
    by_job: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in ledger:
        if r["job_id"] is not None:
            by_job[r["job_id"]].append(r)
    for job_id, rows in by_job.items():
        kinds = [r["kind"] for r in rows]
        assert kinds[0] == "reserve" and kinds.count("reserve") == 1
        assert kinds.count("settle") + kinds.count("refund") <= 1
        # A job never gives back more granted credits than it drew.
        assert 0 <= sum(r["bonus"] for r in rows) <= sum(r["credits"] for r in rows)
        reserved = rows[0]["credits"]
        job = await store.get_job(job_id)
        assert job is not None and job.estimate_credits == reserved
        settled = job.settled_credits if "settle" in kinds else 0
        refunded = reserved if "refund" in kinds else 0
        outstanding = reserved if len(kinds) == 1 else 0
        settle_delta = sum(r["credits"] for r in rows if r["kind"] == "settle")
        assert reserved + settle_delta == settled or "settle" not in kinds
        assert reserved == (settled - settle_delta if "settle" in kinds else 0) + refunded + outstanding
    # No limit exceeded, except by what settlements overran their estimates.
    day_use: dict[tuple[str, str], int] = defaultdict(int)
    month_use: dict[tuple[str, str], int] = defaultdict(int)
    ws_use: dict[tuple[str, str], int] = defaultdict(int)
    global_use: dict[str, int] = defaultdict(int)
    over: dict[tuple[str, str], int] = defaultdict(int)
    for r in ledger:
        if r["kind"] == "grant":
            continue
        regular = r["credits"] - r["bonus"]
        day_use[(r["user_key"], r["day"])] += regular
        month_use[(r["user_key"], r["month"])] += regular
        global_use[r["day"]] += r["credits"]
        if r["workspace_key"]:
            ws_use[(r["workspace_key"], r["month"])] += r["credits"]
        if r["kind"] == "settle" and r["credits"] > 0:
            for key in (("day", r["user_key"], r["day"]), ("month", r["user_key"], r["month"]),
                        ("ws", r["workspace_key"], r["month"]), ("global", "*", r["day"])):
                over[(key[0] + ":" + str(key[1]), key[2])] += r["credits"]
    for index, user in enumerate(USERS):
        limits = policy.limits(index)
        if limits.exempt:
            continue
        for (key, day), used in day_use.items():
            if key == user.key:
                assert used <= limits.daily + over[("day:" + key, day)]
        for (key, month), used in month_use.items():
            if key == user.key:
                assert used <= limits.monthly + over[("month:" + key, month)]
    for (ws, month), used in ws_use.items():
        assert not policy.workspace or used <= policy.workspace + over[("ws:" + ws, month)]
    for day, used in global_use.items():
        assert not policy.global_daily or used <= policy.global_daily + over[("global:*", day)]


async def run(policy: Policy, ops: list[tuple[Any, ...]], where: str | Path) -> None:
    clock = ManualClock(datetime(2026, 1, 30, 22, 0, tzinfo=UTC))
    # Quota reads only [quota]; the store is opened at `where`.
    cfg = make_settings(Path("unused.sqlite3"), daily_credits=policy.daily, monthly_credits=policy.monthly,
                        max_concurrent_jobs=policy.concurrent, cooldown_seconds=policy.cooldown,
                        workspace_monthly_credits=policy.workspace,
                        global_daily_credits=policy.global_daily,
                        tiers={"vip": {"roles": ["vip"], "daily_credits": policy.daily + 50,
                                       "max_concurrent_jobs": policy.concurrent + 1}})
    store = await open_store(where, clock=clock)
    try:
        quota = Quota(store, cfg, clock=clock)
        job_ids: list[int] = []
        for step in ops:
            kind = step[0]
            if kind == "admit":
                _, u, p, cost = step
                expect_refusal = expected_refusal(policy, u, PLACES[p], cost, clock(),
                                                  await store.ledger_rows(),
                                                  [j for x in USERS for j in await store.list_jobs(x.key, 10_000)])
                try:
                    job = await quota.admit(USERS[u], PLACES[p], make_request(cost))
                except QuotaExceeded as err:
                    event("refused: " + " ".join(str(err).split(" ")[:3]))
                    assert expect_refusal, "refused although every limit had room"
                else:
                    event("admitted")
                    assert not expect_refusal, "admitted although a limit was full"
                    job_ids.append(job.id)
            elif kind in ("settle", "refund") and job_ids:
                # As the job runner does: a job ends, then its cost is settled or refunded.
                job_id = job_ids[step[1] % len(job_ids)]
                if kind == "settle":
                    await store.update_job(job_id, state=JobState.DONE)
                    await quota.settle(job_id, step[2] / 100)
                else:
                    await store.update_job(job_id, state=JobState.FAILED)
                    await quota.refund(job_id)
            elif kind == "grant":
                await quota.grant(USERS[step[1]].key, step[2], by="test")
            elif kind == "advance":
                clock.advance(seconds=step[1])
            await check_books(policy, store)
    finally:
        await store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, st.lists(op, min_size=20, max_size=60))
def test_random_operation_sequences_keep_the_books(policy: Policy, ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(policy, ops, Path(directory) / "ledger.sqlite3"))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, ops=st.lists(op, min_size=20, max_size=60))
def test_random_operation_sequences_keep_the_books_on_postgresql(
    pg_databases: PgDatabases, policy: Policy, ops: list[tuple[Any, ...]]
) -> None:
    url = pg_databases.lend()
    try:
        asyncio.run(run(policy, ops, url))
    finally:
        pg_databases.give_back(url)
