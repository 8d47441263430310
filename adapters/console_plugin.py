"""The console chat as `ltx-bot` finds it: the `console` entry point of `ltx_bot.adapters`.

The terminal adapter: what `ltx-bot chat` runs, and what `run` falls back to
when no chat platform is configured.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.plugins import TerminalAdapter

if TYPE_CHECKING:
    from bot.app import App


async def chat(app: App, user: str | None, stop: asyncio.Event) -> int:
    from adapters.console import run_console  # the terminal UI only when it runs

    return await run_console(app, user_name=user, stop=stop)


plugin = TerminalAdapter(name="console", describe="console chat", run=chat)
