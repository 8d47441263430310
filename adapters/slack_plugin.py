"""Slack as `ltx-bot` finds it: the `slack` entry point of `ltx_bot.adapters`.

Kept apart from `slack_app` so that `check-config` and `chat` can ask whether
Slack is configured without loading slack-bolt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.config import Settings
from bot.plugins import PlatformAdapter, Service

if TYPE_CHECKING:
    from bot.app import App


def _set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value())


def missing(settings: Settings) -> str | None:
    """Which credentials a half-done Slack configuration lacks; None when complete or absent.

    Any one of the three set means the operator meant to run Slack: quietly leaving it out
    would start the bot without it (or fall back to the terminal chat, which ends at once
    with no input under Docker or systemd).
    """
    slack = settings.slack
    if slack.client_id or _set(slack.client_secret):
        return None if settings.slack_enabled else _missing_for_oauth(settings)
    given = [_set(slack.bot_token), _set(slack.app_token), _set(slack.signing_secret)]
    if settings.slack_enabled or not any(given):
        return None
    needed = [("bot token (SLACK_BOT_TOKEN or slack.bot_token)", given[0])]
    if slack.mode == "socket":
        needed.append(("app token (SLACK_APP_TOKEN or slack.app_token)", given[1]))
    else:
        needed.append(("signing secret (SLACK_SIGNING_SECRET or slack.signing_secret)", given[2]))
    absent = " and the ".join(name for name, ok in needed if not ok)
    mode = "Socket Mode" if slack.mode == "socket" else "HTTP mode"
    return f"the {absent} {'is' if ' and ' not in absent else 'are'} missing for {mode}"


def _missing_for_oauth(settings: Settings) -> str:
    """Installs in many workspaces: HTTP mode, the app's credentials and the token key."""
    slack = settings.slack
    if slack.mode != "http":
        return ('the OAuth install (slack.client_id) needs HTTP mode (slack.mode = "http"): '
                "Slack sends installs to a public Redirect URL")
    needed = [("client id (SLACK_CLIENT_ID or slack.client_id)", bool(slack.client_id)),
              ("client secret (SLACK_CLIENT_SECRET or slack.client_secret)", _set(slack.client_secret)),
              ("signing secret (SLACK_SIGNING_SECRET or slack.signing_secret)", _set(slack.signing_secret)),
              ("token key (LTX_BOT_SLACK_TOKEN_KEY or slack.token_key)", _set(slack.token_key))]
    absent = " and the ".join(name for name, ok in needed if not ok)
    return f"the {absent} {'is' if ' and ' not in absent else 'are'} missing for the OAuth install"


def describe(settings: Settings) -> str | None:
    """The `check-config` line: what `run` would start, or which credential is missing."""
    slack = settings.slack
    if settings.slack_enabled:
        where = "Socket Mode" if slack.mode == "socket" else f"HTTP on {slack.host}:{slack.port}"
        if slack.oauth:
            where += f", installs at {slack.install_path}"
        return f"slack ({where}, command {slack.command})"
    why = missing(settings)
    return f"slack: not started ({why})" if why else None


async def start(app: App, settings: Settings) -> Service:
    from adapters.slack_app import start_slack  # slack-bolt only when Slack runs

    return await start_slack(app, settings)


plugin = PlatformAdapter(name="slack", title="Slack", start=start, describe=describe,
                         configured=lambda settings: settings.slack_enabled, missing=missing)
