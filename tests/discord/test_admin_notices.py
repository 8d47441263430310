"""The bot's admins told on Discord, not only in the log: the fal account failing (fal
answers 403 "User is locked. Reason: Exhausted balance") and budget alerts, through
real discord.py against the fake REST API, the real core, runner and simulator.
Without `[discord] admin_channel` each of `admin_users` gets a direct message; with
it, the channel gets one message."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.config import Settings
from bot.model import JobState
from bot.pause import ACCOUNT_TEXT
from tests.discord.conftest import dispatch
from tests.discord.payloads import ADMIN_ID, GUILD_ID, OTHER_CHANNEL_ID, USER_ID
from tests.discord.test_safety import Live, live, settings_set  # noqa: F401 (the fixture)

SECOND_ADMIN = ADMIN_ID + 100
ADMIN_CHANNEL = 700000000000000077
CLOSED_DMS = 50007  # Discord: Cannot send messages to this user


def dm_channel(user_id: int) -> int:
    return user_id + 7  # the fake's DM channel of a user


def texts(live: Live, channel: int) -> list[str]:  # noqa: F811
    return [m["content"] for m in live.fake.channel_messages(channel)]


def all_admin_notices(live: Live) -> list[str]:  # noqa: F811
    # Sent with the bot token (interaction answers to users are webhook messages).
    return [m["content"] for m in live.fake.messages.values()
            if "webhook_id" not in m and m["content"].startswith((ACCOUNT_TEXT, "Budget alert:"))]


async def job_costs(live: Live) -> int:  # noqa: F811
    """Run one short video to the end; its estimate (the budgets are set from it)."""
    dispatch(live.client, live.p.slash("video", {"prompt": "a paper boat", "duration": 1.0}))
    await live.video()
    job = await live.app.runner.wait(1)
    return int(job.estimate_credits)


async def test_a_fal_account_pause_tells_each_admin_once_by_dm(
        live: Live, settings: Settings, sim: Any) -> None:  # noqa: F811
    settings.discord.admin_users = [ADMIN_ID, SECOND_ADMIN]
    live.app.runner.rt.pause_poll_seconds = 0.05
    # The first admin has closed their DMs: the second is told all the same.
    live.fake.fail_next("POST", "/users/@me/channels", 403, code=CLOSED_DMS)
    sim.fail_account("locked")
    dispatch(live.client, live.p.slash("video", {"prompt": "a paper boat", "duration": 1.0}))
    await live.fake.wait_until(lambda: texts(live, dm_channel(SECOND_ADMIN)), what="the DM")
    [told] = texts(live, dm_channel(SECOND_ADMIN))
    assert told.startswith(ACCOUNT_TEXT) and "User is locked. Reason: Exhausted balance" in told
    assert texts(live, dm_channel(ADMIN_ID)) == []

    # The job waits; the pause is not told again while it does, nor for a refused command.
    assert (await live.app.store.get_job(1)).state is JobState.WAITING
    dispatch(live.client, live.p.slash("video", {"prompt": "another boat", "duration": 1.0}))
    await live.note(1)
    assert await live.app.runner.pauses.probe_once() is False
    await asyncio.sleep(0.3)
    assert all_admin_notices(live) == [told]
    assert "e2e-bot-token" not in told

    sim.fail_account(None)
    assert await live.app.runner.pauses.probe_once() is True
    done = await live.app.runner.wait(1)
    assert done.state is JobState.DONE, done.error_message
    assert all_admin_notices(live) == [told]


async def test_the_global_budget_alert_reaches_the_admin_channel_despite_a_mod_log(
        live: Live, settings: Settings) -> None:  # noqa: F811
    settings.discord.admin_channel = ADMIN_CHANNEL
    settings.discord.admin_users = [ADMIN_ID]
    dispatch(live.client, settings_set(live, "mod_log_channel", f"<#{OTHER_CHANNEL_ID}>"))
    await live.note(1)
    used = await job_costs(live)
    settings.quota.global_daily_credits = int(used * 2 / 0.8)
    dispatch(live.client, live.p.slash("video", {"prompt": "a second boat", "duration": 1.0},
                                       user_id=USER_ID + 50, user_name="bob"))
    await live.fake.wait_until(lambda: texts(live, ADMIN_CHANNEL), what="the admin channel")
    [told] = texts(live, ADMIN_CHANNEL)
    assert told.startswith("Budget alert: The bot has used") and "daily credits" in told
    # The server's moderators see it in their log as well; no admin was DMed.
    assert "Budget alert" in json.dumps(live.fake.channel_messages(OTHER_CHANNEL_ID))
    assert texts(live, dm_channel(ADMIN_ID)) == []


async def test_a_server_budget_alert_without_a_mod_log_is_dmed_to_the_admins(
        live: Live, settings: Settings) -> None:  # noqa: F811
    settings.discord.admin_users = [ADMIN_ID]
    used = await job_costs(live)
    settings.quota.workspace_monthly_credits = int(used * 2 / 0.8)
    dispatch(live.client, live.p.slash("video", {"prompt": "a second boat", "duration": 1.0},
                                       user_id=USER_ID + 50, user_name="bob"))
    await live.fake.wait_until(lambda: texts(live, dm_channel(ADMIN_ID)), what="the DM")
    [told] = texts(live, dm_channel(ADMIN_ID))
    assert told.startswith(f"Budget alert: This server (discord:{GUILD_ID}) has used")
    await live.app.runner.wait(2)
    assert all_admin_notices(live) == [told]
