"""Admin notices when the Slack app is installed in many workspaces (OAuth): the token is
the installation's of `[slack] admin_team`, the operator's own workspace; without it the
admins are told in the log only."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.config import Settings
from bot.pause import ACCOUNT_TEXT
from tests.slack.payloads import slash_command
from tests.slack.test_oauth import NEW_TEAM, Live, live  # noqa: F401 (the fixture)

ADMIN = "U0ADMIN"
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


async def test_the_operator_workspace_s_token_tells_the_admins(
        live: Live, settings: Settings, sim: Any) -> None:  # noqa: F811
    settings.slack.admin_users = [ADMIN]
    settings.slack.admin_team = NEW_TEAM
    assert (await live.install()).status_code == 200
    [token] = live.fake.installed
    sim.fail_account("locked")
    await live.sender.command(slash_command("a kite over hills --seconds 1", team=NEW_TEAM))
    [told] = await live.fake.wait_for(
        lambda: [m.text for m in live.fake.live_messages(f"D{ADMIN}")], limit=30)
    assert told.startswith(ACCOUNT_TEXT) and "Exhausted balance" in told
    assert live.fake.tokens_of("conversations.open") == [token]


async def test_without_admin_team_the_log_says_why_no_one_was_told(
        live: Live, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    settings.slack.admin_users = [ADMIN]
    assert (await live.install()).status_code == 200
    with caplog.at_level(logging.WARNING):
        assert await live.app.notify_admins("Budget alert: a test") == 0
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "set [slack] admin_team" in said and "no admin could be told in chat" in said
    assert live.fake.named("conversations.open") == []
