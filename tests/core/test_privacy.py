"""forget-me, admin forget and my-data through `Bot.handle`, on the real App, simulator
and SQLite file: what identifies a user is gone from the rows AND the raw files, the
amounts stay and still add up."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.commands import privacy
from bot.model import JobState
from bot.ports import User
from bot.privacy.files import history_path
from tests.core.test_commands import ALICE, BOB, ROOT, inv, notes
from tests.fakes.chat import FakeChat

PROMPT = "a zanzibar quokka juggling seven teacups"


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")
    app.register_port(port)
    return port


def raw_files(db: Path) -> bytes:
    """The database file and whatever SQLite keeps beside it (WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


async def _a_finished_job(app: Any, chat: FakeChat, user: User = ALICE) -> int:
    await app.bot.handle(inv("video", f"{PROMPT} --seconds 1 --seed 3", user=user), chat)
    job = (await app.store.list_jobs(user.key, limit=1))[0]
    assert (await app.runner.wait(job.id)).state is JobState.DONE
    return int(job.id)


async def test_forget_me_confirm_scrubs_rows_files_and_logs(app: Any, chat: FakeChat) -> None:
    job_id = await _a_finished_job(app, chat)
    await _a_finished_job(app, chat, user=BOB)
    db = Path(app.settings.database.path)
    assert PROMPT.encode() in raw_files(db)
    logs = app.settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "ltx-bot.log").write_text(f"INFO job {job_id}: {PROMPT}\nINFO console:alice joined\n"
                                      "INFO an unrelated line\n")
    history = history_path(app.settings.data_dir, "alice")
    history.parent.mkdir(parents=True, exist_ok=True)
    history.write_text(f"\n# 2026\n+{PROMPT}\n")
    ledger_before = sorted((r["kind"], r["credits"], r["usd"]) for r in await app.store.ledger_rows())

    await app.bot.handle(inv("forget-me", "confirm"), chat)

    assert "Forgotten: 1 job(s) scrubbed" in notes(chat)[-1]
    job = await app.store.get_job(job_id)
    assert job.prompt == "" and job.input == {} and job.result is None and job.result_url is None
    assert job.owner_key.startswith("forgotten:") and job.owner_name == "forgotten user"
    assert await app.store.get_user(ALICE.key) is None
    # The money stays, moved to the opaque key, and everything still adds up.
    assert sorted((r["kind"], r["credits"], r["usd"])
                  for r in await app.store.ledger_rows()) == ledger_before
    assert {r["user_key"] for r in await app.store.ledger_rows()} == {job.owner_key, BOB.key}
    assert await app.store.audit() == []
    # Bob's job is untouched (his prompt is the same words: his row still holds them).
    bob_job = (await app.store.list_jobs(BOB.key, limit=1))[0]
    assert bob_job.prompt == PROMPT
    # The saved video, the history and the log lines are gone; other log lines stay.
    assert not history.exists()
    assert (logs / "ltx-bot.log").read_text() == "INFO an unrelated line\n"
    deleted = chat.of_kind("delete")
    assert deleted, "the bot's status card of the job is deleted"


async def test_no_trace_in_the_raw_database_files(app: Any, chat: FakeChat) -> None:
    await _a_finished_job(app, chat)
    db = Path(app.settings.database.path)
    assert PROMPT.encode() in raw_files(db)
    await app.bot.handle(inv("forget-me", "confirm"), chat)
    raw = raw_files(db)
    assert PROMPT.encode() not in raw
    assert b"console:alice" not in raw
    assert b"Alice" not in raw


async def test_button_forgets_only_whoever_asked(app: Any, chat: FakeChat) -> None:
    job_id = await _a_finished_job(app, chat)
    await app.bot.handle(inv("forget-me"), chat)
    card = chat.of_kind("post")[-1].card
    assert card is not None and [a.custom_id for a in card.actions] == ["ltx:job:0:forget"]
    assert "forget-me confirm" in "\n".join(card.lines)
    assert (await app.store.get_job(job_id)).prompt == PROMPT  # nothing yet
    # Bob presses Alice's card: he never asked, so nothing happens to anyone.
    await app.bot.handle(inv("action", "0", user=BOB, options={"action": "forget", "job_id": 0}), chat)
    assert "type forget-me to ask" in notes(chat, BOB)[-1]
    assert await app.store.get_user(BOB.key) is not None
    await app.bot.handle(inv("action", "0", options={"action": "forget", "job_id": 0}), chat)
    assert "Forgotten" in notes(chat)[-1]
    assert (await app.store.get_job(job_id)).prompt == ""


async def test_forget_me_cancels_unfinished_jobs(app: Any, chat: FakeChat, sim: Any) -> None:
    sim.options.run_seconds = 30.0
    await app.bot.handle(inv("video", f"{PROMPT} --seconds 1"), chat)
    job = (await app.store.list_jobs(ALICE.key, limit=1))[0]
    await app.bot.handle(inv("forget-me", "confirm"), chat)
    ended = await app.store.get_job(job.id)
    assert ended.state is JobState.CANCELLED and ended.prompt == ""
    assert ended.settled_credits == 0
    assert "1 unfinished job(s) cancelled and refunded" in notes(chat)[-1]
    assert await app.store.audit() == []


async def test_bad_words_change_nothing(app: Any, chat: FakeChat) -> None:
    job_id = await _a_finished_job(app, chat)
    await app.bot.handle(inv("forget-me", "yes please"), chat)
    assert "Usage: forget-me" in notes(chat)[-1]
    assert (await app.store.get_job(job_id)).prompt == PROMPT


async def test_admin_forget(app: Any, chat: FakeChat) -> None:
    job_id = await _a_finished_job(app, chat)
    await app.bot.handle(inv("admin", "forget alice", user=BOB), chat)
    assert "for the bot's admins" in notes(chat, BOB)[-1]
    await app.bot.handle(inv("admin", "forget alice", user=ROOT), chat)
    assert "Forgotten: 1 job(s)" in notes(chat, ROOT)[-1]
    assert (await app.store.get_job(job_id)).prompt == ""
    # The audit trail says an admin forgot someone, not whom.
    await app.bot.handle(inv("admin", "audit", user=ROOT), chat)
    trail = notes(chat, ROOT)[-1]
    assert "forget a user (forgotten)" in trail and "alice" not in trail
    await app.bot.handle(inv("admin", "forget console:nobody", user=ROOT), chat)
    assert "nothing about that user" in notes(chat, ROOT)[-1]


async def test_my_data_is_a_private_json_file(app: Any, chat: FakeChat) -> None:
    job_id = await _a_finished_job(app, chat)
    await app.bot.handle(inv("my-data"), chat)
    call = chat.of_kind("private_file")[-1]
    assert call.user == ALICE and call.filename == "my-data-alice.json"
    data = json.loads(call.data or b"")
    assert data["user"]["key"] == ALICE.key
    assert [j["id"] for j in data["jobs"]] == [job_id]
    assert data["jobs"][0]["prompt"] == PROMPT
    assert data["jobs"][0]["input_json"]["prompt"] == PROMPT
    assert {r["kind"] for r in data["ledger"]} == {"reserve", "settle"}
    assert "interaction_token" not in data["jobs"][0]


def test_history_path_is_the_terminal_chats() -> None:
    from adapters.console_prompt import history_path as console_history

    for name in ("alice", "a b/../c", ".hidden", "ünï"):
        assert history_path(Path("/d"), name) == console_history(Path("/d"), name)


async def test_a_stale_request_is_not_confirmed_by_the_button(
        app: Any, chat: FakeChat, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = await _a_finished_job(app, chat)
    await app.bot.handle(inv("forget-me"), chat)
    later = app.store.clock() + timedelta(seconds=privacy.CONFIRM_SECONDS + 1)
    monkeypatch.setattr(app.store, "clock", lambda: later)
    await app.bot.handle(inv("action", "0", options={"action": "forget", "job_id": 0}), chat)
    assert "type forget-me to ask" in notes(chat)[-1]
    assert (await app.store.get_job(job_id)).prompt == PROMPT


ROOT_DIR = Path(__file__).resolve().parents[2]  # where `tests` imports from
# Another process on the same store (one of several behind a Slack URL, a Discord
# shard): it asks for `forget-me`, shows the card, and exits.
ASK_ELSEWHERE = """
import asyncio, sys
from pathlib import Path
from bot.app import App
from tests.conftest import make_settings
from tests.core.test_commands import inv
from tests.fakes.chat import FakeChat

async def main() -> None:
    app = App(make_settings(Path(sys.argv[1])))
    await app.start()
    chat = FakeChat("console")
    app.register_port(chat)
    await app.bot.handle(inv("forget-me"), chat)
    print(chat.of_kind("post")[-1].card.title)
    await app.stop()

asyncio.run(main())
"""


async def test_forget_me_asked_in_one_process_is_confirmed_in_another(
        app: Any, chat: FakeChat, tmp_path: Path) -> None:
    """The press reaches a process that did not see the ask; Bob's press forgets nobody."""
    import asyncio
    import os
    import sys

    from tests.guard import with_loopback_guard

    job_id = await _a_finished_job(app, chat)
    env = with_loopback_guard({**os.environ, "PYTHONPATH": str(ROOT_DIR)})
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ASK_ELSEWHERE, str(tmp_path), cwd=ROOT_DIR, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip() == "Forget me?"
    press = {"action": "forget", "job_id": 0}
    await app.bot.handle(inv("action", "0", options=press, user=BOB), chat)
    assert "type forget-me to ask" in notes(chat, BOB)[-1]
    assert (await app.store.get_job(job_id)).prompt == PROMPT
    await app.bot.handle(inv("action", "0", options=press), chat)
    assert "Forgotten: 1 job(s) scrubbed" in notes(chat)[-1]
    assert (await app.store.get_job(job_id)).prompt == ""
    # The request was used up: a second press asks again.
    await app.bot.handle(inv("action", "0", options=press), chat)
    assert "type forget-me to ask" in notes(chat)[-1]


# ---------------------------------------------------------------- the Delete button and fal


async def test_delete_button_asks_fal_to_delete_its_copy(app: Any, chat: FakeChat, sim: Any) -> None:
    import httpx

    job_id = await _a_finished_job(app, chat)
    job = await app.store.get_job(job_id)
    async with httpx.AsyncClient() as http:
        assert (await http.get(job.result_url)).status_code == 200
        await app.bot.handle(inv("action", str(job_id), options={"action": "delete"}), chat)
        assert notes(chat)[-1] == (f"Deleted the video of job #{job_id}. fal deleted its copy "
                                   "of the request and the video file too.")
        assert sim.requests_by_kind["delete_payloads"] == 1
        # The file and the stored result are gone at the backend.
        assert (await http.get(job.result_url)).status_code == 404
        app_id = "/".join(job.endpoint_id.split("/")[:2])
        stored = await http.get(f"{sim.url}/{app_id}/requests/{job.fal_request_id}")
        assert stored.status_code == 404


async def test_without_an_admin_key_the_reply_says_how_long_fal_keeps_it(
        app: Any, chat: FakeChat, sim: Any) -> None:
    job_id = await _a_finished_job(app, chat)
    sim.fail_next(403, path_contains="/payloads")
    await app.bot.handle(inv("action", str(job_id), options={"action": "delete"}), chat)
    said = notes(chat)[-1]
    assert "not deleted (the fal key has no admin scope)" in said
    assert "fal keeps a request's inputs and outputs for 30 days" in said


async def test_delete_at_fal_can_be_turned_off(app: Any, chat: FakeChat, sim: Any) -> None:
    job_id = await _a_finished_job(app, chat)
    app.settings.privacy.delete_at_fal = False
    await app.bot.handle(inv("action", str(job_id), options={"action": "delete"}), chat)
    assert "turned off in [privacy] delete_at_fal" in notes(chat)[-1]
    assert sim.requests_by_kind["delete_payloads"] == 0


async def test_forget_me_deletes_at_fal_too(app: Any, chat: FakeChat, sim: Any) -> None:
    await _a_finished_job(app, chat)
    await app.bot.handle(inv("forget-me", "confirm"), chat)
    assert "fal deleted its copies of your requests and videos too" in notes(chat)[-1]
    assert sim.requests_by_kind["delete_payloads"] == 1


async def test_the_app_runs_the_retention_purge(settings: Any, sim: Any) -> None:
    """With retention_days set, a started App runs the purge at once (and then daily)."""
    import asyncio

    from bot.app import App

    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = settings.backend.fal_rest_url = sim.url
    settings.privacy.retention_days = 7
    application = App(settings)
    await application.start()
    try:
        assert application.retention is not None
        await asyncio.wait_for(application.retention.turned.wait(), 30)
        assert application.retention.turns == 1
    finally:
        await application.stop()
    assert application.retention is not None and application.retention._task is None


async def test_admin_usage_says_how_credits_round(app: Any, chat: FakeChat) -> None:
    import math
    import re

    job_id = await _a_finished_job(app, chat)
    job = await app.store.get_job(job_id)
    await app.bot.handle(inv("admin", "usage users 1", user=ROOT), chat)
    said = notes(chat, ROOT)[-1]
    line = next(x for x in said.splitlines() if "(console:alice)" in x)
    credits, usd = re.search(r"(\d+) credits, \$([0-9.]+)", line).groups()
    assert int(credits) == job.settled_credits == math.ceil(job.settled_usd * 100 - 1e-9)
    assert float(usd) == round(job.settled_usd, 2)
    assert said.splitlines()[-1] == ("Credits = USD x 100, rounded up to a whole credit per job, "
                                     "so credits can exceed USD by under one credit a job.")
