"""Telling the bot's operator admins on Discord (`bot.ports.AdminNotices`): the fal account
failing, a budget alert with no moderation log. One message in `[discord] admin_channel`
when it is set, else a direct message to each `[discord] admin_users` id (admins named
only by `admin_roles` cannot be listed without the members intent, so they are not DMed).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord.http import handle_message_parameters

from adapters.discord_render import CONTENT_LIMIT

if TYPE_CHECKING:
    from adapters.discord_port import DiscordPort

log = logging.getLogger(__name__)


async def notify_admins(port: DiscordPort, text: str) -> int:
    """How many were told: 1 for the admin channel, else one per admin DMed."""
    settings = port.settings.discord
    content = text[:CONTENT_LIMIT]
    if settings.admin_channel is not None:
        try:
            await _send(port, settings.admin_channel, content)
            return 1
        except discord.HTTPException as exc:
            log.warning("the admin channel %s could not be told (HTTP %s, code %s); "
                        "trying the admins' direct messages", settings.admin_channel,
                        exc.status, exc.code)
    told = 0
    for user_id in settings.admin_users:
        try:
            dm = await port.http.start_private_message(user_id)
            await _send(port, int(dm["id"]), content)
            told += 1
        except discord.HTTPException as exc:
            # One admin with closed DMs must not keep the news from the others.
            log.warning("admin %s could not be told by direct message (HTTP %s, code %s)",
                        user_id, exc.status, exc.code)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("admin %s could not be told by direct message (%s)", user_id,
                        type(exc).__name__)
    return told


async def _send(port: DiscordPort, channel_id: int, content: str) -> None:
    with handle_message_parameters(content=content,
                                   allowed_mentions=discord.AllowedMentions.none()) as params:
        await port.http.send_message(channel_id, params=params)
