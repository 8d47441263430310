"""The bot's admins told on Slack, not only in the log: the fal account failing (fal
answers 403 "User is locked. Reason: Exhausted balance") and budget alerts, through
real slack-bolt over signed HTTP against the fake Web API, the real core, runner and
simulator. Without `[slack] admin_channel` each of `admin_users` gets a direct message
(conversations.open + chat.postMessage); with it, the channel gets one message."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.config import Settings
from bot.model import JobState
from bot.pause import ACCOUNT_TEXT
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import slash_command
from tests.slack.test_safety import MOD, live, note  # noqa: F401 (the fixture)

ADMIN, SECOND_ADMIN = "U0ADMIN", "U0ADMIN2"
ADMIN_CHANNEL = "C0ADMINS"
LOG = "C0009"


def texts(fake: FakeSlack, channel: str) -> list[str]:
    return [m.text for m in fake.live_messages(channel)]


def admin_notices(fake: FakeSlack) -> list[str]:
    return [m.text for m in fake.live_messages()
            if m.text.startswith((ACCOUNT_TEXT, "Budget alert:"))]


async def job_costs(live: Any) -> int:  # noqa: F811
    """Run one short video to the end; its estimate (the budgets are set from it)."""
    fake, sender, app = live
    await sender.command(slash_command("a red kite --seconds 1"))
    await fake.wait_for(lambda: fake.named("files.completeUploadExternal"), limit=60)
    job = await app.runner.wait(1)
    return int(job.estimate_credits)


async def test_a_fal_account_pause_tells_each_admin_once_by_dm(
        live: Any, settings: Settings, sim: Any) -> None:  # noqa: F811
    fake, sender, app = live
    settings.slack.admin_users = [ADMIN, f"slack:{SECOND_ADMIN}", SECOND_ADMIN]
    app.runner.rt.pause_poll_seconds = 0.05
    # The first admin's DM cannot be opened: the second is told all the same.
    fake.inject("conversations.open", status=500)
    sim.fail_account("locked")
    await sender.command(slash_command("a red kite --seconds 1"))
    [told] = await fake.wait_for(lambda: texts(fake, f"D{SECOND_ADMIN}"), limit=30)
    assert told.startswith(ACCOUNT_TEXT) and "User is locked. Reason: Exhausted balance" in told
    assert texts(fake, f"D{ADMIN}") == []
    assert [c.params["users"] for c in fake.named("conversations.open")] == [ADMIN, SECOND_ADMIN]

    # The job waits; the pause is not told again while it does, nor for a refused command.
    assert (await app.store.get_job(1)).state is JobState.WAITING
    await sender.command(slash_command("another kite --seconds 1"))
    assert (await note(fake, "U0001", 1)).startswith(ACCOUNT_TEXT)
    assert await app.runner.pauses.probe_once() is False
    await asyncio.sleep(0.3)
    assert admin_notices(fake) == [told]
    assert fake.bot_token not in told

    sim.fail_account(None)
    assert await app.runner.pauses.probe_once() is True
    done = await app.runner.wait(1)
    assert done.state is JobState.DONE, done.error_message
    assert admin_notices(fake) == [told]


async def test_the_global_budget_alert_reaches_the_admin_channel_despite_a_mod_log(
        live: Any, settings: Settings) -> None:  # noqa: F811
    fake, sender, _app = live
    settings.slack.admin_channel = ADMIN_CHANNEL
    settings.slack.admin_users = [ADMIN]
    await sender.command(slash_command(f"admin settings set mod_log_channel <#{LOG}|mods>", user=MOD))
    await note(fake, MOD, 1)
    used = await job_costs(live)
    settings.quota.global_daily_credits = int(used * 2 / 0.8)
    await sender.command(slash_command("a second kite --seconds 1", user="U0BOB"))
    [told] = await fake.wait_for(lambda: texts(fake, ADMIN_CHANNEL), limit=30)
    assert told.startswith("Budget alert: The bot has used") and "daily credits" in told
    # The workspace's moderators see it in their log as well; no admin was DMed.
    await fake.wait_for(lambda: [m for m in fake.live_messages(LOG) if "Budget alert" in str(m)])
    assert fake.named("conversations.open") == []


async def test_a_workspace_budget_alert_without_a_mod_log_is_dmed_to_the_admins(
        live: Any, settings: Settings) -> None:  # noqa: F811
    fake, sender, app = live
    settings.slack.admin_users = [ADMIN]
    used = await job_costs(live)
    settings.quota.workspace_monthly_credits = int(used * 2 / 0.8)
    await sender.command(slash_command("a second kite --seconds 1", user="U0BOB"))
    [told] = await fake.wait_for(lambda: texts(fake, f"D{ADMIN}"), limit=30)
    assert told.startswith("Budget alert: This workspace (slack:T0001) has used")
    await app.runner.wait(2)
    assert admin_notices(fake) == [told]
