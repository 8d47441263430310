"""Slack installs in many workspaces: the whole OAuth v2 install against the fake Slack
(`/slack/install` -> Slack's authorize page -> `/slack/oauth_redirect` -> oauth.v2.access),
the installation sealed in the bot's store, a slash command from the new workspace
answered with that workspace's own token, and `app_uninstalled` / `tokens_revoked`
removing it. Single-workspace mode (a bot token) stays as it was (the other Slack tests)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from adapters.slack_app import SlackRunner
from adapters.slack_oauth import BOT_SCOPES
from adapters.slack_plugin import missing
from bot.config import Settings
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import SignedSender, slash_command

NEW_TEAM = "T0NEW"
# slack-sdk's own use of aiohttp's BasicAuth for oauth.v2.access (the client id and secret).
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@dataclass
class Live:
    fake: FakeSlack
    runner: SlackRunner
    sender: SignedSender
    base: str  # the bot's HTTP root
    app: Any
    db: str
    web: httpx.AsyncClient

    async def install(self, team: str = NEW_TEAM) -> httpx.Response:
        """An admin of `team` opens the install link and approves the app on Slack's page."""
        self.fake.next_install_team = team
        start = await self.web.get(self.base + "/slack/install")
        assert start.status_code == 302, start.text
        cookie = start.headers["set-cookie"].split(";", 1)[0]
        approved = await self.web.get(start.headers["location"])
        assert approved.status_code == 302
        return await self.web.get(approved.headers["location"], headers={"Cookie": cookie})

    def sealed_rows(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT workspace, sealed FROM installations").fetchall()


@pytest.fixture
async def live(app: Any, settings: Settings, fake_slack: FakeSlack) -> AsyncIterator[Live]:
    slack = settings.slack
    slack.signing_secret = SIGNING_SECRET  # type: ignore[assignment]
    slack.api_url = fake_slack.api_url
    slack.mode, slack.host, slack.port = "http", "127.0.0.1", 0
    slack.client_id = fake_slack.client_id
    slack.client_secret = fake_slack.client_secret  # type: ignore[assignment]
    slack.token_key = Fernet.generate_key().decode()  # type: ignore[assignment]
    assert settings.slack_enabled and missing(settings) is None  # no bot token needed
    runner = SlackRunner(app, settings, min_edit_interval=0.0)
    await runner.start()
    assert runner.adapter.url is not None
    base = runner.adapter.url.removesuffix("/slack/events")
    fake_slack.redirect_uri = base + "/slack/oauth_redirect"
    sender = SignedSender(runner.adapter.url, SIGNING_SECRET)
    web = httpx.AsyncClient(timeout=10)
    yield Live(fake_slack, runner, sender, base, app, settings.database.path, web)
    await web.aclose()
    await sender.close()
    await runner.close()


def envelope(event: dict[str, Any], team: str) -> dict[str, Any]:
    return {"token": "x", "team_id": team, "api_app_id": "A0001", "type": "event_callback",
            "event": event, "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}]}


async def test_install_then_a_command_from_the_new_workspace_uses_its_token(live: Live) -> None:
    fake = live.fake
    done = await live.install()
    assert done.status_code == 200, done.text
    [asked] = fake.authorize_requests
    assert set(asked["scope"].split(",")) == set(BOT_SCOPES)
    [token] = fake.installed
    # Sealed at rest: the store holds no token in the clear.
    [(workspace, sealed)] = live.sealed_rows()
    assert workspace == NEW_TEAM and token not in sealed and "xoxb" not in sealed

    reply = await live.sender.command(slash_command("a kite over hills --seconds 1", team=NEW_TEAM))
    assert reply.status_code == 200
    videos = await fake.wait_for(lambda: [f for f in fake.files.values()
                                          if f.completed and f.name.endswith(".mp4")], limit=60)
    assert len(videos) == 1 and videos[0].channel == "C0001"
    for method in ("chat.postMessage", "chat.update", "files.completeUploadExternal"):
        assert fake.tokens_of(method) and set(fake.tokens_of(method)) == {token}, method
    [job] = await live.app.store.list_jobs("slack:U0001")
    assert job.status_message is not None and job.status_message.extra["team"] == NEW_TEAM


async def test_a_state_is_good_once_and_only_with_its_cookie(live: Live) -> None:
    fake = live.fake
    start = await live.web.get(live.base + "/slack/install")
    cookie = start.headers["set-cookie"].split(";", 1)[0]
    approved = await live.web.get(start.headers["location"])
    back = approved.headers["location"]
    assert (await live.web.get(back)).status_code == 400  # no cookie: another browser
    assert (await live.web.get(back, headers={"Cookie": cookie})).status_code == 200
    state = parse_qs(urlsplit(back).query)["state"][0]
    again = await live.web.get(f"{live.base}/slack/oauth_redirect?code=x&state={state}",
                               headers={"Cookie": cookie})
    assert again.status_code == 401  # the state was consumed
    assert len(fake.installed) == 1 and len(live.sealed_rows()) == 1


async def test_uninstall_and_revocation_remove_the_installation(live: Live) -> None:
    fake = live.fake
    assert (await live.install(NEW_TEAM)).status_code == 200
    assert (await live.install("T0TWO")).status_code == 200
    assert {w for w, _ in live.sealed_rows()} == {NEW_TEAM, "T0TWO"}

    await live.sender.event(envelope({"type": "app_uninstalled"}, NEW_TEAM))
    await live.sender.event(envelope({"type": "tokens_revoked",
                                      "tokens": {"bot": ["UBOT"]}}, "T0TWO"))
    assert live.sealed_rows() == []
    # A command from the workspace that left starts nothing and posts nothing.
    posts = len(fake.named("chat.postMessage"))
    await live.sender.command(slash_command("a kite --seconds 1", team=NEW_TEAM))
    await live.runner.adapter.idle()
    assert len(fake.named("chat.postMessage")) == posts
    assert await live.app.store.list_jobs("slack:U0001") == []


def test_a_half_configured_install_names_what_is_missing(settings: Settings) -> None:
    slack = settings.slack
    slack.client_id = "1111.2222"
    assert not settings.slack_enabled
    assert "needs HTTP mode" in (missing(settings) or "")  # the default mode is socket
    slack.mode = "http"
    text = missing(settings) or ""
    for name in ("SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET", "LTX_BOT_SLACK_TOKEN_KEY"):
        assert name in text, text
    slack.client_secret = "s"  # type: ignore[assignment]
    slack.signing_secret = "s"  # type: ignore[assignment]
    assert missing(settings) == ("the token key (LTX_BOT_SLACK_TOKEN_KEY or slack.token_key) "
                                 "is missing for the OAuth install")


def test_a_token_key_that_is_not_a_fernet_key_is_refused_clearly(settings: Settings) -> None:
    from adapters.slack_app import SlackAdapter

    slack = settings.slack
    slack.mode, slack.client_id = "http", "1111.2222"
    slack.client_secret = slack.signing_secret = "s"  # type: ignore[assignment]
    slack.token_key = "not-a-key"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="LTX_BOT_SLACK_TOKEN_KEY") as err:
        SlackAdapter(settings, object(), store=lambda: None)  # type: ignore[arg-type, return-value]
    assert "not-a-key" not in str(err.value)


def test_the_install_asks_for_the_scopes_the_manifest_in_the_docs_lists() -> None:
    """docs/SLACK.md's manifest and the OAuth install ask for the same bot scopes: a feature
    that needs a new scope (users:read, im:history, im:write) must not work only for a
    hand-made app."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "SLACK.md").read_text()
    block = text.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    assert set(re.findall(r"- (\S+)", block)) == set(BOT_SCOPES)
