"""Fixtures for the Slack adapter: a fake Web API, settings aimed at it, the adapter in HTTP
mode behind a signed sender, and a recording core that stands in for `Bot.handle` where a
test is about translation rather than generation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.slack_app import SlackAdapter
from bot.config import Settings
from bot.ports import ChatPort, Invocation
from bot.store import Store, open_store
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import SignedSender

SIGNING_SECRET = "test-signing-secret-0123456789"


class RecordingCore:
    """Records every Invocation; `then` lets a test act through the port like the core would.

    Like `Bot.handle`, it first drops an event the store has already seen (a platform's
    retry), through a real store: the adapter's part is to carry the event id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.invocations: list[Invocation] = []
        self.then: Callable[[Invocation, ChatPort], Awaitable[None]] | None = None
        self._changed = asyncio.Condition()

    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        if inv.event_id and not await self.store.first_seen(inv.event_id):
            return
        self.invocations.append(inv)
        async with self._changed:
            self._changed.notify_all()
        if self.then is not None:
            await self.then(inv, port)

    async def first_seen(self, event_id: str) -> bool:
        return await self.store.first_seen(event_id)

    async def wait_count(self, n: int, limit: float = 10.0) -> list[Invocation]:
        async def check() -> list[Invocation]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.invocations) >= n)
                return self.invocations

        return await asyncio.wait_for(check(), limit)


def slack_settings_for(fake: FakeSlack, tmp_path: Path, **slack: Any) -> Settings:
    return Settings.model_validate({
        "database": {"path": str(tmp_path / "db.sqlite3")},
        "media": {"allow_hosts": ["127.0.0.1", "localhost"], "tmp_dir": str(tmp_path / "tmp")},
        "jobs": {"edit_interval_seconds": 0.0},
        "backend": {"kind": "sim"},
        "slack": {"bot_token": fake.bot_token, "app_token": fake.app_token,
                  "signing_secret": SIGNING_SECRET, "api_url": fake.api_url, "mode": "http",
                  "host": "127.0.0.1", "port": 0, **slack},
    })


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def slack_settings(fake_slack: FakeSlack, tmp_path: Path) -> Settings:
    return slack_settings_for(fake_slack, tmp_path)


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[RecordingCore]:
    store = await open_store(tmp_path / "seen.sqlite3")
    yield RecordingCore(store)
    await store.close()


@pytest.fixture
async def adapter(slack_settings: Settings, core: RecordingCore) -> AsyncIterator[SlackAdapter]:
    ad = SlackAdapter(slack_settings, core)
    await ad.start()
    yield ad
    await ad.close()


@pytest.fixture
async def sender(adapter: SlackAdapter) -> AsyncIterator[SignedSender]:
    assert adapter.url is not None
    s = SignedSender(adapter.url, SIGNING_SECRET)
    yield s
    await s.close()
