"""The FakeChat the core tests use must honour the same contract as the real adapters."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bot.ports import MessageRef, Place, User
from tests.fakes.chat import FakeChat


@dataclass
class FakeHarness:
    port: FakeChat = field(default_factory=lambda: FakeChat("console"))
    place: Place = field(default_factory=lambda: Place(platform="console", channel="console"))
    user: User = field(default_factory=lambda: User(platform="console", id="alice", name="alice"))

    async def shown(self, ref: MessageRef) -> dict[str, Any]:
        card = self.port.messages[ref.id]
        assert card is not None
        files = [c.filename or "" for c in self.port.calls if c.ref and c.ref.id == ref.id and c.filename]
        return {"text": card.text(), "files": files, "buttons": [a.custom_id for a in card.actions]}

    async def notes(self, user: User) -> list[str]:
        return [c.text or "" for c in self.port.of_kind("tell") if c.user == user]

    async def exists(self, ref: MessageRef) -> bool:
        return ref.id in self.port.messages and ref.id not in self.port.deleted


@contextlib.asynccontextmanager
async def harness() -> AsyncIterator[FakeHarness]:
    yield FakeHarness()
