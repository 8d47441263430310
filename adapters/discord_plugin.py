"""Discord as `ltx-bot` finds it: the `discord` entry point of `ltx_bot.adapters`.

Kept apart from `discord_bot` so that `check-config` and `chat` can ask whether
Discord is configured without loading discord.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import Settings
from bot.plugins import PlatformAdapter, Service

if TYPE_CHECKING:
    from bot.app import App


def describe(settings: Settings) -> str | None:
    """The `check-config` line: what `run` would start, or why not."""
    if settings.discord_enabled:
        api = settings.discord.api_url or "Discord's API"
        gateway = settings.discord.gateway_url or "Discord's gateway"
        conf = settings.discord
        shards = "" if conf.shard_count is None else (
            f"; shards {conf.shard_ids or 'all'} of {conf.shard_count}")
        sync = "syncs commands" if conf.syncs_commands else "does not sync commands"
        return f"discord (token set; REST at {api}; gateway at {gateway}{shards}; {sync})"
    if settings.discord.token is not None:
        return "discord: not started (the token is empty)"
    return None


async def start(app: App, settings: Settings) -> Service:
    from adapters.discord_bot import start_discord  # discord.py only when Discord runs

    return await start_discord(app, settings)


# No `missing`: the token is Discord's only credential. Other [discord] settings without it
# (or an empty DISCORD_TOKEN from a template) mean Discord is simply not configured.
plugin = PlatformAdapter(name="discord", title="Discord", start=start, describe=describe,
                         configured=lambda settings: settings.discord_enabled)
