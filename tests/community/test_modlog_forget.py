"""forget-me reaches the moderation log: through `Bot.handle` on the real App, simulator
and SQLite file (FakeChat as the platform), every entry about the user (their jobs,
their refused prompt, a report they made) is edited to a neutral card, and no later
edit (a job ending after it) brings their words back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.community.modlog import FORGOTTEN_CARD
from bot.model import JobState
from bot.ports import StatusCard
from tests.community.test_commands import ALICE, MOD, OTHER, ROOM, User, inv, last_note
from tests.fakes.chat import ChatCall, FakeChat

BOB = User(platform="console", id="bob", name="Bob")
PROMPT = "a zanzibar quokka juggling seven teacups"


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")
    app.register_port(port)
    return port


def in_log(chat: FakeChat) -> list[ChatCall]:
    """The moderation log's posts, in order."""
    return [c for c in chat.of_kind("post") if c.place is not None and c.place.channel == "mods"]


def says(card: StatusCard | None, *words: str) -> bool:
    text = "" if card is None else " ".join([card.title, *card.lines])
    return any(w in text for w in words)


async def a_video(app: Any, chat: FakeChat, job_id: int, text: str, user: User,
                  place: Any = ROOM) -> None:
    await app.bot.handle(inv("video", f"{text} --seconds 1", user, place), chat)
    assert (await app.runner.wait(job_id)).state is JobState.DONE


async def test_forget_me_makes_the_log_entries_about_the_user_neutral(
        app: Any, chat: FakeChat, sim: Any) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await app.bot.handle(inv("admin", "settings set blocklist gore", MOD), chat)
    await a_video(app, chat, 1, PROMPT, ALICE)
    await app.bot.handle(inv("video", "gore everywhere --seconds 1", ALICE, ROOM), chat)
    await a_video(app, chat, 2, "a lighthouse at dusk", BOB)
    await app.bot.handle(inv("action", user=BOB, place=ROOM,
                             options={"action": "report", "job_id": 1}), chat)
    await app.bot.handle(inv("action", user=ALICE, place=ROOM,
                             options={"action": "report", "job_id": 2}), chat)
    sim.options.run_seconds = 30.0  # one job still running when she is forgotten
    await app.bot.handle(inv("video", f"{PROMPT} again --seconds 1", ALICE, ROOM), chat)
    entries = in_log(chat)
    # Her job, her refused prompt, Bob's job, Bob's report of hers, her report of Bob's,
    # her running job.
    assert [c.card.title for c in entries if c.card is not None] == [
        "Job #1 started", "Blocklist refused a prompt", "Job #2 started", "Job #1 reported",
        "Job #2 reported", "Job #3 started"]
    about_her = [entries[i].ref for i in (0, 1, 3, 4, 5)]
    forgetting = len(chat.calls)

    await app.bot.handle(inv("forget-me", "confirm", ALICE, ROOM), chat)
    assert "5 moderation-log entry(ies) made anonymous" in last_note(chat, ALICE)
    assert "could not be found" not in last_note(chat, ALICE)  # every entry was remembered
    await asyncio.sleep(0.5)  # a job's entry would be edited as its job ends

    for ref in about_her:
        assert ref is not None and chat.messages[ref.id] == FORGOTTEN_CARD
    assert FORGOTTEN_CARD.actions == [] and not says(FORGOTTEN_CARD, "Alice", "alice")
    # The job's own card in its channel is the job's (cancelled, then deleted): the log's
    # calls are those in its channel.
    after = [c for c in chat.calls[forgetting:] if c.kind in ("edit", "post")
             and (c.ref.channel if c.ref is not None else "") == "mods"]
    first = next(i for i, c in enumerate(after) if c.card == FORGOTTEN_CARD)
    # Her running job's entry said "cancelled" (with the prompt) before it was made neutral.
    assert [c.card.title for c in after[:first] if c.card is not None] == ["Job #3 cancelled"]
    assert not [c for c in after[first:] if says(c.card, PROMPT, "gore", "console:alice", "Alice")]
    # Bob's own entry is his: it stays as it was.
    bob_entry = entries[2].ref
    assert bob_entry is not None and says(chat.messages[bob_entry.id], "a lighthouse at dusk")


async def test_an_entry_gone_meanwhile_is_skipped(app: Any, chat: FakeChat,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await a_video(app, chat, 1, PROMPT, ALICE)
    [entry] = in_log(chat)
    assert entry.ref is not None
    await chat.delete(entry.ref)  # a moderator deleted it by hand
    with caplog.at_level("INFO", logger="bot.community.modlog"):
        await app.bot.handle(inv("forget-me", "confirm", ALICE, ROOM), chat)
    assert last_note(chat, ALICE).startswith("Forgotten:")
    assert "could not edit a moderation-log entry while forgetting: LookupError" in caplog.text


async def test_entries_from_before_the_bot_remembered_them_are_owned_up_to(
        app: Any, chat: FakeChat) -> None:
    """Entries posted before schema v9 have no `modlog_posts` row: forget-me cannot edit
    them, and says so (how many, at most, and that a moderator must delete them)."""
    await app.bot.handle(inv("admin", "settings set mod_log_channel mods", MOD), chat)
    await app.bot.handle(inv("admin", "settings set blocklist gore", MOD), chat)
    await a_video(app, chat, 1, PROMPT, ALICE)
    await app.bot.handle(inv("video", "gore everywhere --seconds 1", ALICE, ROOM), chat)
    await chat.wait_for(lambda: len(in_log(chat)) == 2, what="the refusal's entry")
    # (The entry's row is written as it is posted, long before this job ends.)
    await a_video(app, chat, 2, "a lighthouse at dusk", ALICE, place=OTHER)  # no log there
    old = [c.ref for c in in_log(chat)]
    assert len(old) == 2
    # As a store migrated from before v9 has them: the entries, no record of where.
    await app.store.run(lambda tx: tx.execute("DELETE FROM modlog_posts"))

    await app.bot.handle(inv("forget-me", "confirm", ALICE, ROOM), chat)
    said = last_note(chat, ALICE)
    assert ("up to 2 older moderation-log entry(ies) could not be found (the bot kept no "
            "record of where they were posted): a moderator must delete them by hand") in said
    assert "made anonymous" not in said
    for ref in old:  # untouched: the bot does not know they are hers
        assert ref is not None and chat.messages[ref.id] != FORGOTTEN_CARD
