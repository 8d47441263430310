"""A workspace's own safety settings on Slack: its admins (users.info) change them with
`/ltx admin settings`, the blocklist and allowed channels refuse before anything runs,
and a direct message without a mention (message.im) starts a job where DMs are allowed.
Real slack-bolt over signed HTTP against the fake Web API, the real core and simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.slack_app import SlackRunner
from bot.config import Settings
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import SignedSender, app_mention, slash_command

MOD = "U0MOD"
DM = "D0001"


@pytest.fixture
async def live(app: Any, settings: Settings, fake_slack: FakeSlack) -> AsyncIterator[tuple[FakeSlack, SignedSender, Any]]:
    slack = settings.slack
    slack.bot_token = fake_slack.bot_token  # type: ignore[assignment]
    slack.signing_secret = SIGNING_SECRET  # type: ignore[assignment]
    slack.api_url = fake_slack.api_url
    slack.mode, slack.host, slack.port = "http", "127.0.0.1", 0
    fake_slack.workspace_admins.add(MOD)
    runner = SlackRunner(app, settings, min_edit_interval=0.0)
    await runner.start()
    assert runner.adapter.url is not None
    sender = SignedSender(runner.adapter.url, SIGNING_SECRET)
    yield fake_slack, sender, app
    await sender.close()
    await runner.close()


async def note(fake: FakeSlack, user: str, count: int) -> str:
    found = await fake.wait_for(lambda: [e.text for e in fake.ephemerals if e.user == user][count - 1:],
                                limit=60)
    return str(found[0])


def direct_message(text: str, *, channel: str = DM, channel_type: str = "im") -> dict[str, Any]:
    envelope = app_mention(text, channel=channel)
    envelope["event"].update(type="message", channel_type=channel_type)
    return envelope


async def test_a_workspace_admin_sets_the_blocklist_and_it_refuses(live: Any) -> None:
    fake, sender, app = live
    await sender.command(slash_command("admin settings set blocklist forbid, bad phrase", user=MOD))
    assert await note(fake, MOD, 1) == "blocklist is now forbid, bad phrase in this workspace."
    assert [c.params["user"] for c in fake.calls if c.method == "users.info"] == [MOD]
    await sender.command(slash_command("a ｆ o r b í d cat"))
    assert await note(fake, "U0001", 1) == "That prompt is not allowed here."
    await sender.command(slash_command("a calm lake --negative bad.phrase"))
    assert await note(fake, "U0001", 2) == "That prompt is not allowed here."
    assert await app.store.list_jobs("slack:U0001") == [] and await app.store.ledger_rows() == []
    # A member who is no workspace admin: refused; grants stay with the operator's admins.
    await sender.command(slash_command("admin settings show"))
    assert "Admin commands are for the bot's admins" in await note(fake, "U0001", 3)
    await sender.command(slash_command("admin grant U0001 5", user=MOD))
    assert "admin grant is for the bot's operator admins" in await note(fake, MOD, 2)


async def test_allowed_channels_point_to_where_jobs_start(live: Any) -> None:
    fake, sender, app = live
    await sender.command(slash_command("admin settings set allowed_channels <#C0002|art>", user=MOD))
    assert await note(fake, MOD, 1) == "allowed_channels is now <#C0002> in this workspace."
    await sender.command(slash_command("a cat --seconds 1"))
    assert await note(fake, "U0001", 1) == ("In this workspace jobs start only in <#C0002>. "
                                            "Please start yours there.")
    assert await app.store.list_jobs("slack:U0001") == []


async def test_a_direct_message_without_a_mention_works_as_a_mention(live: Any) -> None:
    fake, sender, app = live
    await sender.event(direct_message("a paper boat --seconds 1"))
    await fake.wait_for(lambda: [f for f in fake.files.values()
                                 if f.completed and f.name.endswith(".mp4") and f.channel == DM], limit=60)
    [job] = await app.store.list_jobs("slack:U0001")
    assert job.prompt == "a paper boat" and job.place.channel == DM
    # A channel message without a mention is not for the bot.
    answer = await sender.event(direct_message("just chatting", channel="C0001", channel_type="channel"))
    assert answer.status_code == 200
    assert len(await app.store.list_jobs("slack:U0001")) == 1


async def test_a_workspace_that_turns_dms_off_gets_a_pointer(live: Any) -> None:
    fake, sender, app = live
    await sender.command(slash_command("admin settings set allow_dms off", user=MOD))
    assert await note(fake, MOD, 1) == "allow_dms is now off in this workspace."
    await sender.event(direct_message("a paper boat --seconds 1"))
    assert (await note(fake, "U0001", 1)).startswith("Jobs can't be started in direct messages here.")
    assert await app.store.list_jobs("slack:U0001") == []


async def test_the_moderation_log_gets_refused_prompts(live: Any) -> None:
    fake, sender, _app = live
    # Slack's commands run side by side once acknowledged: each waits for the one before.
    await sender.command(slash_command("admin settings set mod_log_channel <#C0009|mods>", user=MOD))
    await note(fake, MOD, 1)
    await sender.command(slash_command("admin settings set blocklist forbid", user=MOD))
    await note(fake, MOD, 2)
    await sender.command(slash_command("a f-o-r-b-i-d cat"))
    assert await note(fake, "U0001", 1) == "That prompt is not allowed here."
    [entry] = await fake.wait_for(lambda: fake.live_messages("C0009"), limit=60)
    assert "Blocklist refused a prompt" in str(entry) and "a f-o-r-b-i-d cat" in str(entry)
