"""Which Web API clients (and so which bot token) serve a Slack workspace.

Single-workspace mode (the default): one bot token, the same clients everywhere.
Installs in many workspaces (`[slack] client_id`, HTTP mode): each workspace's token
comes from its installation in the store (`slack_installations`), read when a workspace
is first served and again after `REFRESH_SECONDS`, so an install, reinstall or uninstall
that another process handled reaches this one without a restart. With Slack's token
rotation a token that runs out within the rotation window is refreshed before it is
served (`slack_rotation.TokenRefresher`), whether or not a request came in meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_rotation import ROTATION_MINUTES, RotationFailed, TokenRefresher
from adapters.slack_translate import file_credential
from bot.config import SlackSettings
from bot.errors import UserError
from bot.ports import Credential

DEFAULT_API_URL = "https://slack.com/api/"
REFRESH_SECONDS = 60.0


def retry_handlers() -> list[AsyncRetryHandler]:
    # 429s are waited out per Retry-After; progress edits are coalesced anyway.
    return [AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3)]


@dataclass(frozen=True)
class TeamClients:
    """A workspace's clients: `client` for calls, `upload_client` (long timeout) for files,
    and the token as a header for downloading the workspace's files."""

    token: str
    client: AsyncWebClient
    upload_client: AsyncWebClient
    credential: Credential
    expires_at: int | None = None  # a rotating token's end (seconds since the epoch)


def make_clients(token: str | None, settings: SlackSettings) -> TeamClients:
    base_url = settings.api_url or DEFAULT_API_URL
    # A second client because files_upload_v2 uses the client's own timeout for the upload
    # POST; progress edits must not inherit a five-minute timeout.
    client = AsyncWebClient(token=token, base_url=base_url, timeout=30,
                            retry_handlers=retry_handlers())
    upload = AsyncWebClient(token=token, base_url=base_url,
                            timeout=int(settings.upload_timeout_seconds),
                            retry_handlers=retry_handlers())
    return TeamClients(token or "", client, upload, file_credential(token or "", settings.api_url))


class Workspaces:
    """The clients for a workspace (`for_team`), from one token or from the installations."""

    def __init__(self, settings: SlackSettings, default: TeamClients,
                 installations: AsyncInstallationStore | None = None) -> None:
        self.settings = settings
        self.default = default
        self.installations = installations
        self._teams: dict[str, tuple[float, TeamClients]] = {}
        self._all: list[TeamClients] = [default]
        self.clock: Callable[[], float] = time.time  # the epoch clock rotation judges by
        self.refresher: TokenRefresher | None = None
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        if installations is not None and settings.client_id and secret:
            self.refresher = TokenRefresher(installations, settings.client_id, secret,
                                            default.client, clock=lambda: self.clock())

    @property
    def many(self) -> bool:
        return self.installations is not None

    async def for_team(self, team: str | None) -> TeamClients:
        if self.installations is None:
            return self.default
        now = time.monotonic()
        cached = self._teams.get(team or "")
        if cached is not None and now - cached[0] < REFRESH_SECONDS \
                and not self._expiring(cached[1].expires_at):
            return cached[1]
        bot = None
        if team:
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team)
        if bot is not None and self.refresher is not None:
            bot = await self._fresh(bot)
        if bot is None:
            self._teams.pop(team or "", None)
            raise UserError("The app is not installed in this workspace (any more): an admin "
                            f"can install it again at {self.settings.install_path}.")
        clients = cached[1] if cached is not None and cached[1].token == bot.bot_token else None
        if clients is None:
            clients = make_clients(bot.bot_token, self.settings)
            self._all.append(clients)
        clients = replace(clients, expires_at=bot.bot_token_expires_at)
        self._teams[team or ""] = (now, clients)
        return clients

    def _expiring(self, expires_at: int | None) -> bool:
        return expires_at is not None and expires_at <= self.clock() + ROTATION_MINUTES * 60

    async def _fresh(self, bot: Bot) -> Bot | None:
        assert self.refresher is not None
        try:
            return await self.refresher.fresh(bot)
        except RotationFailed:
            raise UserError("The app's access to this workspace ran out and could not be "
                            "renewed: an admin can install it again at "
                            f"{self.settings.install_path}.") from None

    def forget(self, team: str | None) -> None:
        """An uninstall or revocation seen here: stop using the token at once."""
        self._teams.pop(team or "", None)

    async def close(self) -> None:
        for clients in self._all:
            for client in (clients.client, clients.upload_client):
                if client.session is not None and not client.session.closed:
                    await client.session.close()
