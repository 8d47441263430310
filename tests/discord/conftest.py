"""Fixtures for the Discord adapter: a fake REST API on loopback and logged-in clients.

`discord.http.Route.BASE` is pointed at the fake for the duration of a test
and restored afterwards, as is the gateway URL for the tests that connect to
the fake's gateway.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import discord
import pytest
from PIL import Image

from adapters.discord_bot import LtxClient
from bot.config import Settings
from bot.ports import ChatPort, Core, Invocation
from tests.discord.fake_api import FakeDiscord
from tests.discord.payloads import Payloads

BOT_TOKEN = "test-bot-token.not.real"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = server.url
    try:
        yield server
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
        await server.stop()


@pytest.fixture
def payloads(fake: FakeDiscord) -> Payloads:
    return Payloads(fake)


class Recorder:
    """A stand-in core that only remembers what the adapter handed it (a real object, no mock)."""

    def __init__(self) -> None:
        self.invocations: list[Invocation] = []
        self.ports: list[ChatPort] = []
        self.seen: set[str] = set()
        self._changed = asyncio.Event()

    async def first_seen(self, event_id: str) -> bool:
        """The store's claim, kept in memory (the e2e tests use the real store)."""
        fresh = event_id not in self.seen
        self.seen.add(event_id)
        return fresh

    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        self.invocations.append(inv)
        self.ports.append(port)
        self._changed.set()

    async def next(self, count: int = 1) -> Invocation:
        async with asyncio.timeout(10):
            while len(self.invocations) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.invocations[count - 1]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


ClientFactory = Callable[..., Awaitable[LtxClient]]


@pytest.fixture
async def make_client(fake: FakeDiscord) -> AsyncIterator[ClientFactory]:
    """Build and log in an LtxClient against the fake (login runs setup_hook: sync + buttons)."""
    clients: list[LtxClient] = []

    async def make(settings: Settings, core: Core, **kwargs: Any) -> LtxClient:
        client = LtxClient(settings, core, **kwargs)
        clients.append(client)
        await client.login(BOT_TOKEN)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


def dispatch(client: LtxClient, payload: dict[str, Any]) -> None:
    """Feed an interaction through discord.py exactly as the gateway's INTERACTION_CREATE does."""
    client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]


async def open_modal(client: LtxClient, fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    """Dispatch an interaction that opens a modal; return the modal callback once it can be submitted."""
    opened = asyncio.ensure_future(client.wait_for("ltx_modal_opened", timeout=10))
    dispatch(client, payload)
    await opened
    call = await fake.wait_for(lambda c: c.path == f"/interactions/{payload['id']}/{payload['token']}/callback",
                               what="the modal callback")
    assert call.body["type"] == 9, call.body
    body: dict[str, Any] = call.body
    return body


def dispatch_message(client: LtxClient, payload: dict[str, Any]) -> None:
    client._connection.parse_message_create(payload)  # type: ignore[arg-type]


def dispatch_guild(client: LtxClient, payload: dict[str, Any]) -> None:
    client._connection.parse_guild_create(payload)


def png_bytes(size: tuple[int, int] = (96, 64), colour: tuple[int, int, int] = (20, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def mp4_file(path: Path, *, frames: int = 9, size: tuple[int, int] = (64, 64), noise: bool = False) -> Path:
    """A real H.264 clip. `noise` makes it compress badly, for "too large" scenarios."""
    import os

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if noise:
            stream.options = {"crf": "0", "preset": "ultrafast"}
        for i in range(frames):
            if noise:
                img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
            else:
                img = Image.new("RGB", size, (i * 25 % 255, 60, 90))
            frame = av.VideoFrame.from_image(img)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def mp4_bytes(tmp: Path, **kwargs: Any) -> bytes:
    return mp4_file(tmp / "clip.mp4", **kwargs).read_bytes()
