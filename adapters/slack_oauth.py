"""Slack installs in many workspaces: Slack's OAuth v2 install flow in HTTP mode, with
slack-bolt's `AsyncOAuthFlow` over the bot's own store.

`GET [slack] install_path` (default /slack/install) issues a state (kept in the store
and in a cookie) and redirects to Slack's authorize page with the bot scopes below;
Slack sends the admin back to the Redirect URL (`[slack] redirect_uri`, path default
/slack/oauth_redirect), where the state is consumed once (by whichever process gets the
request), the code is exchanged with `oauth.v2.access`, and the installation is sealed
into the store (`slack_installations`). `app_uninstalled` and `tokens_revoked` remove it.
With token rotation opted in, bolt's authorize step refreshes an expiring token for
incoming requests through the same refresher as background work (`slack_rotation`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_installations import Sealer, StoreInstallationStore, StoreStateStore
from adapters.slack_rotation import ROTATION_MINUTES, BoltRotator
from adapters.slack_workspaces import DEFAULT_API_URL, Workspaces
from bot.config import SlackSettings
from bot.store import SqlStore

log = logging.getLogger(__name__)

# What the bot does needs these and nothing else (docs/SLACK.md says why each).
BOT_SCOPES = ("commands", "chat:write", "app_mentions:read", "files:read", "files:write",
              "users:read", "im:history", "im:write")
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600  # an admin has ten minutes between /slack/install and approving


def redirect_path(settings: SlackSettings) -> str:
    if settings.redirect_uri:
        return urlsplit(settings.redirect_uri).path or REDIRECT_PATH
    return REDIRECT_PATH


def authorize_url(settings: SlackSettings) -> str:
    """Slack's authorize page beside its Web API (https://slack.com/oauth/v2/authorize),
    so a test's fake Slack at `api_url` serves it too."""
    return urljoin(settings.api_url or DEFAULT_API_URL, "../oauth/v2/authorize")


class SlackOAuth:
    """The install flow, its store-backed installation and state stores, its two routes and
    the listeners that forget a workspace when the app leaves it."""

    def __init__(self, settings: SlackSettings, store: Callable[[], SqlStore],
                 client: AsyncWebClient) -> None:
        key = settings.token_key.get_secret_value() if settings.token_key else ""
        if not key or not settings.client_id or not settings.client_secret:
            raise ValueError("the Slack OAuth install needs slack.client_id, slack.client_secret "
                             "and slack.token_key (LTX_BOT_SLACK_TOKEN_KEY)")
        self.installations = StoreInstallationStore(store, Sealer(key))
        self.states = StoreStateStore(store, STATE_SECONDS)
        self.install_path = settings.install_path
        self.redirect_path = redirect_path(settings)
        self.flow = AsyncOAuthFlow(client=client, settings=AsyncOAuthSettings(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            scopes=list(BOT_SCOPES), redirect_uri=settings.redirect_uri,
            install_path=self.install_path, redirect_uri_path=self.redirect_path,
            # Straight to Slack's page: there is nothing to choose on ours.
            install_page_rendering_enabled=False, authorization_url=authorize_url(settings),
            installation_store=self.installations, installation_store_bot_only=True,
            state_store=self.states, state_expiration_seconds=STATE_SECONDS,
            token_rotation_expiration_minutes=ROTATION_MINUTES, logger=log))

    def add_routes(self, web_app: web.Application) -> None:
        web_app.router.add_get(self.install_path, self._install)
        web_app.router.add_get(self.redirect_path, self._redirect)

    async def _install(self, request: web.Request) -> web.Response:
        return await to_aiohttp_response(await self.flow.handle_installation(_bolt(request)))

    async def _redirect(self, request: web.Request) -> web.Response:
        return await to_aiohttp_response(await self.flow.handle_callback(_bolt(request)))

    def register(self, bolt: AsyncApp, workspaces: Workspaces) -> None:
        """Forget a workspace's token when the app is uninstalled or its token revoked;
        rotate tokens for incoming requests the way `workspaces` does for background work."""
        authorize = self.flow.settings.authorize
        if isinstance(authorize, AsyncInstallationStoreAuthorize) and workspaces.refresher:
            authorize.token_rotator = BoltRotator(workspaces.refresher)

        async def uninstalled(ack: AsyncAck, context: AsyncBoltContext) -> None:
            await ack()
            await self.installations.async_delete_all(enterprise_id=context.enterprise_id,
                                                      team_id=context.team_id)
            workspaces.forget(context.team_id)

        async def revoked(ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext) -> None:
            await ack()
            if (event.get("tokens") or {}).get("bot"):
                await self.installations.async_delete_bot(enterprise_id=context.enterprise_id,
                                                          team_id=context.team_id)
                workspaces.forget(context.team_id)

        bolt.event("app_uninstalled")(uninstalled)
        bolt.event("tokens_revoked")(revoked)


def _bolt(request: web.Request) -> AsyncBoltRequest:
    # GET requests: the query (code, state) and the headers (the state cookie) are all.
    return AsyncBoltRequest(body="", query=request.query_string, headers=dict(request.headers))
