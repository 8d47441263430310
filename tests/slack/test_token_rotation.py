"""Slack token rotation for installs in many workspaces: with rotation opted in, an
installation's bot token expires after 12 hours and a refresh token (good once) buys the
next. Background work (status cards, admin notices) refreshes the token before using it,
incoming requests too (bolt's authorize, through the same refresher), the refreshed
installation is sealed into the store, and two processes refreshing at once agree on the
winner's token. Time moves by an injected clock, shared with the fake Slack."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from adapters.slack_workspaces import Workspaces, make_clients
from bot.config import Settings
from bot.ports import Place, StatusCard
from tests.slack.payloads import slash_command
from tests.slack.test_oauth import NEW_TEAM, Live, live  # noqa: F401 (the fixture)

ADMIN = "U0ADMIN"
HOURS = 3600.0
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


class Clock:
    """Wall time plus an offset a test moves forward (no sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def rotating_install(lv: Live, settings: Settings) -> tuple[Clock, str]:
    """Install NEW_TEAM with token rotation on; the fake and the bot share one clock."""
    clock = Clock()
    lv.fake.rotation = True
    lv.fake.clock = clock
    lv.runner.adapter.workspaces.clock = clock
    settings.slack.admin_users = [ADMIN]
    settings.slack.admin_team = NEW_TEAM
    assert (await lv.install()).status_code == 200, "install"
    [token] = lv.fake.installed
    assert token.startswith("xoxe.xoxb-")
    return clock, token


async def stored_token(lv: Live) -> tuple[str | None, str | None]:
    assert lv.runner.adapter.oauth is not None
    bot = await lv.runner.adapter.oauth.installations.async_find_bot(
        enterprise_id=None, team_id=NEW_TEAM)
    assert bot is not None
    return bot.bot_token, bot.bot_refresh_token


def refreshes(lv: Live) -> int:
    return sum(1 for c in lv.fake.named("oauth.v2.access")
               if c.params.get("grant_type") == "refresh_token")


async def test_background_work_refreshes_an_expired_token_and_stores_it_sealed(
        live: Live, settings: Settings) -> None:  # noqa: F811
    clock, old = await rotating_install(live, settings)
    # The token is in use (and cached) before it runs out.
    assert await live.app.notify_admins("Budget alert: before") == 1
    assert live.fake.tokens_of("chat.postMessage") == [old]
    sealed_before = live.sealed_rows()

    clock.offset = 13 * HOURS  # past the 12 hours the token lasts
    assert live.fake.expired(old)
    assert await live.app.notify_admins("Budget alert: after") == 1
    port = live.runner.port
    ref = await port.post(Place("slack", "C0001", NEW_TEAM), StatusCard(title="Queued", job_id=7))
    await port.edit(ref, StatusCard(title="Rendering", job_id=7))

    new, refresh = await stored_token(live)
    assert new is not None and new != old and not live.fake.expired(new)
    assert refresh is not None and refresh.startswith("xoxe-1-")
    for method in ("conversations.open", "chat.postMessage"):
        assert live.fake.tokens_of(method)[-1] == new, method
    assert live.fake.tokens_of("chat.update") == [new]
    assert refreshes(live) == 1
    # Sealed at rest, and not the row it was.
    [(workspace, sealed)] = live.sealed_rows()
    assert workspace == NEW_TEAM and (workspace, sealed) not in sealed_before
    assert new not in sealed and "xoxe" not in sealed


async def test_an_incoming_command_after_expiry_is_served_with_a_refreshed_token(
        live: Live, settings: Settings) -> None:  # noqa: F811
    """bolt's own authorize step rotates for incoming requests: through our refresher (the
    fake Slack at api_url, the shared clock, the store's lock-free hand-over)."""
    clock, old = await rotating_install(live, settings)
    clock.offset = 13 * HOURS
    reply = await live.sender.command(slash_command("a kite over hills --seconds 1", team=NEW_TEAM))
    assert reply.status_code == 200
    fake = live.fake
    videos = await fake.wait_for(lambda: [f for f in fake.files.values()
                                          if f.completed and f.name.endswith(".mp4")], limit=60)
    assert len(videos) == 1
    new, _ = await stored_token(live)
    # bolt's authorize checks the token with auth.test (the install checked the old one).
    assert new != old and fake.tokens_of("auth.test") == [old, new]
    for method in ("chat.postMessage", "files.completeUploadExternal"):
        assert set(fake.tokens_of(method)) == {new}, method
    assert refreshes(live) == 1


async def test_two_processes_refreshing_at_once_agree_on_the_winner_s_token(
        live: Live, settings: Settings) -> None:  # noqa: F811
    """Both see the expired token and spend the same refresh token: Slack honours it once.
    The loser's refresh is refused; it re-reads the store and uses what the winner saved."""
    clock, old = await rotating_install(live, settings)
    here = live.runner.adapter.workspaces
    assert here.installations is not None
    # A second process: its own Workspaces over the same store (and the same key).
    there = Workspaces(settings.slack, make_clients(None, settings.slack), here.installations)
    there.clock = clock
    clock.offset = 13 * HOURS
    live.fake.refresh_gate = gate = asyncio.Event()
    both = asyncio.gather(here.for_team(NEW_TEAM), there.for_team(NEW_TEAM))
    await live.fake.wait_for(lambda: refreshes(live) == 2)  # both spent the old refresh token
    gate.set()
    try:
        mine, theirs = await asyncio.wait_for(both, 15)
    finally:
        await there.close()
    new, _ = await stored_token(live)
    assert mine.token == theirs.token == new and new != old
    assert not live.fake.expired(new)
    assert len(live.fake.installed) == 2  # the install's token and one refreshed token


async def test_a_token_that_cannot_be_renewed_is_said_plainly(
        live: Live, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """The refresh token no longer works: the log says so at ERROR (no token in it), the
    background notice is not sent with a dead token, and a command from the workspace is
    answered with bolt's "reinstall this app" and starts nothing."""
    clock, old = await rotating_install(live, settings)
    refresher = live.runner.adapter.workspaces.refresher
    assert refresher is not None
    refresher.handover_seconds = 0.0  # no winner will save a token: give up at once
    live.fake.revoke_refresh_tokens()
    clock.offset = 13 * HOURS
    with caplog.at_level(logging.WARNING):
        assert await live.app.notify_admins("Budget alert: after") == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("could not be refreshed (invalid_refresh_token); reinstall" in e for e in errors)
    assert not any(old in r.getMessage() or "xoxe-1" in r.getMessage() for r in caplog.records)
    assert live.fake.named("conversations.open") == []
    assert (await stored_token(live))[0] == old  # nothing changed in the store

    reply = await live.sender.command(slash_command(
        "a kite --seconds 1", team=NEW_TEAM, response_url=f"{live.fake.url}/response/1"))
    assert reply.status_code == 200
    said = await live.fake.wait_for(lambda: live.fake.responses)
    assert "reinstall this app" in str(said[-1])
    await live.runner.adapter.idle()
    assert await live.app.store.list_jobs("slack:U0001") == []


async def test_a_failed_refresh_keeps_the_token_while_it_lasts_and_tries_again(
        live: Live, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """Inside the two-hour window but not yet expired: Slack failing the refresh does not
    stop the bot; the current token serves, and the next use renews it."""
    clock, old = await rotating_install(live, settings)
    refresher = live.runner.adapter.workspaces.refresher
    assert refresher is not None
    refresher.handover_seconds = 0.0
    clock.offset = 11 * HOURS  # one hour left
    live.fake.inject("oauth.v2.access", status=500, count=1)
    with caplog.at_level(logging.WARNING):
        assert await live.app.notify_admins("Budget alert: one") == 1
    assert live.fake.tokens_of("chat.postMessage") == [old]
    assert any("could not be refreshed yet" in r.getMessage() for r in caplog.records)
    assert (await stored_token(live))[0] == old
    # Within a minute the token is used without asking Slack again...
    assert await live.app.notify_admins("Budget alert: two") == 1
    assert refreshes(live) == 1 and live.fake.tokens_of("chat.postMessage") == [old, old]

    clock.offset += 61  # ... and after it, renewed.
    assert await live.app.notify_admins("Budget alert: three") == 1
    new, _ = await stored_token(live)
    assert new != old and live.fake.tokens_of("chat.postMessage") == [old, old, new]
    assert refreshes(live) == 2
