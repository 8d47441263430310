"""Telling the bot's operator admins on Slack (`bot.ports.AdminNotices`): the fal account
failing, a budget alert with no moderation log. One message in `[slack] admin_channel`
when it is set (the bot must be a member), else a direct message to each `[slack]
admin_users` id (`conversations.open`, which needs the `im:write` scope, then
`chat.postMessage`).

With installs in many workspaces (OAuth) there is no one token that reaches the
operator's admins, so the notice stays in the log there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from adapters.slack_render import note_text

if TYPE_CHECKING:
    from adapters.slack_port import SlackPort

log = logging.getLogger(__name__)


async def notify_admins(port: SlackPort, text: str) -> int:
    """How many were told: 1 for the admin channel, else one per admin DMed."""
    settings = port.settings
    if port.workspaces is not None:
        log.warning("Slack admins are not told in chat when the app is installed in many "
                    "workspaces; see the log")
        return 0
    text = note_text(text)
    if settings.admin_channel:
        try:
            await port.client.chat_postMessage(channel=settings.admin_channel, text=text)
            return 1
        except SlackApiError as exc:
            log.warning("the admin channel %s could not be told (%s); trying the admins' "
                        "direct messages", settings.admin_channel, _error(exc))
    told = 0
    # admin_users may name a user as `U…` or `slack:U…`; each is told once.
    for user_id in dict.fromkeys(u.removeprefix("slack:") for u in settings.admin_users):
        try:
            opened = await port.client.conversations_open(users=user_id)
            await port.client.chat_postMessage(channel=str(opened["channel"]["id"]), text=text)
            told += 1
        except SlackApiError as exc:
            # One admin that cannot be reached must not keep the news from the others.
            log.warning("admin %s could not be told by direct message (%s; the app needs "
                        "the im:write scope)", user_id, _error(exc))
    return told


def _error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error") or "") if isinstance(data, dict) else ""
