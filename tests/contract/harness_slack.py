"""The Slack port under the shared contract scenarios, against the fake Web API over HTTP."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.slack_app import SlackAdapter
from adapters.slack_port import SlackPort
from bot.ports import Invocation, MessageRef, Place, User
from tests.slack.conftest import slack_settings_for
from tests.slack.fake_api import FakeSlack

CHANNEL = "C0CONTRACT"


def flatten(blocks: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(visible texts, buttons as "action_id:value") of a Block Kit message."""
    texts: list[str] = []
    buttons: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button":
                buttons.append(f"{node.get('action_id')}:{node.get('value')}")
                return
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                texts.append(node["text"])
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return texts, buttons


@dataclass
class SlackHarness:
    fake: FakeSlack
    port: SlackPort
    place: Place
    user: User

    async def shown(self, ref: MessageRef) -> dict[str, Any]:
        texts: list[str] = []
        buttons: list[str] = []
        files: list[str] = []
        msg = self.fake.messages.get((ref.channel, ref.id))
        if msg is not None and not msg.deleted:
            block_texts, buttons = flatten(msg.blocks)
            texts += block_texts or [msg.text]
        for file_id in [*ref.extra.get("files", []), ref.id]:
            f = self.fake.files.get(file_id)
            if f is not None and f.completed and not f.deleted and f.name not in files:
                files.append(f.name)
                texts.append(f.initial_comment or "")
        return {"text": "\n".join(texts), "files": files, "buttons": buttons}

    async def notes(self, user: User) -> list[str]:
        return [e.text for e in self.fake.ephemerals if e.user == user.id]

    async def exists(self, ref: MessageRef) -> bool:
        msg = self.fake.messages.get((ref.channel, ref.id))
        if msg is not None:
            return not msg.deleted
        f = self.fake.files.get(ref.id)
        return f is not None and not f.deleted


class _Nobody:
    async def handle(self, inv: Invocation, port: object) -> None:
        raise AssertionError("the contract drives the port directly")


@asynccontextmanager
async def harness() -> AsyncIterator[SlackHarness]:
    fake = FakeSlack()
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        settings = slack_settings_for(fake, Path(tmp))
        adapter = SlackAdapter(settings, _Nobody())
        try:
            yield SlackHarness(fake, adapter.port, Place("slack", CHANNEL, "T0001"),
                               User("slack", "U0CONTRACT", "carol"))
        finally:
            await adapter.close()
            await fake.stop()
