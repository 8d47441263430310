from __future__ import annotations

from pathlib import Path

import pytest

from bot import catalog, grammar, routing
from bot.config import Settings
from bot.errors import PermissionDenied, QuotaExceeded, UsageError, UserError
from bot.floor import cheapest
from bot.model import JobState, MediaRef
from bot.ports import Place, User
from bot.quota import Floor, Quota, format_wait
from bot.store import SqlStore

from .conftest import (
    ADMIN,
    ALICE,
    BOB,
    DM,
    GUILD,
    OTHER_GUILD,
    ManualClock,
    make_request,
    make_settings,
)


def quota_with(store: SqlStore, clock: ManualClock, db_path: Path, **limits: object) -> Quota:
    return Quota(store, make_settings(db_path, **limits), clock=clock)


async def finish(store: SqlStore, job_id: int) -> None:
    await store.update_job(job_id, state=JobState.DONE)


# ---------------------------------------------------------------- refusals say what and when


async def test_daily_refusal_message(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    clock.now = clock.now.replace(hour=18, minute=48)
    quota = quota_with(store, clock, db_path, daily_credits=200, max_concurrent_jobs=100)
    for _ in range(4):
        await quota.admit(ALICE, GUILD, make_request(47))
    with pytest.raises(QuotaExceeded) as err:
        await quota.admit(ALICE, GUILD, make_request(21))
    assert str(err.value) == (
        "This job costs 21 credits but you have 12 of your 200 daily credits left. "
        "Your daily quota resets in 5 h 12 min (00:00 UTC)."
    )
    # Nothing of the refused job was written.
    assert len(await store.list_jobs(ALICE.key, limit=100)) == 4
    assert len(await store.ledger_rows()) == 4


async def test_monthly_refusal_message(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, daily_credits=200, monthly_credits=100,
                       max_concurrent_jobs=100)
    await quota.admit(ALICE, GUILD, make_request(90))
    with pytest.raises(QuotaExceeded) as err:
        await quota.admit(ALICE, GUILD, make_request(21))
    assert str(err.value) == (
        "This job costs 21 credits but you have 10 of your 100 monthly credits left. "
        "Your monthly quota resets in 1 day 5 h (1 May, 00:00 UTC)."
    )


async def test_job_bigger_than_the_whole_quota(quota: Quota) -> None:
    with pytest.raises(QuotaExceeded, match="costs 300 credits, more than your whole daily quota of 200 credits"):
        await quota.admit(ALICE, GUILD, make_request(300))


async def test_concurrent_refusal_message(quota: Quota, store: SqlStore) -> None:
    first = await quota.admit(ALICE, GUILD, make_request(1))
    await quota.admit(ALICE, GUILD, make_request(1))
    with pytest.raises(QuotaExceeded) as err:
        await quota.admit(ALICE, GUILD, make_request(1))
    assert str(err.value) == (
        "You already have 2 jobs running (your limit is 2). "
        "Wait for one to finish or cancel one with /cancel."
    )
    await finish(store, first.id)
    await quota.admit(ALICE, GUILD, make_request(1))


async def test_cooldown_refusal_message(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, cooldown_seconds=10)
    await quota.admit(ALICE, GUILD, make_request(1))
    clock.advance(seconds=2.5)
    with pytest.raises(QuotaExceeded) as err:
        await quota.admit(ALICE, GUILD, make_request(1))
    assert str(err.value) == "Please wait 8 s before starting another job."
    await quota.admit(BOB, GUILD, make_request(1))  # the cooldown is per user
    clock.advance(seconds=7.5)
    await quota.admit(ALICE, GUILD, make_request(1))


async def test_workspace_refusal_message(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, workspace_monthly_credits=100)
    await quota.admit(ALICE, GUILD, make_request(60))
    with pytest.raises(QuotaExceeded) as err:
        # The port's traits name the workspace: a Discord guild is a "server".
        await quota.admit(BOB, GUILD, make_request(50), workspace_word="server")
    assert str(err.value) == (
        "This job costs 50 credits but this server has 40 of its 100 monthly credits left. "
        "The server's budget resets in 1 day 5 h (1 May, 00:00 UTC)."
    )
    # Other guilds and direct messages have their own (or no) budget; admins are bound too.
    await quota.admit(BOB, OTHER_GUILD, make_request(50))
    await quota.admit(ALICE, DM, make_request(50))
    with pytest.raises(QuotaExceeded, match="this server has 40"):
        await quota.admit(ADMIN, GUILD, make_request(50), workspace_word="server")
    slack = Place("slack", "C1", "T1")
    await quota.admit(User("slack", "U1", "u"), slack, make_request(100))
    with pytest.raises(QuotaExceeded, match="this workspace has 0 of its 100"):
        await quota.admit(User("slack", "U2", "v"), slack, make_request(1))


async def test_global_refusal_message(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, global_daily_credits=50)
    await quota.admit(ALICE, GUILD, make_request(30))
    with pytest.raises(QuotaExceeded) as err:
        await quota.admit(BOB, OTHER_GUILD, make_request(30))
    assert str(err.value) == (
        "This job costs 30 credits but the bot has 20 of its 50 daily credits left for everyone. "
        "It resets in 5 h (00:00 UTC)."
    )
    clock.advance(hours=5)
    await quota.admit(BOB, OTHER_GUILD, make_request(30))


async def test_blocked_user_is_refused(quota: Quota, store: SqlStore) -> None:
    await store.set_blocked(ALICE.key, True)
    with pytest.raises(PermissionDenied, match="blocked"):
        await quota.admit(ALICE, GUILD, make_request(1))
    assert await store.list_jobs(ALICE.key) == []
    await store.set_blocked(ALICE.key, False)
    await quota.admit(ALICE, GUILD, make_request(1))


# ---------------------------------------------------------------- tiers, admins, windows


def tiered(db_path: Path) -> Settings:
    return make_settings(db_path, daily_credits=10, max_concurrent_jobs=1, tiers={
        "member": {"roles": ["member"], "daily_credits": 50, "priority": 1},
        "vip": {"users": ["discord:1001"], "daily_credits": 500, "max_concurrent_jobs": 3,
                "priority": 5},
        "staff": {"roles": ["staff"], "daily_credits": 100, "priority": 3},
    })


async def test_tier_by_role(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = Quota(store, tiered(db_path), clock=clock)
    carol = User("discord", "2001", "carol", roles=("member",))
    limits = quota.limits_for(carol)
    assert (limits.tier, limits.daily_credits, limits.max_concurrent_jobs) == ("member", 50, 1)
    await quota.admit(carol, GUILD, make_request(40))  # over the default 10, within the tier's 50
    staff_member = User("discord", "2002", "dave", roles=("member", "staff"))
    assert quota.limits_for(staff_member).tier == "staff"  # higher priority wins


async def test_tier_by_user_beats_roles(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = Quota(store, tiered(db_path), clock=clock)
    limits = quota.limits_for(ALICE)  # alice has role member and is listed in vip
    assert (limits.tier, limits.daily_credits, limits.max_concurrent_jobs) == ("vip", 500, 3)
    for _ in range(3):
        await quota.admit(ALICE, GUILD, make_request(100))
    with pytest.raises(QuotaExceeded, match="your limit is 3"):
        await quota.admit(ALICE, GUILD, make_request(100))


async def test_admin_set_tier_wins_and_is_checked(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = Quota(store, tiered(db_path), clock=clock)
    await quota.set_tier(ALICE.key, "member")
    assert quota.limits_for(ALICE, await store.get_user(ALICE.key)).tier == "member"
    with pytest.raises(UsageError, match="no tier 'gold'"):
        await quota.set_tier(ALICE.key, "gold")


async def test_admins_are_exempt_from_user_limits(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, daily_credits=10, monthly_credits=10,
                       max_concurrent_jobs=1, cooldown_seconds=60)
    for _ in range(3):
        await quota.admit(ADMIN, GUILD, make_request(25))
    status = await quota.status(ADMIN, GUILD)
    assert status.exempt and status.daily_used == 75 and status.running_jobs == 3
    assert "admin" in status.text()


async def test_daily_window_resets_at_midnight_utc(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, daily_credits=50, max_concurrent_jobs=100)
    job = await quota.admit(ALICE, GUILD, make_request(50))
    with pytest.raises(QuotaExceeded, match="daily"):
        await quota.admit(ALICE, GUILD, make_request(1))
    clock.advance(hours=4, minutes=59)
    with pytest.raises(QuotaExceeded, match="resets in 1 min"):
        await quota.admit(ALICE, GUILD, make_request(1))
    clock.advance(minutes=1)  # 00:00 UTC on 30 April
    await quota.admit(ALICE, GUILD, make_request(50))
    # Settling yesterday's job today changes yesterday's usage, not today's.
    await quota.settle(job.id, 0.10)
    status = await quota.status(ALICE, GUILD)
    assert (status.daily_used, status.monthly_used) == (50, 60)


async def test_monthly_window_resets_on_the_first(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, daily_credits=100, monthly_credits=100,
                       max_concurrent_jobs=100)
    await quota.admit(ALICE, GUILD, make_request(100))
    clock.advance(hours=5)  # a new day, the same month
    with pytest.raises(QuotaExceeded, match="monthly quota resets in 1 day"):
        await quota.admit(ALICE, GUILD, make_request(1))
    clock.advance(days=1)  # 1 May
    await quota.admit(ALICE, GUILD, make_request(100))


# ---------------------------------------------------------------- settle, refund, grant


async def test_settle_with_a_different_real_cost(quota: Quota, store: SqlStore) -> None:
    cheap = await quota.admit(ALICE, GUILD, make_request(21))
    assert await quota.settle(cheap.id, 0.1201) == 13  # rounded up
    dear = await quota.admit(ALICE, GUILD, make_request(21))
    assert await quota.settle(dear.id, 0.30) == 30
    assert (await quota.status(ALICE, GUILD)).daily_used == 43
    job = await store.get_job(dear.id)
    assert job is not None and (job.settled_credits, job.settled_usd) == (30, 0.30)
    # Idempotent: the second settle changes nothing and reports the first charge.
    assert await quota.settle(dear.id, 5.0) == 30
    await quota.refund(dear.id)  # refund after settle does nothing
    assert (await quota.status(ALICE, GUILD)).daily_used == 43
    assert [r["kind"] for r in await store.ledger_rows(dear.id)] == ["reserve", "settle"]
    assert await store.audit() == []


async def test_refund_is_idempotent(quota: Quota, store: SqlStore) -> None:
    job = await quota.admit(ALICE, GUILD, make_request(21))
    await quota.refund(job.id)
    await quota.refund(job.id)
    assert await quota.settle(job.id, 0.21) == 0  # settle after refund charges nothing
    assert (await quota.status(ALICE, GUILD)).daily_used == 0
    assert [r["kind"] for r in await store.ledger_rows(job.id)] == ["reserve", "refund"]
    fresh = await store.get_job(job.id)
    assert fresh is not None and fresh.settled_credits == 0
    with pytest.raises(LookupError):
        await quota.refund(424242)
    with pytest.raises(ValueError):
        await quota.settle(job.id, -1.0)


async def test_granted_credits_are_used_after_the_allowance(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    quota = quota_with(store, clock, db_path, daily_credits=50, max_concurrent_jobs=100)
    await quota.grant(ALICE.key, 40, by="root")
    first = await quota.admit(ALICE, GUILD, make_request(30))  # all from the allowance
    assert (await quota.status(ALICE, GUILD)).granted_credits == 40
    second = await quota.admit(ALICE, GUILD, make_request(30))  # 20 allowance + 10 granted
    status = await quota.status(ALICE, GUILD)
    assert (status.daily_used, status.daily_left, status.granted_credits) == (50, 0, 30)
    with pytest.raises(QuotaExceeded) as err:
        await quota.admit(ALICE, GUILD, make_request(31))
    assert "you have 0 of your 200" not in str(err.value)
    assert "0 of your 50 daily credits left and 30 granted credits" in str(err.value)
    await quota.admit(ALICE, GUILD, make_request(30))  # all granted
    assert (await quota.status(ALICE, GUILD)).granted_credits == 0
    # Cheaper than estimated: granted credits come back first.
    assert await quota.settle(second.id, 0.15) == 15
    status = await quota.status(ALICE, GUILD)
    assert (status.daily_used, status.granted_credits) == (45, 10)
    await quota.refund(first.id)
    assert (await quota.status(ALICE, GUILD)).daily_used == 15
    # Granted credits survive midnight.
    clock.advance(days=1)
    assert (await quota.status(ALICE, GUILD)).granted_credits == 10
    assert await store.audit() == []


async def test_grant_rules(quota: Quota) -> None:
    await quota.grant("slack:U7", 5, by="root")
    with pytest.raises(UserError, match="only 5 granted credits"):
        await quota.grant("slack:U7", -6, by="root")
    await quota.grant("slack:U7", -5, by="root")
    with pytest.raises(UsageError):
        await quota.grant("slack:U7", 0, by="root")
    with pytest.raises(UsageError, match="platform:id"):
        await quota.grant("U7", 5, by="root")


# ---------------------------------------------------------------- status and reports


async def test_status_text(store: SqlStore, clock: ManualClock, db_path: Path) -> None:
    clock.now = clock.now.replace(hour=20, minute=55)
    quota = quota_with(store, clock, db_path, max_concurrent_jobs=2)
    await quota.admit(ALICE, GUILD, make_request(42))
    status = await quota.status(ALICE, GUILD)
    assert (status.daily_used, status.daily_limit, status.daily_left) == (42, 200, 158)
    assert (status.monthly_used, status.monthly_left, status.running_jobs) == (42, 1958, 1)
    text = status.text()
    assert "Today: 42 of 200 credits used, 158 left (resets in 3 h 5 min)." in text
    assert "This month: 42 of 2000 credits used, 1958 left (resets in 1 day 3 h)." in text
    assert "Jobs running: 1 of 2." in text
    # The default extend model is LTX-2.3 extend: its default 5 s at $0.10 a second.
    assert "A typical job costs: LTX-2 5 s 720p ≈ 21 credits, keyframes 4, extend 50." in text


async def test_usage_reports(quota: Quota, clock: ManualClock) -> None:
    a = await quota.admit(ALICE, GUILD, make_request(21))
    await quota.settle(a.id, 0.25)
    b = await quota.admit(BOB, OTHER_GUILD, make_request(10))
    await quota.refund(b.id)
    await quota.admit(BOB, GUILD, make_request(7))
    await quota.grant(BOB.key, 100, by="root")  # grants are not usage
    by_user = {r.key: r for r in await quota.usage_by_user(days=1)}
    assert (by_user[ALICE.key].name, by_user[ALICE.key].jobs, by_user[ALICE.key].credits) == ("alice", 1, 25)
    assert by_user[ALICE.key].usd == pytest.approx(0.25)
    assert (by_user[BOB.key].jobs, by_user[BOB.key].credits) == (2, 7)
    by_ws = {r.key: r.credits for r in await quota.usage_by_workspace(days=30)}
    assert by_ws == {"discord:g1": 32, "discord:g2": 0}
    clock.advance(days=2)
    assert await quota.usage_by_user(days=1) == []
    assert len(await quota.usage_by_user(days=3)) == 2


def test_format_wait() -> None:
    assert [format_wait(s) for s in (0.2, 7, 59.5, 60, 3599, 3600, 18720, 86400, 90000, 2 * 86400 + 7200)] == [
        "1 s", "7 s", "60 s", "1 min", "59 min", "1 h", "5 h 12 min", "1 day", "1 day 1 h", "2 days 2 h"]


# ---------------------------------------------------------------- the pre-check, before any media


async def test_precheck_refuses_as_admit_would_and_writes_nothing(
    store: SqlStore, clock: ManualClock, db_path: Path
) -> None:
    quota = quota_with(store, clock, db_path, cooldown_seconds=10, max_concurrent_jobs=1)
    await store.set_blocked(BOB.key, True)
    with pytest.raises(PermissionDenied) as early:
        await quota.precheck(BOB, GUILD, None)
    with pytest.raises(PermissionDenied) as late:
        await quota.admit(BOB, GUILD, make_request(1))
    assert str(early.value) == str(late.value) == (
        "You are blocked from starting jobs with this bot. Ask an admin if you think this is a mistake.")
    await quota.precheck(ALICE, GUILD, Floor(1, exact=True))  # nothing stands in the way
    await quota.admit(ALICE, GUILD, make_request(1))
    ledger = await store.ledger_rows()
    for limit, config in (("concurrent", {"max_concurrent_jobs": 1}),
                          ("cooldown", {"max_concurrent_jobs": 5})):
        quota = quota_with(store, clock, db_path, cooldown_seconds=10, **config)
        with pytest.raises(QuotaExceeded) as early_limit:
            await quota.precheck(ALICE, GUILD, None)
        with pytest.raises(QuotaExceeded) as late_limit:
            await quota.admit(ALICE, GUILD, make_request(1))
        assert early_limit.value.limit == late_limit.value.limit == limit
        assert str(early_limit.value) == str(late_limit.value)
    assert await store.ledger_rows() == ledger  # the pre-check only reads
    assert len(await store.list_jobs(ALICE.key)) == 1


async def test_precheck_prices_the_least_the_command_can_cost(
    store: SqlStore, clock: ManualClock, db_path: Path
) -> None:
    clock.now = clock.now.replace(hour=18, minute=48)
    quota = quota_with(store, clock, db_path, max_concurrent_jobs=100)
    for _ in range(4):
        await quota.admit(ALICE, GUILD, make_request(47))
    exact = "This job costs 21 credits but you have 12 of your 200 daily credits left."
    with pytest.raises(QuotaExceeded, match=exact):
        await quota.precheck(ALICE, GUILD, Floor(21, exact=True))
    with pytest.raises(QuotaExceeded, match="This job costs at least 21 credits but you have 12"):
        await quota.precheck(ALICE, GUILD, Floor(21, exact=False))
    await quota.precheck(ALICE, GUILD, Floor(12, exact=False))
    # None: the command's cost can't be known yet; only cost-free limits apply.
    await quota.precheck(ALICE, GUILD, None)


def test_the_floor_is_the_cheapest_reading_of_the_attachments(db_path: Path) -> None:
    settings = make_settings(db_path)
    urls = ["https://cdn.example/a.png"]
    text = grammar.parse("video", "a fox --seconds 2")
    assert cheapest(text, [], settings) == Floor(
        routing.build_request(text, [], settings).estimate.credits, exact=True)
    # One attachment: an image (LTX-2, priced by pixels) or a video (13B, a flat price).
    assert cheapest(grammar.parse("video", "a fox"), urls, settings) == Floor(4, exact=False)
    assert cheapest(grammar.parse("keyframes", "a flower"), urls * 8, settings) == Floor(4, exact=True)
    assert cheapest(grammar.parse("video", ""), urls, settings) is None  # no prompt: no request


def test_the_floor_is_never_above_what_a_prepared_image_costs(db_path: Path) -> None:
    settings = make_settings(db_path)
    command = grammar.parse("video", "a fox --model ltx-2 --seconds 3")
    floor = cheapest(command, ["https://cdn.example/a.png"], settings)
    assert floor is not None and not floor.exact
    request = routing.build_request(command, [MediaRef(kind="image", url="u")], settings)
    sides = range(64, 1281, 32)
    costs = {catalog.estimate(request.endpoint, request.input, 100, settings.prices,
                              input_aspect=w / h).credits for w in sides for h in sides}
    assert floor.credits == min(costs) and min(costs) < max(costs)
