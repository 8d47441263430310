"""DiscordRunner: what `ltx-bot run` starts. Login through the configured API URL, no secret in logs."""

from __future__ import annotations

import logging
from typing import Any

import discord
import pytest

from adapters.discord_bot import DiscordRunner, apply_api_url, intents_for, start_discord
from bot.config import Settings
from bot.ports import ChatPort
from tests.discord.fake_api import FakeDiscord

TOKEN = "MTIzNDU2.secret-discord-token.abcdef"


class FakeApp:
    """Just the two things the runner touches on bot.app.App."""

    def __init__(self) -> None:
        self.ports: list[ChatPort] = []
        self.bot: Any = None

    def register_port(self, port: ChatPort) -> None:
        self.ports.append(port)


async def test_start_logs_in_at_the_api_url_and_close_stops(
    fake: FakeDiscord, settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    discord.http.Route.BASE = "https://discord.invalid/api/v10"  # the setting must win
    settings.discord.token = TOKEN  # type: ignore[assignment]
    settings.discord.api_url = fake.url + "/"
    app = FakeApp()
    runner = await start_discord(app, settings)
    try:
        assert app.ports == [runner.port]
        assert fake.url == discord.http.Route.BASE
        me = fake.calls_to("GET", "/users/@me")
        assert me and me[0].bot_auth
        await fake.wait_for(lambda c: c.method == "PUT" and c.path.endswith("/commands"))
    finally:
        await runner.close()
    assert runner.client.is_closed()
    assert TOKEN not in caplog.text


async def test_missing_token_and_bad_api_url_are_clear(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="DISCORD_TOKEN"):
        await DiscordRunner(FakeApp(), settings).login()
    with pytest.raises(ValueError, match="api_url"):
        apply_api_url("proxy:8080")


def test_intents_are_minimal(settings: Settings) -> None:
    intents = intents_for(settings)
    assert intents.guilds and intents.guild_messages
    assert not intents.message_content and not intents.members and not intents.presences
    assert not intents.dm_messages
    settings.discord.allow_dms = True
    settings.discord.message_content_intent = True
    intents = intents_for(settings)
    assert intents.dm_messages and intents.message_content
