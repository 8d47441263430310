"""Telling the bot's operator admins on Slack (`bot.ports.AdminNotices`): the fal account
failing, a budget alert with no moderation log. One message in `[slack] admin_channel`
when it is set (the bot must be a member), else a direct message to each `[slack]
admin_users` id (`conversations.open`, which needs the `im:write` scope, then
`chat.postMessage`).

With installs in many workspaces (OAuth) the token is the installation's of `[slack]
admin_team` (the operator's own workspace, where the channel and the admins' ids are);
without it the notice stays in the log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_render import note_text
from adapters.slack_translate import error_code
from bot.errors import UserError

if TYPE_CHECKING:
    from adapters.slack_port import SlackPort

log = logging.getLogger(__name__)


async def notify_admins(port: SlackPort, text: str) -> int:
    """How many were told: 1 for the admin channel, else one per admin DMed."""
    settings = port.settings
    client = await _client(port)
    if client is None:
        return 0
    text = note_text(text)
    if settings.admin_channel:
        try:
            await client.chat_postMessage(channel=settings.admin_channel, text=text)
            return 1
        except SlackApiError as exc:
            log.warning("the admin channel %s could not be told (%s); trying the admins' "
                        "direct messages", settings.admin_channel, error_code(exc))
    told = 0
    # admin_users may name a user as `U…` or `slack:U…`; each is told once.
    for user_id in dict.fromkeys(u.removeprefix("slack:") for u in settings.admin_users):
        try:
            opened = await client.conversations_open(users=user_id)
            await client.chat_postMessage(channel=str(opened["channel"]["id"]), text=text)
            told += 1
        except SlackApiError as exc:
            # One admin that cannot be reached must not keep the news from the others.
            log.warning("admin %s could not be told by direct message (%s; the app needs "
                        "the im:write scope)", user_id, error_code(exc))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("admin %s could not be told by direct message (%s)", user_id,
                        type(exc).__name__)
    return told


async def _client(port: SlackPort) -> AsyncWebClient | None:
    """The client with the operator's workspace's token; None when there is none."""
    if port.workspaces is None:
        return port.client
    team = port.settings.admin_team
    if not team:
        log.warning("Slack admins are not told in chat: with installs in many workspaces "
                    "set [slack] admin_team (the operator's workspace)")
        return None
    try:
        return (await port.workspaces.for_team(team)).client
    except UserError:
        log.warning("Slack admins are not told in chat: the app is not installed in "
                    "[slack] admin_team %s", team)
        return None
