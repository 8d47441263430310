"""The Slack adapter on the real core: App (store, quota, JobRunner, media) + fal simulator.

Requests are signed and sent over HTTP to the adapter; generation runs on the
simulator; everything the user would see is read back from the fake Web API.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from adapters.slack_app import SlackRunner
from adapters.slack_render import ANIMATE_MODAL, PROMPT_MODAL
from bot.config import Settings
from tests.console.helpers import make_mp4
from tests.http_server import serve
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.fake_api import FakeFile, FakeMessage, FakeSlack
from tests.slack.payloads import (
    SignedSender,
    app_mention,
    block_actions,
    form_values,
    message_shortcut,
    slash_command,
    view_submission,
)


def png(w: int = 256, h: int = 160) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Live:
    fake: FakeSlack
    runner: SlackRunner
    sender: SignedSender
    app: Any

    def videos(self, thread: str | None = None) -> list[FakeFile]:
        return [f for f in self.fake.files.values()
                if f.completed and f.name.endswith(".mp4") and not f.deleted
                and (thread is None or f.thread_ts == thread)]

    def button_messages(self) -> list[FakeMessage]:
        return [m for m in self.fake.live_messages()
                if any(e.get("action_id") == "ltx_reroll"
                       for b in m.blocks if b.get("type") == "actions" for e in b["elements"])]


@pytest.fixture
async def live(app: Any, settings: Settings, fake_slack: FakeSlack) -> AsyncIterator[Live]:
    slack = settings.slack
    slack.bot_token = fake_slack.bot_token  # type: ignore[assignment]  # validated to SecretStr
    slack.signing_secret = SIGNING_SECRET  # type: ignore[assignment]
    slack.api_url = fake_slack.api_url
    slack.mode, slack.host, slack.port = "http", "127.0.0.1", 0
    runner = SlackRunner(app, settings, min_edit_interval=0.0)  # no 3 s floor: tests end sooner
    await runner.start()
    assert runner.adapter.url is not None
    sender = SignedSender(runner.adapter.url, SIGNING_SECRET)
    yield Live(fake_slack, runner, sender, app)
    await sender.close()
    await runner.close()


async def test_mention_with_image_delivers_a_video_in_the_thread(live: Live) -> None:
    fake = live.fake
    image = fake.add_user_file("boat.png", png(), "image/png")
    ts = "1700000100.000100"
    await live.sender.event(app_mention("<@UBOT> the boat sails --seconds 2 --model ltx-2",
                                        [image], ts=ts))
    [video] = await fake.wait_for(lambda: live.videos(ts), limit=60)
    await fake.wait_for(live.button_messages, limit=10)
    # the input was fetched from Slack with the bot token
    assert (f"/files-pri/T0001-{image['id']}/download/boat.png",
            f"Bearer {fake.bot_token}") in fake.downloads
    # one status message in the thread, edited to its final state
    status = [m for m in fake.live_messages() if m.thread_ts == ts and m not in live.button_messages()]
    assert len(status) == 1 and status[0].edits >= 1
    assert len(video.data) > 1000 and video.initial_comment
    [buttons] = live.button_messages()
    assert buttons.thread_ts == ts
    values = {e["value"] for b in buttons.blocks if b.get("type") == "actions" for e in b["elements"]}
    [job_id] = values
    job = await live.app.runner.wait(int(job_id))
    assert job.state.value == "done" and job.place.thread == ts
    assert job.result_message.id == buttons.ts


async def test_slash_command_text_to_video_and_delete_by_owner_only(live: Live) -> None:
    fake = live.fake
    await live.sender.command(slash_command("a red kite over hills --seconds 2"))
    [video] = await fake.wait_for(live.videos, limit=60)
    [buttons] = await fake.wait_for(live.button_messages, limit=10)
    assert video.thread_ts is None and video.channel == "C0001"
    job_id = next(e["value"] for b in buttons.blocks if b.get("type") == "actions"
                  for e in b["elements"] if e["action_id"] == "ltx_delete")

    # someone else presses Delete: refused privately, nothing removed
    await live.sender.interactive(block_actions("ltx_delete", job_id, user="U0OTHER",
                                                message_ts=buttons.ts, thread_ts=None))
    await live.runner.adapter.idle()
    note = await fake.wait_for(lambda: [e for e in fake.ephemerals if e.user == "U0OTHER"])
    assert "not yours" in note[0].text
    assert not video.deleted and not buttons.deleted

    await live.sender.interactive(block_actions("ltx_delete", job_id, message_ts=buttons.ts,
                                                thread_ts=None))
    await live.runner.adapter.idle()
    assert video.deleted and buttons.deleted


async def test_reroll_button_runs_a_new_job(live: Live) -> None:
    fake = live.fake
    await live.sender.command(slash_command("a lantern --seconds 2"))
    [first] = await fake.wait_for(live.button_messages, limit=60)
    job_id = next(e["value"] for b in first.blocks if b.get("type") == "actions"
                  for e in b["elements"] if e["action_id"] == "ltx_reroll")
    await live.sender.interactive(block_actions("ltx_reroll", job_id, message_ts=first.ts,
                                                thread_ts=None))
    videos = await fake.wait_for(lambda: len(live.videos()) >= 2 and live.videos(), limit=60)
    assert len(videos) == 2
    jobs = await live.app.store.list_jobs("slack:U0001")
    [child] = [j for j in jobs if j.parent_id == int(job_id)]
    assert child.parent_kind == "reroll"
    assert (await live.app.runner.wait(child.id)).state.value == "done"


async def test_a_retried_mention_makes_one_job(live: Live) -> None:
    """The adapter hands every retry to the core with its event id; the store drops repeats."""
    envelope = app_mention("<@UBOT> a ferry --seconds 1", event_id="Ev0E2ERETRY")
    for retry in (None, 1, 2):
        assert (await live.sender.event(envelope, retry_num=retry)).status_code == 200
    await live.runner.adapter.idle()
    assert live.runner.adapter.started == 3
    [video] = await live.fake.wait_for(live.videos, limit=60)
    [job] = await live.app.store.list_jobs("slack:U0001")
    assert (await live.app.runner.wait(job.id)).state.value == "done"
    assert live.videos() == [video]


async def test_a_replayed_command_and_button_each_make_one_job(live: Live) -> None:
    """A signed request sent again within Slack's five minutes (cooldown 0 here, so nothing
    else would stop it) starts nothing: the trigger_id was claimed in the store."""
    command = slash_command("a lantern --seconds 1")
    for _ in range(3):
        assert (await live.sender.command(command)).status_code == 200
    [first] = await live.fake.wait_for(live.button_messages, limit=60)
    [job] = await live.app.store.list_jobs("slack:U0001")
    await live.app.runner.wait(job.id)
    press = block_actions("ltx_reroll", str(job.id), message_ts=first.ts, thread_ts=None)
    for _ in range(3):
        assert (await live.sender.interactive(press)).status_code == 200
    await live.runner.adapter.idle()
    jobs = await live.app.store.list_jobs("slack:U0001")
    assert len(jobs) == 2
    await live.app.runner.wait(jobs[0].id)
    assert len(await live.fake.wait_for(lambda: len(live.videos()) >= 2 and live.videos(),
                                        limit=60)) == 2
    assert not live.fake.ephemerals


async def test_a_button_with_a_job_number_past_64_bits_is_refused_plainly(live: Live) -> None:
    for kind in ("reroll", "extend", "cancel"):
        await live.sender.interactive(block_actions(f"ltx_{kind}", "99999999999999999999"))
    await live.runner.adapter.idle()
    notes = [e.text for e in live.fake.ephemerals]
    assert notes == ["There is no job #99999999999999999999."] * 3
    assert not live.fake.views and not await live.app.store.list_jobs("slack:U0001")


async def test_a_huge_value_is_echoed_shortened(live: Live) -> None:
    await live.sender.command(slash_command("a cat --ar " + "9" * 100_000))
    [note] = await live.fake.wait_for(lambda: live.fake.ephemerals)
    assert note.text.startswith("--ar must be one of") and len(note.text) < 300


async def test_user_errors_are_ephemeral(live: Live) -> None:
    await live.sender.command(slash_command("a cat --seconds banana"))
    notes = await live.fake.wait_for(lambda: live.fake.ephemerals)
    assert "--seconds" in notes[0].text
    assert not live.fake.named("chat.postMessage")


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[str | None]]]:
    """A non-Slack file host on loopback (as `localhost`) that records Authorization headers."""
    seen: list[str | None] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=png(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}", record)
    async with serve(app) as base:
        # "localhost", not the 127.0.0.1 the fake Slack uses: another host for the token check.
        yield base.replace("127.0.0.1", "localhost"), seen


@pytest.mark.parametrize("via_redirect", [False, True])
async def test_bot_token_never_reaches_a_non_slack_host(
        live: Live, elsewhere: tuple[str, list[str | None]], via_redirect: bool) -> None:
    base, seen = elsewhere
    fake = live.fake
    target = f"{base}/cat.png"
    url = f"{fake.url}/redirect?to={target}" if via_redirect else target
    image = fake.add_user_file("cat.png", png(), "image/png", url=url)
    await live.sender.event(app_mention("<@UBOT> a cat --seconds 2", [image]))
    await fake.wait_for(lambda: seen, limit=30)
    await live.runner.adapter.idle()
    assert seen == [None]
    if via_redirect:  # Slack's own host did get the token; the hop elsewhere did not
        assert any(auth == f"Bearer {fake.bot_token}" for path, auth in fake.downloads
                   if path.startswith("/redirect"))


# ---------------------------------------------------------------- buttons, modals, media


def buttons_of(message: FakeMessage) -> dict[str, str]:
    """action_id -> value of the buttons a message shows now."""
    return {e["action_id"]: e["value"] for b in message.blocks if b.get("type") == "actions"
            for e in b["elements"]}


def texts_of(message: FakeMessage) -> str:
    found: list[str] = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(found)


async def finished_video(live: Live, command: str) -> tuple[FakeMessage, int]:
    """Run a slash command to the end; the buttons message under the video and its job id."""
    await live.sender.command(slash_command(command))
    [buttons] = await live.fake.wait_for(live.button_messages, limit=60)
    job_id = int(buttons_of(buttons)["ltx_reroll"])
    assert (await live.app.runner.wait(job_id)).state.value == "done"
    return buttons, job_id


async def test_cancel_button_while_running(live: Live, sim: Any) -> None:
    sim.options.run_seconds = 60.0  # long enough to be cancelled while running
    fake = live.fake
    await live.sender.command(slash_command("a very slow sunrise --seconds 2"))
    [status] = await fake.wait_for(
        lambda: [m for m in fake.live_messages() if "ltx_cancel" in buttons_of(m)
                 and "Generating" in texts_of(m)], limit=30)
    job_id = int(buttons_of(status)["ltx_cancel"])
    await live.sender.interactive(block_actions("ltx_cancel", str(job_id), message_ts=status.ts,
                                                thread_ts=None))
    job = await live.app.runner.wait(job_id)
    assert job.state.value == "cancelled" and job.settled_credits == 0
    await fake.wait_for(lambda: "Cancelled" in texts_of(status), limit=10)
    assert "ltx_cancel" not in buttons_of(status)  # the final card has no Cancel any more
    assert not live.videos()


@pytest.mark.parametrize("kind", ["extend", "continue"])
async def test_extend_and_continue_buttons_with_their_modal(live: Live, kind: str) -> None:
    fake = live.fake
    buttons, job_id = await finished_video(live, "a lighthouse at night --seconds 2")
    await live.sender.interactive(block_actions(f"ltx_{kind}", str(job_id), message_ts=buttons.ts,
                                                thread_ts=None))
    [view] = await fake.wait_for(lambda: [v for v in fake.views if v["callback_id"] == PROMPT_MODAL])
    prompt = "the beam sweeps the sea" if kind == "extend" else "dawn breaks"
    values = {"prompt": {"prompt": {"type": "plain_text_input", "value": prompt}}}
    resp = await live.sender.interactive(view_submission(view, values))
    assert resp.status_code == 200
    videos = await fake.wait_for(lambda: len(live.videos()) >= 2 and live.videos(), limit=60)
    assert len(videos) == 2
    [child] = [j for j in await live.app.store.list_jobs("slack:U0001") if j.parent_id == job_id]
    child = await live.app.runner.wait(child.id)
    assert (child.parent_kind, child.prompt, child.state.value) == (kind, prompt, "done")
    if kind == "extend":
        assert child.endpoint_id == "fal-ai/ltx-2.3/extend-video"
    else:  # the last frame is the image of an image-to-video job
        assert "image-to-video" in child.endpoint_id


async def test_message_shortcut_then_form_makes_a_video_in_that_thread(live: Live) -> None:
    fake = live.fake
    image = fake.add_user_file("cat.png", png(), "image/png")
    message = {"type": "message", "user": "U0002", "ts": "1700000200.000100", "text": "look",
               "files": [image]}
    await live.sender.interactive(message_shortcut(message))
    [view] = await fake.wait_for(lambda: [v for v in fake.views if v["callback_id"] == ANIMATE_MODAL])
    resp = await live.sender.interactive(view_submission(view, form_values("the cat yawns",
                                                                           seconds="2")))
    assert resp.status_code == 200
    [video] = await fake.wait_for(lambda: live.videos("1700000200.000100"), limit=60)
    [buttons] = await fake.wait_for(live.button_messages, limit=10)
    job = await live.app.runner.wait(int(buttons_of(buttons)["ltx_reroll"]))
    assert job.state.value == "done" and job.prompt == "the cat yawns"
    assert "image-to-video" in job.endpoint_id and video.thread_ts == "1700000200.000100"


async def test_mention_with_two_images_makes_keyframes(live: Live) -> None:
    fake = live.fake
    first = fake.add_user_file("a.png", png(), "image/png")
    second = fake.add_user_file("b.png", png(200, 120), "image/png")
    ts = "1700000300.000100"
    await live.sender.event(app_mention("<@UBOT> red turns blue --seconds 1", [first, second], ts=ts))
    await fake.wait_for(lambda: live.videos(ts), limit=60)
    [buttons] = await fake.wait_for(live.button_messages, limit=10)
    job = await live.app.runner.wait(int(buttons_of(buttons)["ltx_reroll"]))
    assert job.endpoint_id.endswith("/multiconditioning") and len(job.input["images"]) == 2


async def test_mention_with_a_clip_and_extend_extends_it(live: Live, tmp_path: Path) -> None:
    fake = live.fake
    clip = fake.add_user_file("wave.mp4", make_mp4(tmp_path / "wave.mp4", frames=16).read_bytes(),
                              "video/mp4")
    ts = "1700000400.000100"
    await live.sender.event(app_mention("<@UBOT> it keeps rolling --extend", [clip], ts=ts))
    await fake.wait_for(lambda: live.videos(ts), limit=60)
    [buttons] = await fake.wait_for(live.button_messages, limit=10)
    job = await live.app.runner.wait(int(buttons_of(buttons)["ltx_reroll"]))
    assert job.endpoint_id == "fal-ai/ltx-2.3/extend-video" and job.prompt == "it keeps rolling"
