"""forget-me and my-data on Slack: `/ltx forget-me`, the Forget me button, `/ltx my-data`
as a file in the user's direct messages; signed requests to the real adapter and core."""

from __future__ import annotations

import json

from bot.ports import User
from tests.slack import test_e2e, test_handover
from tests.slack.fake_api import FakeSlack
from tests.slack.payloads import block_actions, slash_command
from tests.slack.test_e2e import Live, buttons_of, finished_video, texts_of
from tests.slack.test_handover import Process

live = test_e2e.live  # the end-to-end fixture: the adapter over HTTP, the real app
processes = test_handover.processes  # two processes (apps and adapters) on one store
PROMPT = "a zanzibar quokka juggling teacups"


async def test_forget_me_card_is_ephemeral_and_its_button_forgets_only_who_asked(
        live: Live) -> None:
    fake = live.fake
    buttons, job_id = await finished_video(live, f"{PROMPT} --seconds 2")
    [video] = live.videos()
    await live.sender.command(slash_command("forget-me"))
    [card] = await fake.wait_for(lambda: [e for e in fake.ephemerals
                                          if "ltx_forget" in buttons_of(e)], limit=10)
    # Only the asker sees the card and its button: nothing in the channel has it.
    assert card.user == "U0001" and card.channel == "C0001"
    assert "forget-me confirm" in texts_of(card)
    assert not [m for m in fake.live_messages() if "ltx_forget" in buttons_of(m)]
    # A press from an ephemeral message: no `message` in the payload, a response_url.
    await live.sender.interactive(block_actions("ltx_forget", "0", user="U0OTHER",
                                                message_ts=card.ts, thread_ts=None,
                                                ephemeral=True))
    await live.runner.adapter.idle()
    note = await fake.wait_for(lambda: [e for e in fake.ephemerals if e.user == "U0OTHER"])
    assert "type forget-me to ask" in note[0].text
    assert (await live.app.store.get_job(job_id)).prompt.startswith(PROMPT)
    await live.sender.interactive(block_actions(
        "ltx_forget", "0", message_ts=card.ts, thread_ts=None, ephemeral=True,
        response_url=f"{fake.url}/response/forget"))
    await live.runner.adapter.idle()
    await fake.wait_for(lambda: [e for e in fake.ephemerals if "Forgotten" in e.text], limit=30)
    # The pressed card goes: its button has done its one job.
    await fake.wait_for(lambda: [r for r in fake.responses
                                 if r["rid"] == "forget" and r.get("delete_original")], limit=10)
    assert video.deleted and buttons.deleted  # the bot's posts of the video
    job = await live.app.store.get_job(job_id)
    assert job.prompt == "" and job.owner_key.startswith("forgotten:")
    assert await live.app.store.get_user("slack:U0001") is None
    assert await live.app.store.audit() == []


async def test_forget_me_confirm_typed(live: Live) -> None:
    _, job_id = await finished_video(live, f"{PROMPT} --seconds 2")
    await live.sender.command(slash_command("forget-me confirm"))
    await live.fake.wait_for(lambda: [e for e in live.fake.ephemerals if "Forgotten" in e.text],
                             limit=30)
    assert (await live.app.store.get_job(job_id)).prompt == ""


async def test_my_data_is_a_file_in_direct_messages(live: Live) -> None:
    _, job_id = await finished_video(live, f"{PROMPT} --seconds 2")
    await live.sender.command(slash_command("my-data"))
    [file] = await live.fake.wait_for(
        lambda: [f for f in live.fake.files.values()
                 if f.completed and f.name == "my-data-U0001.json"], limit=30)
    assert file.channel == "DU0001"  # the user's DM with the bot, not the channel
    data = json.loads(file.data)
    assert [j["id"] for j in data["jobs"]] == [job_id]
    assert data["jobs"][0]["prompt"].startswith(PROMPT)
    note = await live.fake.wait_for(
        lambda: [e for e in live.fake.ephemerals if "direct message" in e.text])
    assert note[0].channel == "C0001"


async def test_my_data_without_a_dm_is_refused_plainly(live: Live) -> None:
    live.fake.inject("conversations.open", status=400)
    await live.sender.command(slash_command("my-data"))
    note = await live.fake.wait_for(lambda: [e for e in live.fake.ephemerals if "im:write" in e.text])
    assert "could not open a direct message" in note[0].text
    assert not [f for f in live.fake.files.values() if f.name.startswith("my-data")]


async def test_forget_me_asked_in_one_process_is_confirmed_in_another(
        processes: list[Process], fake_slack: FakeSlack) -> None:
    """HTTP mode behind one URL: the ask reached one process, the press another."""
    first, second = processes
    store = first.app.store
    assert await store.ensure_user(User("slack", "U0001", "alice"))
    await first.sender.command(slash_command("forget-me"))
    [card] = await fake_slack.wait_for(lambda: [e for e in fake_slack.ephemerals
                                                if "ltx_forget" in buttons_of(e)], limit=10)
    await second.sender.interactive(block_actions(
        "ltx_forget", "0", message_ts=card.ts, thread_ts=None, ephemeral=True,
        response_url=f"{fake_slack.url}/response/forget"))
    await second.runner.adapter.idle()
    done = await fake_slack.wait_for(
        lambda: [e for e in fake_slack.ephemerals if "Forgotten" in e.text], limit=30)
    assert done[0].user == "U0001"
    assert await store.get_user("slack:U0001") is None
