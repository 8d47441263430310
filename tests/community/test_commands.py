"""The server's own settings and safety rules through `Bot.handle`, on the real App,
simulator and SQLite file (FakeChat as the platform)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.ports import Invocation, Place, User
from bot.store.community import Community
from tests.fakes.chat import FakeChat

ALICE = User(platform="console", id="alice", name="Alice")
MOD = User(platform="console", id="mod", name="Mod", is_workspace_admin=True)
ROOT = User(platform="console", id="root", name="Root", is_admin=True)
ROOM = Place(platform="console", channel="general", workspace="local")
OTHER = Place(platform="console", channel="other", workspace="elsewhere")


def inv(command: str, text: str = "", user: User = ALICE, place: Place = ROOM, **kw: Any) -> Invocation:
    return Invocation(user=user, place=place, command=command, text=text, **kw)


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")
    app.register_port(port)
    return port


def last_note(chat: FakeChat, user: User) -> str:
    return [c.text or "" for c in chat.of_kind("tell") if c.user == user][-1]


async def nothing_started(app: Any, user: User = ALICE) -> bool:
    jobs, rows = await app.store.list_jobs(user.key), await app.store.ledger_rows()
    assert (jobs, rows) == ([], [])
    return True


async def test_a_server_admin_sets_shows_and_resets_their_servers_settings(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set blocklist gore, bad phrase", MOD), chat)
    assert last_note(chat, MOD) == "blocklist is now gore, bad phrase in this workspace."
    await app.bot.handle(inv("admin", "settings set allow_dms off", MOD), chat)
    await app.bot.handle(inv("admin", "settings show", MOD), chat)
    shown = last_note(chat, MOD)
    assert "* blocklist = gore, bad phrase" in shown and "* allow_dms = off" in shown
    assert "  safety_checker = on" in shown
    # Another server keeps the defaults.
    await app.bot.handle(inv("admin", "settings show", ROOT, OTHER), chat)
    assert "  blocklist = none" in last_note(chat, ROOT)
    await app.bot.handle(inv("admin", "settings reset allow_dms", MOD), chat)
    assert last_note(chat, MOD) == "allow_dms is back to the bot's default in this workspace: on."
    assert await Community(app.store, app.quota.clock).settings("console:local") == {
        "blocklist": ["gore", "bad phrase"]}


@pytest.mark.parametrize(("text", "fragment"), [
    ("settings set blocklist_patterns (unclosed", "is not a valid regular expression: missing )"),
    ("settings set allow_dms maybe", "allow_dms is on or off, not 'maybe'"),
    ("settings set flagged_results blur", "flagged_results is one of withhold, spoiler"),
    ("settings set colour red", "There is no setting 'colour'"),
    ("settings set allowed_channels <#ok>, ???", "'???' is not a channel"),
    ("settings set blocklist", "Usage: admin settings set <name> <value>"),
])
async def test_bad_values_are_refused_and_change_nothing(app: Any, chat: FakeChat, text: str,
                                                         fragment: str) -> None:
    await app.bot.handle(inv("admin", text, MOD), chat)
    assert fragment in last_note(chat, MOD)
    assert await Community(app.store, app.quota.clock).settings("console:local") == {}


async def test_patterns_keep_their_commas(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", r"settings set blocklist_patterns bl(o|0){2,}d, k\,ill", MOD), chat)
    assert await Community(app.store, app.quota.clock).settings("console:local") == {
        "blocklist_patterns": ["bl(o|0){2,}d", "k,ill"]}


async def test_operator_commands_stay_with_the_operator(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "grant alice 50", MOD), chat)
    assert "admin grant is for the bot's operator admins" in last_note(chat, MOD)
    await app.bot.handle(inv("admin", "settings show"), chat)
    assert "Admin commands are for the bot's admins" in last_note(chat, ALICE)
    assert (await app.store.get_user(ALICE.key)).bonus_credits == 0


async def test_every_admin_action_is_audited(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "grant alice 50", ROOT), chat)
    await app.bot.handle(inv("admin", "block console:bob", ROOT), chat)
    await app.bot.handle(inv("admin", "settings set blocklist secretword", MOD), chat)
    await app.bot.handle(inv("admin", "settings reset blocklist", MOD), chat)
    await app.bot.handle(inv("admin", "settings set age_restricted_only on", MOD, OTHER), chat)
    await app.bot.handle(inv("admin", "audit 7", MOD), chat)
    mine = last_note(chat, MOD)
    assert mine.startswith("Admin actions in this workspace in the last 7 days, newest first:")
    lines = mine.splitlines()[1:]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "settings reset blocklist", "settings set blocklist: 1 entries",
        "block console:bob: console:bob is blocked.",
        "grant alice: Granted 50 credits to console:alice."]
    assert "secretword" not in mine  # the list itself is not repeated in the audit
    await app.bot.handle(inv("admin", "audit", ROOT), chat)
    everything = last_note(chat, ROOT)
    assert "console:mod in console:elsewhere: settings set age_restricted_only: on" in everything


async def test_a_blocked_prompt_is_refused_for_nothing_and_counted(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set blocklist forbid, bad phrase", MOD), chat)
    for text in ("a F.O.R.B.I.D cat", "a ｆｏｒｂíｄ cat", "a calm lake --negative bad-phrase",
                 'a calm lake --no "f o r b i d"'):
        before = len(chat.of_kind("tell"))
        await app.bot.handle(inv("video", text), chat)
        assert len(chat.of_kind("tell")) == before + 1
        assert last_note(chat, ALICE) == "That prompt is not allowed here."
    assert await nothing_started(app)
    com = Community(app.store, app.quota.clock)
    assert await com.events("console:local", "blocklist", app.quota.clock().replace(year=2000)) == 4
    # Elsewhere the same words are fine; and the folding leaves whole other words alone.
    await app.bot.handle(inv("video", "a forbid cat --seconds 1", place=OTHER), chat)
    await app.bot.handle(inv("video", "forbidden fruit --seconds 1"), chat)
    await chat.wait_video(2)


async def test_the_blocklist_runs_before_any_download(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set blocklist forbid", MOD), chat)
    await app.bot.handle(inv("video", "forbid --image http://127.0.0.1:9/never.png"), chat)
    assert last_note(chat, ALICE) == "That prompt is not allowed here."


async def test_jobs_start_only_where_the_server_allows(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set allowed_channels here, art", MOD), chat)
    elsewhere = replace(ROOM, channel="random")
    await app.bot.handle(inv("video", "a cat --seconds 1", place=elsewhere), chat)
    assert last_note(chat, ALICE) == ("In this workspace jobs start only in #general, #art. "
                                      "Please start yours there.")
    assert await nothing_started(app)
    # quota and help still answer anywhere; a thread of an allowed channel is allowed.
    await app.bot.handle(inv("quota", place=elsewhere), chat)
    assert "Today:" in last_note(chat, ALICE)
    await app.bot.handle(inv("admin", "settings set age_restricted_only on", MOD), chat)
    await app.bot.handle(inv("video", "a cat --seconds 1"), chat)
    assert "only in age-restricted channels (#general, #art)" in last_note(chat, ALICE)
    nsfw_thread = replace(ROOM, channel="t1", thread="t1", parent="art", age_restricted=True)
    await app.bot.handle(inv("video", "a cat --seconds 1", place=nsfw_thread), chat)
    await chat.wait_video(1)


async def test_direct_messages_follow_allow_dms(app: Any, chat: FakeChat) -> None:
    dm = Place(platform="console", channel="D1", direct=True)
    await app.bot.handle(inv("admin", "settings set allow_dms off", ROOT, dm), chat)
    await app.bot.handle(inv("video", "a cat --seconds 1", place=dm), chat)
    assert last_note(chat, ALICE).startswith("Jobs can't be started in direct messages here.")
    assert await nothing_started(app)


async def test_the_safety_checker_setting_reaches_fal(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a cat --seconds 1 --model ltx-13b"), chat)
    await chat.wait_video(1)
    assert (await app.store.get_job(1)).input["enable_safety_checker"] is True
    await app.bot.handle(inv("admin", "settings set safety_checker off", MOD), chat)
    await app.bot.handle(inv("video", "a cat --seconds 1 --model ltx-13b"), chat)
    await chat.wait_video(2)
    assert (await app.store.get_job(2)).input["enable_safety_checker"] is False


async def test_the_moderation_log_sees_started_jobs_and_refused_prompts(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await app.bot.handle(inv("admin", "settings set blocklist forbid", MOD), chat)
    await app.bot.handle(inv("video", "a f.o.r.b.i.d cat"), chat)
    assert last_note(chat, ALICE) == "That prompt is not allowed here."
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1"), chat)
    await chat.wait_video(1)
    logged = [c.card for c in chat.of_kind("post") if c.place is not None and c.place.channel == "mods"]
    assert [c.title for c in logged if c is not None] == ["Blocklist refused a prompt", "Job #1 started"]
    refused, started = (c for c in logged if c is not None)
    assert refused.lines == ["Alice (console:alice) in #general", "Prompt: a f.o.r.b.i.d cat"]
    assert started.lines[:2] == ["Alice (console:alice) in #general", "Prompt: a quiet harbour"]
    assert started.lines[2].startswith("Model: ") and "credits ($" in started.lines[2]
    # When the job ends its entry says so, with the result's link.
    entry = next(c.ref for c in chat.of_kind("post") if c.card is started)

    def entry_edits() -> list[Any]:
        return [c.card for c in chat.of_kind("edit") if c.old_ref == entry and c.card is not None]

    await chat.wait_for(lambda: bool(entry_edits()), what="the entry's update")
    edited = entry_edits()
    assert edited[0].title == "Job #1 done" and edited[0].lines[-1].startswith("Result: http")
    # Another server has no log: nothing posted for its jobs.
    await app.bot.handle(inv("video", "a quiet harbour --seconds 1", place=OTHER), chat)
    await chat.wait_video(2)
    assert len([c for c in chat.of_kind("post") if c.place is not None and c.place.channel == "mods"]) == 2


async def test_help_shows_a_server_admin_the_commands_they_may_use(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("help", user=MOD), chat)
    said = last_note(chat, MOD)
    assert "/admin settings set <name> <value>" in said and "/admin audit [days]" in said
    assert "/admin pause [reason]" in said and "/admin reports [days]" in said
    assert "admin grant" not in said
    await app.bot.handle(inv("help"), chat)
    assert "admin settings" not in last_note(chat, ALICE)
