"""Slack token rotation for installs in many workspaces.

With "token rotation" opted in on the Slack app, a workspace's bot token expires after
12 hours and comes with a refresh token that buys the next pair once (Slack then revokes
it). `TokenRefresher.fresh` is what every use of an installation goes through: background
work (`Workspaces.for_team`: status cards, uploads, admin notices) and bolt's authorize
step for incoming requests (`BoltRotator`), so both refresh the same way, through the
Web API at `[slack] api_url`, and save the new token sealed in the store.

Several processes share the store and may find the same token expiring at once. In one
process a lock per workspace lets one task refresh while the others wait and re-read.
Across processes there is no lock: each re-reads the store first (a token another process
already refreshed is simply used); when two still spend the same refresh token, Slack
honours it once and refuses the other (`invalid_refresh_token`), so the loser re-reads
the store until the winner's save is there and uses that token. A refresh that fails
while the token still lasts (Slack down, a lost race without a save) leaves it in use,
and a use a minute later tries again; once it has run out, `RotationFailed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackClientError, SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Refresh a token this long before it runs out (bolt's default), so that a job's edits
# never start with a token that expires half-way.
ROTATION_MINUTES = 120
# How long a process that lost a refresh race waits for the winner's save to appear.
HANDOVER_SECONDS = 5.0
HANDOVER_STEP = 0.1
# After a failed refresh the token still lasting is used without asking Slack again for
# this long (every status edit would otherwise try while Slack is down).
RETRY_SECONDS = 60.0


class RotationFailed(Exception):
    """The token has run out, could not be refreshed, and no other process saved a fresh
    one."""


def rotating(bot: Bot) -> bool:
    return bot.bot_refresh_token is not None and bot.bot_token_expires_at is not None


class TokenRefresher:
    """Refreshes expiring bot tokens with slack-sdk's `AsyncTokenRotator` and saves them."""

    def __init__(self, installations: AsyncInstallationStore, client_id: str,
                 client_secret: str, client: AsyncWebClient,
                 clock: Callable[[], float] = time.time) -> None:
        """`client` calls oauth.v2.access (its base URL is `[slack] api_url`); `clock` is
        seconds since the epoch (a test moves it instead of sleeping)."""
        self.installations = installations
        self.rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret,
                                         client=client)
        self.clock = clock
        self.handover_seconds = HANDOVER_SECONDS
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._retry_at: dict[tuple[str, str], float] = {}  # after a failed refresh

    def expiring(self, bot: Bot) -> bool:
        """True when the token runs out within the rotation window (or already has)."""
        expires = bot.bot_token_expires_at
        return rotating(bot) and expires is not None and \
            expires <= self.clock() + ROTATION_MINUTES * 60

    async def fresh(self, bot: Bot) -> Bot | None:
        """`bot` itself, or the installation with a token good for the window; None when
        the app was uninstalled meanwhile. RotationFailed when the token has run out and
        no fresh one is to be had."""
        key = (bot.enterprise_id or "", bot.team_id or "")
        if not self.expiring(bot) or self._waiting(key, bot):
            return bot
        async with self._locks.setdefault(key, asyncio.Lock()):
            # Another task or process may have refreshed it while this one waited.
            latest = await self._find(bot)
            if latest is None or not self.expiring(latest):
                return latest
            return await self._renew(latest)

    def _waiting(self, key: tuple[str, str], bot: Bot) -> bool:
        """A refresh failed a moment ago and the token still lasts: use it meanwhile."""
        now = self.clock()
        return now < self._retry_at.get(key, 0.0) and (bot.bot_token_expires_at or 0) > now

    async def _renew(self, bot: Bot) -> Bot | None:
        try:
            refreshed = await self._rotate(bot)
        except SlackTokenRotationError as exc:
            # Most likely another process spent the refresh token first.
            return await self._handover(bot, _reason(exc))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            return self._meanwhile(bot, type(exc).__name__)
        if refreshed is None:
            return bot  # at the window's very edge by the wall clock: the next use renews
        await self.installations.async_save_bot(refreshed)
        log.info("slack: refreshed the bot token of workspace %s", bot.team_id)
        return refreshed

    async def _find(self, bot: Bot) -> Bot | None:
        return await self.installations.async_find_bot(
            enterprise_id=bot.enterprise_id, team_id=bot.team_id,
            is_enterprise_install=bot.is_enterprise_install)

    async def _rotate(self, bot: Bot) -> Bot | None:
        """The rotator judges expiry by the wall clock: give it the expiry as the wall
        clock sees it (the same when `clock` is the wall clock) and translate back."""
        skew = int(self.clock() - time.time())
        assert bot.bot_token_expires_at is not None  # rotating(bot)
        shifted = Bot(**{**bot.to_dict_for_copying(),
                         "bot_token_expires_at": bot.bot_token_expires_at - skew})
        refreshed = await self.rotator.perform_bot_token_rotation(
            bot=shifted, minutes_before_expiration=ROTATION_MINUTES)
        if refreshed is not None and refreshed.bot_token_expires_at is not None:
            refreshed.bot_token_expires_at += skew
        return refreshed

    async def _handover(self, mine: Bot, reason: str) -> Bot | None:
        """Wait for the winner's save: a token other than the one this process holds."""
        deadline = self.clock() + self.handover_seconds
        while True:
            latest = await self._find(mine)
            if latest is None or latest.bot_token != mine.bot_token:
                return latest
            if self.clock() >= deadline:
                return self._meanwhile(mine, reason)
            await asyncio.sleep(HANDOVER_STEP)

    def _meanwhile(self, bot: Bot, reason: str) -> Bot:
        """No new token this time: the current one while it lasts (the next use tries
        again), else RotationFailed."""
        expires = bot.bot_token_expires_at or 0
        if expires > self.clock():
            key = (bot.enterprise_id or "", bot.team_id or "")
            self._retry_at[key] = self.clock() + RETRY_SECONDS
            log.warning("slack: the bot token of workspace %s could not be refreshed yet (%s); "
                        "it lasts %d more minutes", bot.team_id, reason,
                        (expires - self.clock()) // 60)
            return bot
        log.error("slack: the bot token of workspace %s could not be refreshed (%s); "
                  "reinstall the app there", bot.team_id, reason)
        raise RotationFailed(bot.team_id)


def _reason(exc: SlackTokenRotationError) -> str:
    """Slack's error code (invalid_refresh_token, ...), never the request."""
    response = getattr(exc.api_error, "response", None)
    data = getattr(response, "data", None)
    return str(data.get("error")) if isinstance(data, dict) else type(exc.api_error).__name__


class BoltRotator(AsyncTokenRotator):
    """bolt's authorize step (incoming requests) rotating through the same refresher.

    Stock bolt gives its rotator a client of its own at https://slack.com/api/ (not
    `[slack] api_url`) and saves without regard to other processes; this one hands both
    to `TokenRefresher`. It returns None when the token needs nothing, as bolt expects."""

    def __init__(self, refresher: TokenRefresher) -> None:
        super().__init__(client_id=refresher.rotator.client_id,
                         client_secret=refresher.rotator.client_secret,
                         client=refresher.rotator.client)
        self.refresher = refresher

    async def perform_bot_token_rotation(self, *, bot: Bot,
                                         minutes_before_expiration: int = ROTATION_MINUTES,
                                         ) -> Bot | None:
        if not self.refresher.expiring(bot):
            return None
        try:
            fresh = await self.refresher.fresh(bot)
        except RotationFailed as exc:
            raise SlackTokenRotationError(exc) from None  # type: ignore[arg-type]
        return None if fresh is None or fresh.bot_token == bot.bot_token else fresh
