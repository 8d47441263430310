"""Odd input through `Bot.handle` on the real App: a plain refusal, nothing changed, no error id.

Numbers past 64 bits, negative job ids, URLs with control characters, grants
past `[quota] max_grant_credits`, prompts with terminal escapes and
bidirectional overrides, and huge unknown flags.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot import quota as quota_module
from bot.model import JobState
from tests.console.helpers import run_cli, write_config
from tests.core.test_commands import ALICE, ROOT, inv, ledger, notes
from tests.fakes.chat import FakeChat

BIG = "99999999999999999999"  # 20 digits: past 2**64


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")
    app.register_port(port)
    return port


def assert_plain(said: str, caplog: pytest.LogCaptureFixture) -> None:
    assert "error id" not in said, said
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(("command", "text", "user", "options", "expected"), [
    ("cancel", BIG, ALICE, {}, f"There is no job #{BIG}."),
    ("cancel", "#" + BIG, ALICE, {}, f"There is no job #{BIG}."),
    ("cancel", "9223372036854775808", ALICE, {}, "There is no job #9223372036854775808."),
    ("cancel", "0", ALICE, {}, "There is no job #0."),
    ("cancel", "-1", ALICE, {}, "'-1' is not a job number"),
    ("cancel", "job1", ALICE, {}, "'job1' is not a job number"),
    ("cancel", "1" * 5000, ALICE, {}, "There is no job #111111111111111111111111111111111111111…"),
    ("action", "", ALICE, {"action": "reroll", "job_id": 10**30}, "There is no job #1000000"),
    ("action", "", ALICE, {"action": "extend", "job_id": 2**63}, "There is no job #9223372036854775808."),
    ("admin", f"grant bob {BIG}", ROOT, {},
     f"credits must be between -1,000,000 and 1,000,000 at a time ([quota] max_grant_credits); got {BIG}."),
    ("admin", "grant bob 1000001", ROOT, {}, "credits must be between -1,000,000 and 1,000,000"),
    ("admin", "grant bob 1e3", ROOT, {}, "credits must be a whole number, not '1e3'."),
    ("admin", "usage users 999999999999", ROOT, {}, "days must be between 1 and 3,660; got 999999999999."),
    ("admin", f"usage users {BIG}", ROOT, {}, "days must be between 1 and 3,660"),
    ("admin", "usage users 0", ROOT, {}, "days must be between 1 and 3,660; got 0."),
])
async def test_numbers_out_of_range_get_a_plain_refusal(
        app: Any, chat: FakeChat, caplog: pytest.LogCaptureFixture, command: str, text: str,
        user: Any, options: dict[str, Any], expected: str) -> None:
    caplog.set_level(logging.INFO)
    await app.bot.handle(inv(command, text, user=user, options=options), chat)
    said = notes(chat, user)[-1]
    assert said.startswith(expected) or expected in said, said
    assert len(said) < 300
    assert_plain(said, caplog)
    assert await ledger(app) == []


async def test_cancel_minus_one_leaves_job_one_running(app: Any, chat: FakeChat, sim: Any) -> None:
    sim.options.run_seconds = 30
    await app.bot.handle(inv("video", "a long fox"), chat)
    await app.bot.handle(inv("cancel", "-1"), chat)
    assert "not a job number" in notes(chat)[-1]
    assert (await app.store.get_job(1)).state is not JobState.CANCELLED
    await app.bot.handle(inv("cancel", "1"), chat)
    assert (await app.runner.wait(1)).state is JobState.CANCELLED


async def test_two_huge_grants_leave_the_balance_an_integer(
        app: Any, chat: FakeChat, caplog: pytest.LogCaptureFixture) -> None:
    """Two grants of 9e18 once made SQLite turn the balance into a float; audit() then failed."""
    for _ in range(2):
        await app.bot.handle(inv("admin", "grant bob 9000000000000000000", user=ROOT), chat)
        assert "max_grant_credits" in notes(chat, ROOT)[-1]
    await app.bot.handle(inv("admin", "grant bob 1000000", user=ROOT), chat)
    await app.bot.handle(inv("admin", "grant bob 1000000", user=ROOT), chat)
    assert notes(chat, ROOT)[-1] == "Granted 1000000 credits to console:bob."
    row = await app.store.get_user("console:bob")
    assert type(row.bonus_credits) is int and row.bonus_credits == 2_000_000
    assert await app.store.audit() == []
    assert_plain(notes(chat, ROOT)[-1], caplog)


async def test_the_grant_limit_is_the_operators_setting(app: Any, chat: FakeChat) -> None:
    app.settings.quota.max_grant_credits = 50
    await app.bot.handle(inv("admin", "grant bob 51", user=ROOT), chat)
    assert "between -50 and 50" in notes(chat, ROOT)[-1]
    await app.bot.handle(inv("admin", "grant bob -51", user=ROOT), chat)
    assert "between -50 and 50" in notes(chat, ROOT)[-1]
    await app.bot.handle(inv("admin", "grant bob 50", user=ROOT), chat)
    assert notes(chat, ROOT)[-1] == "Granted 50 credits to console:bob."
    # The policy holds for any caller, not only the admin command.
    with pytest.raises(Exception, match="max_grant_credits"):
        await app.quota.grant("console:bob", 51, by="test")


async def test_a_balance_never_passes_the_ceiling(app: Any, chat: FakeChat,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quota_module, "MAX_GRANTED_BALANCE", 100)
    await app.bot.handle(inv("admin", "grant bob 60", user=ROOT), chat)
    await app.bot.handle(inv("admin", "grant bob 60", user=ROOT), chat)
    assert "may not pass 100" in notes(chat, ROOT)[-1]
    assert (await app.store.get_user("console:bob")).bonus_credits == 60


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:1/a\x00b.png", "http://127.0.0.1:1/a\tb.png", "http://127.0.0.1:1/a\nb.png",
    "http://127.0.0.1:1/a\x1b[31mb.png", "http://127.0.0.1:1/a\x7fb.png", "cat\x00.png",
    "http://127.0.0.1:1/\u202egnp.exe",
])
async def test_a_url_with_control_characters_is_refused_clearly(
        app: Any, chat: FakeChat, caplog: pytest.LogCaptureFixture, url: str) -> None:
    caplog.set_level(logging.INFO)
    await app.bot.handle(inv("video", f'a fox --image "{url}"'), chat)
    said = notes(chat)[-1]
    assert "control character" in said and "--image" in said, said
    assert "\x00" not in said and "\x1b" not in said and "\t" not in said
    assert_plain(said, caplog)
    assert await app.store.list_jobs(ALICE.key) == []


async def test_a_link_that_cannot_be_read_is_refused_clearly(
        app: Any, chat: FakeChat, caplog: pytest.LogCaptureFixture) -> None:
    await app.bot.handle(inv("video", 'a fox --image "http://[::1/a.png"'), chat)
    said = notes(chat)[-1]
    assert said == "--image 'http://[::1/a.png' is not a link I can read; check it."
    assert_plain(said, caplog)


async def test_a_prompt_loses_escapes_controls_and_bidi_overrides(app: Any, chat: FakeChat) -> None:
    raw = ("a \x1b[31mred\x1b[0m fox\x00 \x1b]0;pwned\x07jumps \u202eyzal\u202c over "
           "the\x08 \u2066dog\u2069\r\nat dawn \x9b2J\u05e9\u05dc\u05d5\u05dd")
    await app.bot.handle(inv("video", raw), chat)
    job = await app.runner.wait(1)
    assert job.prompt == "a red fox jumps yzal over the dog at dawn \u05e9\u05dc\u05d5\u05dd"
    assert job.input["prompt"] == job.prompt  # what fal was sent
    shown = "\n".join(c.card.text() for c in chat.calls if c.card is not None)
    assert "a red fox jumps yzal over the dog" in shown
    for bad in ("\x1b", "\x00", "\x08", "\x9b", "\u202e", "\u202c", "\u2066", "\u2069", "\r"):
        assert bad not in shown


async def test_an_unknown_flag_is_echoed_shortened(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a fox --" + "x" * 100_000), chat)
    said = notes(chat)[-1]
    assert said.startswith("I don't know the flag --xxxx") and "…" in said
    assert len(said) < 200
    await app.bot.handle(inv("video", "a fox --ar " + "9" * 100_000), chat)
    assert len(notes(chat)[-1]) < 300
    assert await app.store.list_jobs(ALICE.key) == []


def test_a_user_name_that_is_not_utf8_works(tmp_path: Path) -> None:
    """`ltx-bot chat --user $'\\xff'`: argv bytes that are not UTF-8 once ended in an error id."""
    config = write_config(tmp_path)
    result = run_cli(["chat", "--config", str(config), "--user", "\udcff\x1b[31m"], cwd=tmp_path,
                     stdin="/quota\n/video a fox --seconds 1\n/jobs\n")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error id" not in result.stdout
    assert "Today: " in result.stdout and "Your recent jobs:\n#1 " in result.stdout
    assert "saved: " in result.stdout
