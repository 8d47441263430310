"""The Discord port under the shared contract scenarios, against the fake REST API over HTTP."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord

from adapters.discord_bot import LtxClient
from adapters.discord_port import DiscordPort
from adapters.discord_render import button_ids, flatten_message
from bot.ports import ChatPort, Invocation, MessageRef, Place, User
from tests.conftest import make_settings
from tests.discord.fake_api import EPHEMERAL, FakeDiscord
from tests.discord.payloads import CHANNEL_ID, GUILD_ID, USER_ID


@dataclass
class DiscordHarness:
    fake: FakeDiscord
    port: DiscordPort
    place: Place
    user: User

    def _message(self, ref: MessageRef) -> dict[str, Any] | None:
        if ref.id == "@original":
            mid = self.fake.interactions[ref.extra["token"]].original_id
            return None if mid is None else self.fake.visible(mid)
        return self.fake.visible(int(ref.id))

    async def shown(self, ref: MessageRef) -> dict[str, Any]:
        msg = self._message(ref)
        if msg is None:
            return {"text": "", "files": [], "buttons": []}
        return {"text": flatten_message(msg), "files": [a["filename"] for a in msg["attachments"]],
                "buttons": button_ids(msg)}

    async def notes(self, user: User) -> list[str]:
        """Ephemeral messages, and messages in the user's DM channel: only they can see them."""
        dm_ids = {c.response["id"] for c in self.fake.calls_to("POST", "/users/@me/channels")
                  if c.response and str(c.body.get("recipient_id")) == user.id}
        return [m["content"] for mid, m in self.fake.messages.items()
                if mid not in self.fake.deleted
                and (m["flags"] & EPHEMERAL or m["channel_id"] in dm_ids)]

    async def exists(self, ref: MessageRef) -> bool:
        return self._message(ref) is not None


class _Nobody:
    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        raise AssertionError("the contract drives the port directly")


@asynccontextmanager
async def harness() -> AsyncIterator[DiscordHarness]:
    fake = FakeDiscord()
    await fake.start()
    old_base = discord.http.Route.BASE
    discord.http.Route.BASE = fake.url
    with tempfile.TemporaryDirectory() as tmp:
        client = LtxClient(make_settings(Path(tmp)), _Nobody())
        try:
            await client.login("contract-bot-token")
            yield DiscordHarness(
                fake=fake,
                port=client.port,
                place=Place("discord", str(CHANNEL_ID), str(GUILD_ID)),
                user=User("discord", str(USER_ID), "alice"),
            )
        finally:
            await client.close()
            discord.http.Route.BASE = old_base
            await fake.stop()
