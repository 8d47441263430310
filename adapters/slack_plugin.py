"""Slack as `ltx-bot` finds it: the `slack` entry point of `ltx_bot.adapters`.

Kept apart from `slack_app` so that `check-config` and `chat` can ask whether
Slack is configured without loading slack-bolt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import Settings
from bot.plugins import PlatformAdapter, Service

if TYPE_CHECKING:
    from bot.app import App


def describe(settings: Settings) -> str | None:
    """The `check-config` line: what `run` would start, or which credential is missing."""
    slack = settings.slack
    if settings.slack_enabled:
        where = "Socket Mode" if slack.mode == "socket" else f"HTTP on {slack.host}:{slack.port}"
        return f"slack ({where}, command {slack.command})"
    if slack.bot_token is not None and slack.bot_token.get_secret_value():
        missing = ("app token (SLACK_APP_TOKEN)" if slack.mode == "socket"
                   else "signing secret (SLACK_SIGNING_SECRET)")
        return f"slack: not started (bot token set but the {missing} is missing for {slack.mode} mode)"
    return None


async def start(app: App, settings: Settings) -> Service:
    from adapters.slack_app import start_slack  # slack-bolt only when Slack runs

    return await start_slack(app, settings)


plugin = PlatformAdapter(name="slack", title="Slack", start=start, describe=describe,
                         configured=lambda settings: settings.slack_enabled)
