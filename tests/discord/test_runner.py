"""DiscordRunner: what `ltx-bot run` starts. Login through the configured API URL, no secret in logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import pytest

from adapters.discord_bot import (
    DiscordRunner,
    apply_api_url,
    apply_gateway_url,
    intents_for,
    start_discord,
)
from bot.config import Settings
from bot.ports import ChatPort
from tests.discord.fake_api import FakeDiscord

TOKEN = "MTIzNDU2.secret-discord-token.abcdef"


class FakeApp:
    """Just the two things the runner touches on bot.app.App; remembers whether each port's
    client was logged in (had its HTTP session and token) when it was registered."""

    def __init__(self) -> None:
        self.ports: list[ChatPort] = []
        self.logged_in_at_register: list[bool] = []
        self.bot: Any = None

    def register_port(self, port: ChatPort) -> None:
        self.ports.append(port)
        client = getattr(port, "client", None)
        self.logged_in_at_register.append(
            isinstance(client, discord.Client) and client.user is not None
            and client.http.token is not None)


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
    with pytest.raises(ValueError, match="gateway_url"):
        apply_gateway_url("https://gateway.example/")


async def test_the_port_is_registered_only_after_login(fake: FakeDiscord, settings: Settings) -> None:
    settings.discord.token = TOKEN  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    app = FakeApp()
    runner = DiscordRunner(app, settings)
    try:
        assert app.ports == []  # a resumed job must not find a port that cannot send yet
        await runner.login()
        assert app.ports == [runner.port] and app.logged_in_at_register == [True]
        await runner.login()  # a second login (reconnect) does not register twice
        assert app.ports == [runner.port]
    finally:
        await runner.close()


async def test_gateway_url_moves_the_gateway_connection(fake: FakeDiscord, settings: Settings) -> None:
    """discord.api_url does not move the gateway; discord.gateway_url does."""
    settings.discord.token = TOKEN  # type: ignore[assignment]
    settings.discord.api_url = fake.url
    settings.discord.gateway_url = fake.gateway_url
    runner = await start_discord(FakeApp(), settings)
    try:
        await fake.wait_until(lambda: bool(fake.identified), what="IDENTIFY on the fake gateway")
        assert fake.identified[0]["token_sent"]
        assert fake.identified[0]["intents"] == intents_for(settings).value
        async with asyncio.timeout(15):
            await runner.client.wait_until_ready()
        assert runner.client.user is not None and runner.client.user.id == fake.bot_id
    finally:
        await runner.close()


def test_intents_are_minimal(settings: Settings) -> None:
    intents = intents_for(settings)
    assert intents.guilds and intents.guild_messages
    assert not intents.message_content and not intents.members and not intents.presences
    assert not intents.dm_messages
    settings.discord.allow_dms = True
    settings.discord.message_content_intent = True
    intents = intents_for(settings)
    assert intents.dm_messages and intents.message_content
