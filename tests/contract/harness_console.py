"""Contract harness for the console's ChatPort.

The console's "platform" is the terminal plus the outputs folder. What a
message shows is read from the port's record of it, and checked against what
was really printed, so the record cannot drift from the terminal.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.console import CONSOLE_PLACE, ConsolePort, console_user
from bot.config import Settings
from bot.ports import MessageRef, Place, User


@dataclass
class ConsoleHarness:
    port: ConsolePort
    place: Place
    user: User
    out: io.StringIO

    async def shown(self, ref: MessageRef) -> dict[str, Any]:
        message = self.port.messages[ref.id]
        printed = self.out.getvalue()
        for line in message.text.splitlines():
            assert line in printed, (line, printed)
        for name in message.files:
            assert any(Path(p).name == name for p in self.port.saved)
            assert f"saved: {Path(ref.extra['path'])}" in printed
        return {"text": message.text, "files": list(message.files), "buttons": list(message.buttons)}

    async def notes(self, user: User) -> list[str]:
        notes = list(self.port.notes.get(user.key, ()))
        for note in notes:
            assert note in self.out.getvalue()
        return notes

    async def exists(self, ref: MessageRef) -> bool:
        message = self.port.messages.get(ref.id)
        if message is None or message.deleted:
            return False
        path = ref.extra.get("path")
        return path is None or _exists(path)


def _exists(path: str) -> bool:
    return Path(path).exists()


@asynccontextmanager
async def harness() -> AsyncIterator[ConsoleHarness]:
    with tempfile.TemporaryDirectory(prefix="ltx-console-") as tmp:
        settings = Settings.model_validate({"media": {"output_dir": str(Path(tmp) / "outputs")}})
        out = io.StringIO()
        port = ConsolePort(settings, out, live=False)
        try:
            yield ConsoleHarness(port=port, place=CONSOLE_PLACE, user=console_user("ann", settings),
                                 out=out)
        finally:
            port.close()
