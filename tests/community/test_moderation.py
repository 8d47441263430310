"""Moderators and members acting on videos through `Bot.handle`, on the real App,
simulator and SQLite file (FakeChat as the platform): the moderation log's Block user and
Delete video buttons, the Report button, `admin reports`, a server's own pause, and the
budget alert."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.community import moderation
from bot.community.safety import server_settings
from bot.ports import StatusCard
from tests.community.test_commands import (
    ALICE,
    MOD,
    OTHER,
    ROOM,
    ROOT,
    User,
    inv,
    last_note,
)
from tests.fakes.chat import FakeChat

BOB = User(platform="console", id="bob", name="Bob")


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")
    app.register_port(port)
    return port


def press(kind: str, job_id: int, user: User, place: Any = ROOM) -> Any:
    return inv("action", user=user, place=place, options={"action": kind, "job_id": job_id})


def logged(chat: FakeChat) -> list[StatusCard]:
    return [c.card for c in chat.of_kind("post")
            if c.place is not None and c.place.channel == "mods" and c.card is not None]


async def a_video(app: Any, chat: FakeChat, job_id: int, user: User = ALICE, place: Any = ROOM) -> None:
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1", user, place), chat)
    await chat.wait_video(job_id)


async def test_blocks_outlast_forget_me(app: Any, chat: FakeChat) -> None:
    # A blocked user must not lift their blocks by asking to be forgotten: the moderator's
    # block here and the operator's block everywhere both meet them when they come back.
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await a_video(app, chat, 1)
    await app.bot.handle(press("modblock", 1, MOD), chat)
    await a_video(app, chat, 2, user=BOB)
    await app.bot.handle(inv("admin", "block console:bob", ROOT), chat)
    for who in (ALICE, BOB):
        await app.bot.handle(inv("forget-me", "confirm", who), chat)
        assert last_note(chat, who).startswith("Forgotten:")
    # Forgotten: the server's list names no one, and nothing in the store names them.
    await app.bot.handle(inv("admin", "settings show", MOD), chat)
    assert "console:alice" not in last_note(chat, MOD)
    assert await app.store.get_user(ALICE.key) is None and await app.store.get_user(BOB.key) is None

    await app.bot.handle(inv("video", "a quiet harbour --seconds 1"), chat)
    assert last_note(chat, ALICE) == "You are blocked from starting jobs in this workspace."
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1", BOB), chat)
    assert "You are blocked from starting jobs with this bot" in last_note(chat, BOB)
    assert await app.store.list_jobs(ALICE.key) == [] and await app.store.list_jobs(BOB.key) == []
    # Back as ordinary blocks: listed, and lifted as any block is.
    await app.bot.handle(inv("admin", "settings show", MOD), chat)
    assert "Alice (console:alice)" in last_note(chat, MOD) or "console:alice" in last_note(chat, MOD)
    await app.bot.handle(inv("admin", "unblock-here console:alice", MOD), chat)
    await app.bot.handle(inv("admin", "unblock console:bob", ROOT), chat)
    await a_video(app, chat, 3)
    await a_video(app, chat, 4, user=BOB)
    assert len(await app.store.list_jobs(ALICE.key)) == 1 and len(await app.store.list_jobs(BOB.key)) == 1


async def audit_lines(app: Any, chat: FakeChat) -> list[str]:
    await app.bot.handle(inv("admin", "audit", ROOT), chat)
    return last_note(chat, ROOT).splitlines()[1:]


async def test_a_moderator_blocks_a_user_here_from_the_log(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await a_video(app, chat, 1)
    [entry] = logged(chat)
    assert [(a.kind, a.label) for a in entry.actions] == [("modblock", "Block user"),
                                                          ("moddelete", "Delete video")]
    # Not a moderator: a plain refusal, nothing blocked.
    await app.bot.handle(press("modblock", 1, BOB), chat)
    assert last_note(chat, BOB) == ("Only this workspace's moderators (its admins) can use the "
                                    "moderation log's buttons.")
    await app.bot.handle(press("modblock", 1, MOD), chat)
    assert last_note(chat, MOD).startswith("Alice (console:alice) is blocked in this workspace")
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1"), chat)
    assert last_note(chat, ALICE) == "You are blocked from starting jobs in this workspace."
    assert len(await app.store.list_jobs(ALICE.key)) == 1
    # The block is listed with this server's settings, with how to lift it.
    await app.bot.handle(inv("admin", "settings show", MOD), chat)
    assert last_note(chat, MOD).splitlines()[-2:] == [
        "Blocked in this workspace (the moderation log's Block user): Alice (console:alice).",
        "To lift a block: admin unblock-here and the user, e.g. admin unblock-here console:alice."]
    # Another server is not this one's to block in.
    await a_video(app, chat, 2, place=OTHER)
    # A moderator of another server can't use this server's job.
    await app.bot.handle(press("modblock", 1, MOD, OTHER), chat)
    assert last_note(chat, MOD) == "Job #1 was not made in this workspace."
    await app.bot.handle(inv("admin", "unblock-here console:alice", MOD), chat)
    assert last_note(chat, MOD) == "console:alice is unblocked in this workspace."
    await app.bot.handle(inv("admin", "settings show", MOD), chat)
    assert last_note(chat, MOD).splitlines()[-1] == (
        "Blocked in this workspace (the moderation log's Block user): no one.")
    await a_video(app, chat, 3)
    assert [line.split(": ", 1)[1] for line in await audit_lines(app, chat)][:2] == [
        "unblock here console:alice", "block here console:alice: job #1"]


async def test_a_moderator_deletes_the_video_from_the_log(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await a_video(app, chat, 1)
    await app.bot.handle(press("moddelete", 1, BOB), chat)
    assert "moderators" in last_note(chat, BOB) and not chat.of_kind("delete")
    await app.bot.handle(press("moddelete", 1, MOD), chat)
    assert last_note(chat, MOD) == "The video of job #1 is deleted."
    [deleted] = chat.of_kind("delete")
    assert deleted.ref == chat.videos(1)[0].ref
    assert (await app.store.get_job(1)).result_message.deleted
    assert (await audit_lines(app, chat))[0].split(": ", 1)[1] == "delete video console:alice: job #1"


async def test_report_goes_to_the_log_once_per_user(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await a_video(app, chat, 1)
    assert [a.kind for a in chat.videos(1)[0].card.actions][-1] == "report"
    await app.bot.handle(press("report", 1, BOB), chat)
    assert last_note(chat, BOB) == "Thank you: job #1 was reported to this workspace's moderators."
    reported = logged(chat)[-1]
    assert reported.title == "Job #1 reported"
    assert reported.lines[:3] == ["Reported by Bob (console:bob)",
                                  "Made by Alice (console:alice) in #general",
                                  "Prompt: a quiet harbour"]
    assert [a.kind for a in reported.actions] == ["modblock", "moddelete"]
    await app.bot.handle(press("report", 1, BOB), chat)
    assert last_note(chat, BOB) == "You have reported job #1 already."
    assert len(logged(chat)) == 2  # the job's entry and one report
    await app.bot.handle(inv("admin", "reports", MOD), chat)
    lines = last_note(chat, MOD).splitlines()
    assert lines[0] == "Reports in the last 7 days:"
    assert lines[1].endswith("job #1: reported by Bob (console:bob)")


async def test_without_a_log_a_report_is_kept_for_admin_reports(app: Any, chat: FakeChat) -> None:
    await a_video(app, chat, 1)
    await app.bot.handle(press("report", 1, BOB), chat)
    assert last_note(chat, BOB) == "Thank you: job #1 was reported; the workspace's admins will see it."
    await app.bot.handle(inv("admin", "reports 1", MOD), chat)
    assert last_note(chat, MOD).splitlines()[1].endswith(
        "job #1: reported by Bob (console:bob) (no moderation log)")
    # Another server's admins see none of it; the operator's admins see every server's.
    await app.bot.handle(inv("admin", "reports", MOD, OTHER), chat)
    assert last_note(chat, MOD) == "No reports in the last 7 days."
    await app.bot.handle(inv("admin", "reports", ROOT, OTHER), chat)
    assert "job #1 in console:local: reported by Bob" in last_note(chat, ROOT)
    await app.bot.handle(inv("admin", "reports", BOB), chat)
    assert "admin reports" in last_note(chat, BOB) and "Reports" not in last_note(chat, BOB)


async def test_only_a_finished_video_can_be_reported(app: Any, chat: FakeChat, sim: Any) -> None:
    await app.bot.handle(press("report", 7, BOB), chat)
    assert last_note(chat, BOB) == "There is no job #7."
    sim.options.run_seconds = 60.0
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1"), chat)
    await app.bot.handle(inv("cancel", "1"), chat)
    await app.runner.wait(1)
    await app.bot.handle(press("report", 1, BOB), chat)
    assert last_note(chat, BOB) == "Job #1 has no finished video to report."
    assert await moderation.moderation(app.bot.services).reports(None, app.quota.clock().replace(year=2000)) == []


async def test_a_server_admin_pauses_their_server_only(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "pause lunch break", MOD), chat)
    assert last_note(chat, MOD).startswith("Video generation is paused in this workspace:")
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1"), chat)
    assert last_note(chat, ALICE) == "Video generation is paused by an admin: lunch break."
    await a_video(app, chat, 1, place=OTHER)
    await app.bot.handle(inv("admin", "resume", MOD), chat)
    assert last_note(chat, MOD) == "Video generation resumes in this workspace."
    await a_video(app, chat, 2)
    actions = [line.split(": ", 1)[1] for line in await audit_lines(app, chat)]
    assert actions[:2] == ["resume console:local", "pause console:local: lunch break"]


async def test_the_operator_pauses_one_server_with_here(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "pause here", ROOT), chat)
    assert "`admin resume here` ends it" in last_note(chat, ROOT)
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1"), chat)
    assert last_note(chat, ALICE) == "Video generation is paused by an admin."
    await a_video(app, chat, 1, place=OTHER)
    # A server admin can't lift a pause everywhere, nor set one.
    await app.bot.handle(inv("admin", "pause", ROOT, OTHER), chat)
    await app.bot.handle(inv("admin", "resume", MOD), chat)
    assert last_note(chat, MOD) == ("Video generation resumes in this workspace. (It is still "
                                    "paused everywhere by the bot's operator.)")
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1", place=OTHER), chat)
    assert last_note(chat, ALICE) == "Video generation is paused by an admin."
    await app.bot.handle(inv("admin", "resume", ROOT), chat)
    assert last_note(chat, ROOT) == "Video generation resumes; waiting jobs go on."


async def test_a_budget_alert_goes_to_the_log_once(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await a_video(app, chat, 1)
    used = (await app.store.get_job(1)).estimate_credits
    # 80% is reached by the next job (and stays reached by the one after).
    app.settings.quota.workspace_monthly_credits = int(used * 2 / 0.8)
    await a_video(app, chat, 2, user=BOB)
    await chat.wait_for(lambda: any(c.title == "Budget alert" for c in logged(chat)),
                        what="the budget alert")
    # Every later check (in this process or another sharing the store) finds it sent.
    rules = await server_settings(app.bot.services).safety(ROOM)
    await moderation.budget_check(app.bot.services, rules, inv("video", user=BOB))
    await a_video(app, chat, 3, user=ROOT, place=OTHER)
    alerts = [c for c in logged(chat) if c.title == "Budget alert"]
    assert len(alerts) == 1 and "This workspace (console:local) has used" in alerts[0].lines[0]
    # The log had it: the operator's admins are not told of a server's own budget.
    assert chat.of_kind("admin_notice") == []


async def test_a_global_budget_alert_without_a_log_is_an_error_line_and_an_admin_notice(
        app: Any, chat: FakeChat, caplog: pytest.LogCaptureFixture) -> None:
    await a_video(app, chat, 1)
    used = (await app.store.get_job(1)).estimate_credits
    app.settings.quota.global_daily_credits = int(used * 2 / 0.8)
    with caplog.at_level(logging.ERROR, logger="bot.community.moderation"):
        await a_video(app, chat, 2, user=BOB)
        await chat.wait_for(lambda: any("budget alert" in r.getMessage() for r in caplog.records),
                            what="the alert")
        await moderation.budget_check(app.bot.services, app.settings.safety, inv("video", user=BOB))
    alerts = [r.getMessage() for r in caplog.records if "budget alert" in r.getMessage()]
    assert len(alerts) == 1 and "daily credits for everyone" in alerts[0]
    # And the operator's admins are told in chat, once, through the port that can.
    await chat.wait_for(lambda: bool(chat.of_kind("admin_notice")), what="the admins' notice")
    [told] = [c.text for c in chat.of_kind("admin_notice")]
    assert told is not None and told.startswith("Budget alert: The bot has used")
