"""A server's own safety settings on Discord: Manage Server members change them with
/ltx-admin settings, the blocklist and the age-restricted rule refuse before anything
runs, and a direct message without a mention starts a job where DMs are allowed.
Real discord.py against the fake REST API, the real core, runner and simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest

from adapters.discord_bot import DiscordRunner, LtxClient
from bot.config import Settings
from tests.discord.conftest import dispatch, dispatch_message
from tests.discord.fake_api import EPHEMERAL, FakeDiscord
from tests.discord.payloads import STRANGER_ID, USER_ID, Payloads

MOD_ID = 600000000000000009


@dataclass
class Live:
    app: Any
    runner: DiscordRunner
    fake: FakeDiscord
    p: Payloads

    @property
    def client(self) -> LtxClient:
        return self.runner.client

    def notes(self) -> list[str]:
        return [m["content"] for mid, m in self.fake.messages.items()
                if m["flags"] & EPHEMERAL and mid not in self.fake.deleted and m["content"]]

    async def note(self, count: int) -> str:
        await self.fake.wait_until(lambda: len(self.notes()) >= count, what=f"note #{count}")
        return self.notes()[count - 1]

    async def video(self) -> dict[str, Any]:
        call = await self.fake.wait_for(
            lambda c: c.method == "POST" and c.status == 200
            and any(f.filename.endswith(".mp4") for f in c.files), limit=30, what="a video")
        return self.fake.messages[int(call.response["id"])]


@pytest.fixture
async def live(app: Any, fake: FakeDiscord, settings: Settings, payloads: Payloads) -> AsyncIterator[Live]:
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    runner = DiscordRunner(app, settings)
    await runner.login()
    try:
        yield Live(app, runner, fake, payloads)
    finally:
        await runner.close()


def as_mod(payload: dict[str, Any]) -> dict[str, Any]:
    """The interaction's member has Manage Server in this guild (and is no configured admin)."""
    payload["member"]["permissions"] = str(discord.Permissions(manage_guild=True).value)
    return payload


def settings_set(live: Live, name: str, value: str, *, user_id: int = MOD_ID) -> dict[str, Any]:
    return as_mod(live.p.slash("ltx-admin", {"action": "set", "name": name, "value": value},
                               sub="settings", user_id=user_id, user_name="mod"))


async def test_a_manage_server_member_sets_the_blocklist_and_it_refuses(live: Live) -> None:
    dispatch(live.client, settings_set(live, "blocklist", "forbid"))
    assert await live.note(1) == "blocklist is now forbid in this server."
    dispatch(live.client, live.p.slash("video", {"prompt": "a ｆ.ｏ.ｒ.ｂ.ｉ.ｄ cat"}))
    assert await live.note(2) == "That prompt is not allowed here."
    dispatch(live.client, live.p.slash("video", {"prompt": "a calm lake", "negative_prompt": "F O R B I D"}))
    assert await live.note(3) == "That prompt is not allowed here."
    assert await live.app.store.list_jobs(f"discord:{USER_ID}") == []
    assert await live.app.store.ledger_rows() == []
    # The server's admin sees the change in the audit; a member without Manage Server can't.
    dispatch(live.client, as_mod(live.p.slash("ltx-admin", {"days": 7}, sub="audit", user_id=MOD_ID)))
    assert f"discord:{MOD_ID}: settings set blocklist: 1 entries" in await live.note(4)
    dispatch(live.client, live.p.slash("ltx-admin", {"action": "show"}, sub="settings",
                                       user_id=STRANGER_ID))
    assert "Admin commands require" in await live.note(5)
    # Grants stay with the operator's admins.
    dispatch(live.client, as_mod(live.p.slash("ltx-admin", {"credits": 5}, sub="grant",
                                              users={"user": USER_ID}, user_id=MOD_ID)))
    assert "Admin commands require" in await live.note(6)


async def test_age_restricted_only_points_to_an_nsfw_channel(live: Live) -> None:
    dispatch(live.client, settings_set(live, "age_restricted_only", "on"))
    assert await live.note(1) == "age_restricted_only is now on in this server."
    dispatch(live.client, live.p.slash("video", {"prompt": "a cat", "duration": 1.0}))
    assert await live.note(2) == ("In this server jobs start only in age-restricted channels. "
                                  "Please start yours in one of those.")
    assert await live.app.store.list_jobs(f"discord:{USER_ID}") == []
    nsfw = live.p.slash("video", {"prompt": "a cat", "duration": 1.0})
    nsfw["channel"]["nsfw"] = True
    dispatch(live.client, nsfw)
    await live.video()


async def test_allowed_channels_point_to_the_channel(live: Live) -> None:
    dispatch(live.client, settings_set(live, "allowed_channels", "<#123>"))
    assert await live.note(1) == "allowed_channels is now <#123> in this server."
    dispatch(live.client, live.p.slash("video", {"prompt": "a cat"}))
    assert await live.note(2) == "In this server jobs start only in <#123>. Please start yours there."


async def test_a_direct_message_without_a_mention_works_as_a_mention(
        app: Any, fake: FakeDiscord, settings: Settings) -> None:
    settings.discord.allow_dms = True
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    runner = DiscordRunner(app, settings)
    await runner.login()
    try:
        dm = Payloads(fake, guild_id=None, channel_id=USER_ID + 7)
        dispatch_message(runner.client, dm.message(content="a paper boat --seconds 1"))
        await fake.wait_for(lambda c: c.method == "POST" and c.status == 200
                            and any(f.filename.endswith(".mp4") for f in c.files),
                            limit=30, what="a video in the DM")
        job = (await app.store.list_jobs(f"discord:{USER_ID}"))[0]
        assert job.prompt == "a paper boat" and job.place.workspace is None
    finally:
        await runner.close()


async def test_without_allow_dms_a_direct_message_is_left_alone(
        app: Any, fake: FakeDiscord, settings: Settings) -> None:
    settings.discord.token = "e2e-bot-token"  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    runner = DiscordRunner(app, settings)
    await runner.login()
    try:
        dm = Payloads(fake, guild_id=None, channel_id=USER_ID + 7)
        dispatch_message(runner.client, dm.message(content="a paper boat --seconds 1"))
        # The same message with a mention is answered (refused): so the plain one was read and dropped.
        dispatch_message(runner.client, dm.message(content=f"<@{fake.bot_id}> a paper boat",
                                                   mentions=[fake.bot_id]))
        await fake.wait_until(lambda: bool(fake.channel_messages(USER_ID + 7)[2:]), what="the refusal")
        texts = [m["content"] for m in fake.channel_messages(USER_ID + 7)[2:]]
        assert texts == ["I only work in servers, not in direct messages. Use me in a channel of a server I'm in."]
        assert await app.store.list_jobs(f"discord:{USER_ID}") == []
    finally:
        await runner.close()


async def test_the_moderation_log_gets_each_started_job(live: Live) -> None:
    from tests.discord.payloads import OTHER_CHANNEL_ID

    dispatch(live.client, settings_set(live, "mod_log_channel", f"<#{OTHER_CHANNEL_ID}>"))
    assert await live.note(1) == f"mod_log_channel is now <#{OTHER_CHANNEL_ID}> in this server."
    dispatch(live.client, live.p.slash("video", {"prompt": "a paper boat", "duration": 1.0}))
    await live.video()
    [entry] = live.fake.channel_messages(OTHER_CHANNEL_ID)
    text = str(entry)
    assert "Job #1 started" in text and "a paper boat" in text and f"discord:{USER_ID}" in text
