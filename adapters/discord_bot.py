"""The Discord adapter's client and runner: what `ltx-bot run` starts for Discord.

`LtxClient` is the discord.py client: intents, the command tree (each command
family registers its own commands, see `discord_generate`, `discord_account`,
`discord_admin`), the job buttons and mention replies, and the one sync of the
commands at login. `DiscordRunner` logs it in, registers its port with the app
and keeps the gateway connected. `ltx-bot` finds it through `discord_plugin`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import discord
import yarl
from discord import app_commands

from adapters import (
    discord_account,
    discord_admin,
    discord_edit,
    discord_generate,
    discord_mentions,
)
from adapters.discord_adapter import DiscordAdapter
from adapters.discord_buttons import JobButton
from adapters.discord_port import DiscordPort
from bot.app import App
from bot.config import Settings
from bot.errors import UsageError, report_unexpected
from bot.ports import Core
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# The bot never joins a voice channel, so discord.py's two start-up warnings that voice
# needs PyNaCl and davey only bury the lines an operator needs; these flags are how
# discord.py itself decides to warn (once per process), so they are turned off at the source.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class LtxTree(app_commands.CommandTree["LtxClient"]):
    """The command tree; its error hook sends what discord.py caught through the boundary."""

    async def on_error(self, interaction: discord.Interaction[LtxClient],
                       error: app_commands.AppCommandError) -> None:
        failure: Exception
        if isinstance(error, app_commands.CheckFailure | app_commands.TransformerError):
            failure = UsageError("I couldn't read one of the options: "
                                 + (str(error) or type(error).__name__))
        else:
            failure = getattr(error, "original", error)
        await interaction.client.adapter.report(interaction, failure, "app command")


def intents_for(settings: Settings) -> discord.Intents:
    """Only what the bot uses. Mentions carry their content without the message content intent."""
    intents = discord.Intents.none()
    intents.guilds = True  # guild cache: roles by name, boost level (upload limit), channels
    intents.guild_messages = True  # messages that mention the bot
    intents.dm_messages = settings.discord.allow_dms
    # Only for replying to *other people's* images with a mention: without it Discord blanks
    # the attachments of messages that don't mention the bot.
    intents.message_content = settings.discord.message_content_intent
    return intents


class LtxClient(discord.Client):
    """The discord.py client with the bot's commands, buttons and mention replies."""

    def __init__(self, settings: Settings, core: Core, *, port: DiscordPort | None = None,
                 sync_commands: bool = True, **kwargs: Any) -> None:
        super().__init__(intents=intents_for(settings),
                         allowed_mentions=discord.AllowedMentions.none(), **kwargs)
        self.settings = settings
        self.sync_commands = sync_commands
        self.port = port or DiscordPort(self, settings)
        self.adapter = DiscordAdapter(self, settings, core, self.port)
        # Where the commands show up: servers, plus the bot's DMs when allow_dms (a guild install;
        # group DMs need a user install, which this bot does not offer).
        self.tree = LtxTree(self, allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=settings.discord.allow_dms, private_channel=False))
        # Built per client, so a restarted client gets fresh command objects.
        for family in (discord_generate, discord_edit, discord_account, discord_admin):
            family.register(self.tree, self.adapter)
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)
        if not self.sync_commands:
            return
        # Sync once here, never in on_ready (which runs again on every reconnect).
        guild_ids = self.settings.discord.dev_guild_ids
        try:
            if guild_ids:
                for gid in guild_ids:
                    guild = discord.Object(id=gid)
                    self.tree.copy_global_to(guild=guild)
                    self.synced += await self.tree.sync(guild=guild)
                log.info("commands synced to %d development guild(s)", len(guild_ids))
            else:
                self.synced = await self.tree.sync()
                log.info("%d global commands synced (may take up to an hour to show)", len(self.synced))
        except discord.HTTPException as exc:
            log.error("command sync failed (HTTP %s, code %s): was the bot invited with the "
                      "applications.commands scope?", exc.status, exc.code)

    async def on_message(self, message: discord.Message) -> None:
        await discord_mentions.on_message(self.adapter, message)

    async def close(self) -> None:
        await self.port.close()
        await super().close()


class LtxShardedClient(LtxClient, discord.AutoShardedClient):
    """The same client over several gateway connections, one per shard this process runs
    (`[discord] shard_count` and `shard_ids`). Interactions and edits go through REST, so any
    process can finish any job; only the gateway events are split between processes."""


def build_client(settings: Settings, core: Core) -> LtxClient:
    """The client `[discord]` asks for: sharded when shard_count is set, and syncing the
    commands only where `sync_commands` (auto: the process that runs shard 0) says so."""
    conf = settings.discord
    sync = conf.syncs_commands
    if conf.shard_count is None:
        return LtxClient(settings, core, sync_commands=sync)
    log.info("Discord shards %s of %d; %s the commands", conf.shard_ids or "all",
             conf.shard_count, "syncing" if sync else "not syncing")
    return LtxShardedClient(settings, core, sync_commands=sync, shard_count=conf.shard_count,
                            shard_ids=conf.shard_ids or None)


class DiscordRunner:
    """Owns the Discord client: `await start()` logs in, syncs commands and connects in the
    background; `await close()` disconnects.

    The port is registered with the app only once `login()` has finished: a registered port
    lets the job runner resume this platform's jobs at once, and delivering them needs
    discord.py's HTTP session and token, which exist only after login. Registering after
    `app.start()` is fine: jobs waiting for their platform resume when its port arrives."""

    def __init__(self, app: App, settings: Settings, *, client: LtxClient | None = None) -> None:
        self.app = app
        self.settings = settings
        self.client = client or build_client(settings, app)
        self.port = self.client.port
        self.registered = False
        self._task: asyncio.Task[None] | None = None

    async def login(self) -> None:
        token = self.settings.discord.token
        if token is None or not token.get_secret_value():
            raise RuntimeError("Discord is not configured: set DISCORD_TOKEN (or discord.token).")
        apply_api_url(self.settings.discord.api_url)
        apply_gateway_url(self.settings.discord.gateway_url)
        await self.client.login(token.get_secret_value().strip())
        if not self.registered:
            self.app.register_port(self.port)
            self.registered = True

    async def start(self) -> None:
        try:
            await self.login()
        except BaseException:
            # A refused token leaves discord.py's HTTP session open (it is made before the
            # first request): close it here, or aiohttp complains at exit after the one line
            # that says why the start failed.
            await self.client.close()
            raise
        self._task = asyncio.create_task(self._connect(), name="discord-gateway")

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except discord.PrivilegedIntentsRequired:
            log.error("Discord refused the message content intent: enable it for the bot in the "
                      "Developer Portal or set discord.message_content_intent = false.")
        except Exception as exc:
            # Logged with its traceback and id; the process stays up for the other adapters
            # and the jobs already running, and `ltx-bot health` still answers for it.
            report_unexpected(log, exc, "the Discord gateway connection")

    async def close(self) -> None:
        await self.client.close()
        await cancel_and_wait(self._task)  # _connect raises nothing else


def apply_api_url(api_url: str | None) -> None:
    """Point discord.py (REST and webhooks) at a rate-limit proxy, e.g. http://proxy:8080/api/v10."""
    if api_url:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"discord.api_url must be an http(s) URL, not {api_url!r}")
        discord.http.Route.BASE = api_url.rstrip("/")


def apply_gateway_url(gateway_url: str | None) -> None:
    """Point discord.py's gateway WebSocket at a gateway proxy, e.g. ws://gateway-proxy:7878.

    discord.py 2.x's Client connects to `DiscordWebSocket.DEFAULT_GATEWAY` (it does not ask
    GET /gateway/bot, so api_url alone never moves it) and falls back to it whenever a session
    is invalidated; resumes go to the `resume_gateway_url` that READY names, which a gateway
    proxy rewrites to itself."""
    if gateway_url:
        parts = urlsplit(gateway_url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"discord.gateway_url must be a ws(s) URL, not {gateway_url!r}")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


async def start_discord(app: App, settings: Settings) -> DiscordRunner:
    runner = DiscordRunner(app, settings)
    await runner.start()
    return runner
