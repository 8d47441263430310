"""Slack installs in many workspaces: slack-sdk's installation and OAuth state stores over
the bot's own store (`bot.store.installs`, SQLite or PostgreSQL), so every process sharing
the store serves every workspace and any process can finish an install another began.

Only the bot's part of an installation is kept (bolt runs with
`installation_store_bot_only`): its token, ids and scopes. It is sealed with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) under `[slack] token_key`
(LTX_BOT_SLACK_TOKEN_KEY) before it reaches the store: a copy of the database without
the key holds no usable token.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.store import SqlStore
from bot.store.installs import Installations

log = logging.getLogger(__name__)

PLATFORM = "slack"
KEY_HELP = ('generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"')


class Sealer:
    """Encrypts what goes into the store and decrypts what comes out."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ValueError("slack.token_key (LTX_BOT_SLACK_TOKEN_KEY) is not a Fernet key "
                             f"(32 url-safe base64-encoded bytes); {KEY_HELP}") from None

    def seal(self, data: dict[str, Any]) -> str:
        text = json.dumps(data, default=_iso, separators=(",", ":"))
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> dict[str, Any] | None:
        """The data, or None when it was sealed under another key (the key was changed)."""
        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except InvalidToken:
            return None
        return data


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store a {type(value).__name__}")


def _key(enterprise_id: str | None, team_id: str | None,
         is_enterprise_install: bool | None) -> tuple[str, str]:
    """(enterprise, workspace) as the store keys them: an org-wide install has no workspace."""
    return enterprise_id or "", "" if is_enterprise_install else team_id or ""


class StoreInstallationStore(AsyncInstallationStore):
    """Bot installations, sealed, in the bot's store."""

    def __init__(self, store: Callable[[], SqlStore], sealer: Sealer) -> None:
        """`store()` is the bot's store once it is open (the adapter is built before)."""
        self._store = store
        self.sealer = sealer
        self._logger = log

    @property
    def rows(self) -> Installations:
        return Installations(self._store(), PLATFORM)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    async def async_save(self, installation: Installation) -> None:
        """An install (the OAuth flow); a refreshed token comes through `async_save_bot`."""
        bot = installation.to_bot()
        await self.async_save_bot(bot)
        log.info("slack: installed in workspace %s", bot.team_id or f"org {bot.enterprise_id}")

    async def async_save_bot(self, bot: Bot) -> None:
        # to_dict_for_copying keeps bot_refresh_token and bot_token_expires_at (rotation).
        enterprise, workspace = _key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        await self.rows.save(enterprise, workspace, self.sealer.seal(bot.to_dict_for_copying()))

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        sealed = await self.rows.find(*_key(enterprise_id, team_id, is_enterprise_install))
        data = None if sealed is None else self.sealer.open(sealed)
        if sealed is not None and data is None:
            log.warning("slack: the installation of workspace %s was sealed under another "
                        "token_key; reinstall the app there", team_id)
        return None if data is None else Bot(**data)

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False,
                                      ) -> Installation | None:
        return None  # bot-only: no user tokens are kept

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        """A user's token revoked: none is kept, so nothing to do."""

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def _delete(self, enterprise_id: str | None, team_id: str | None) -> None:
        # bolt names an org-wide install by its enterprise with the event's team: try both keys.
        for is_org in (False, True):
            if await self.rows.delete(*_key(enterprise_id, team_id, is_org)):
                log.info("slack: removed the installation of workspace %s", team_id)


class StoreStateStore(AsyncOAuthStateStore):
    """OAuth states in the bot's store: issued by one process, consumed by whichever process
    Slack's redirect reaches, and only once."""

    def __init__(self, store: Callable[[], SqlStore], expiration_seconds: int) -> None:
        self._store = store
        self.expiration_seconds = expiration_seconds

    @property
    def rows(self) -> Installations:
        return Installations(self._store(), PLATFORM)

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        await self.rows.issue_state(state, self.expiration_seconds)
        return state

    async def async_consume(self, state: str) -> bool:
        return bool(state) and await self.rows.consume_state(state)
