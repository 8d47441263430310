"""The command core through `Bot.handle`, on the real App, simulator and SQLite file."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from PIL import Image

from bot.commands import actions
from bot.model import JobState
from bot.ports import (
    ACTION_KINDS,
    Attachment,
    Invocation,
    MessageRef,
    Place,
    PlatformTraits,
    StatusCard,
    User,
)
from tests.fakes.chat import FakeChat
from tests.http_server import serve

ALICE = User(platform="console", id="alice", name="Alice")
BOB = User(platform="console", id="bob", name="Bob")
ROOT = User(platform="console", id="root", name="Root", is_admin=True)
ROOM = Place(platform="console", channel="general", workspace="local")


def inv(command: str, text: str = "", user: User = ALICE, **kw: Any) -> Invocation:
    return Invocation(user=user, place=ROOM, command=command, text=text, **kw)


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")
    app.register_port(port)
    return port


def notes(chat: FakeChat, user: User = ALICE) -> list[str]:
    return [c.text or "" for c in chat.of_kind("tell") if c.user == user]


async def ledger(app: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await app.store.ledger_rows()
    return rows


async def test_text_video_end_to_end(app: Any, chat: FakeChat) -> None:
    # A prompt alone goes to LTX-2.3 22B (issue 12), priced per megapixel like the sim bills.
    await app.bot.handle(inv("video", "a paper boat on a stormy sea --seconds 2 --seed 5"), chat)
    job = await app.store.get_job(1)
    assert job is not None and job.endpoint_id == "fal-ai/ltx-2.3-22b/text-to-video"
    final = await app.runner.wait(1)
    assert final.state is JobState.DONE and final.result is not None
    assert (final.input["num_frames"], final.input["fps"], final.result["seed"]) == (49, 24, 5)
    assert final.estimate_usd == final.settled_usd and final.estimate_credits == final.settled_credits


async def test_text_video_end_to_end_on_the_13b_model(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a paper boat on a stormy sea --seconds 2 --seed 5 "
                             "--model ltx-13b"), chat)
    job = await app.store.get_job(1)
    assert job is not None and job.endpoint_id.endswith("multiconditioning")
    call = await chat.wait_video(1)
    final = await app.runner.wait(1)
    assert final.state is JobState.DONE and final.settled_credits == 4
    assert call.data is not None
    path = Path(app.settings.media.tmp_dir) / "check.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(call.data)
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == job.input["number_of_frames"] == 57  # 2 s at 30 fps, snapped to 8k+1


async def test_image_attachment_from_a_local_server(app: Any, chat: FakeChat, tmp_path: Path) -> None:
    png = tmp_path / "cat.png"
    Image.new("RGB", (300, 200), (10, 120, 200)).save(png)
    server = web.Application()

    async def file(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(png)

    server.router.add_get("/cat.png", file)
    async with serve(server) as base:
        attachment = Attachment(url=f"{base}/cat.png", filename="cat.png",
                                content_type="image/png", kind="image")
        await app.bot.handle(inv("video", "the cat yawns --seconds 1 --no-audio", attachments=[attachment]), chat)
        await chat.wait_video(1)
    job = await app.runner.wait(1)
    assert job.state is JobState.DONE
    assert job.endpoint_id == "fal-ai/ltx-2-19b/image-to-video"
    assert job.input["image_url"].startswith(app.settings.backend.fal_rest_url)  # uploaded to fal storage
    assert job.input["generate_audio"] is False
    # video_size auto follows the 3:2 image: the estimate priced what was made.
    assert job.result is not None
    assert (job.result["video"]["width"], job.result["video"]["height"]) == (1184, 768)
    assert job.estimate_usd == job.settled_usd and job.estimate_credits == job.settled_credits


@pytest.mark.parametrize(
    ("text", "attachments", "fragment"),
    [
        ("a fox --sed 3", [], "Did you mean --seed"),
        ("--seed 3", [], "describe the video"),
        ("a fox --camera dolly_in --model ltx-video", [], "does not support --camera"),
    ],
)
async def test_bad_input_changes_nothing(app: Any, chat: FakeChat, text: str, attachments: list[Attachment],
                                         fragment: str) -> None:
    await app.bot.handle(inv("video", text, attachments=attachments), chat)
    assert any(fragment in n for n in notes(chat))
    assert not any("`" in n for n in notes(chat))  # no Markdown: a terminal shows it raw
    assert await app.store.list_jobs(ALICE.key) == []
    assert await ledger(app) == []
    assert chat.of_kind("post") == []


@pytest.mark.parametrize(("command", "text"), [("restyle", ""), ("retake", "--from 1 --to 2"),
                                             ("extend", ""), ("restyle", "as a watercolour")])
async def test_a_clip_command_without_a_clip_asks_for_the_clip(
        app: Any, chat: FakeChat, command: str, text: str) -> None:
    # What is missing first is the clip: "describe the video" would send the user the
    # wrong way (a restyle with a prompt and no clip is still refused for the clip).
    await app.bot.handle(inv(command, text), chat)
    said = " ".join(notes(chat))
    assert f"{command.capitalize()} needs exactly one video" in said, said
    assert "describe the video" not in said and "`" not in said
    assert await app.store.list_jobs(ALICE.key) == [] and await ledger(app) == []


async def test_bad_attachment_is_refused_before_any_quota(app: Any, chat: FakeChat, tmp_path: Path) -> None:
    fake_png = tmp_path / "cat.png"
    fake_png.write_bytes(b"PK\x03\x04" + b"\x00" * 200)  # a zip wearing a .png name
    await app.bot.handle(inv("video", f"the cat yawns --image {fake_png}"), chat)
    text = " ".join(notes(chat))
    assert "ZIP" in text or "zip" in text
    assert await ledger(app) == [] and await app.store.list_jobs(ALICE.key) == []


async def test_quote_quota_jobs_help(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("quote", "a fox --seconds 4 --ar 9:16"), chat)
    # LTX-2.3 22B: 97 frames at 576x1024 = 58 MP (rounded up) x $0.001605
    assert "10 credits ($0.0931)" in notes(chat)[-1]
    await app.bot.handle(inv("quota"), chat)
    assert re.search(r"\d+ of \d+", notes(chat)[-1])
    await app.bot.handle(inv("jobs"), chat)
    assert "no jobs" in notes(chat)[-1]
    await app.bot.handle(inv("video", "a fox --seed 1"), chat)
    await app.runner.wait(1)
    await app.bot.handle(inv("jobs"), chat)
    assert "#1 done" in notes(chat)[-1]
    await app.bot.handle(inv("help"), chat)
    assert "--seconds" in notes(chat)[-1] and "ltx-2" in notes(chat)[-1]
    assert await app.store.list_jobs(ALICE.key) != []


async def test_quota_refusal_says_what_is_left(app: Any, chat: FakeChat) -> None:
    app.settings.quota.daily_credits = 3
    await app.bot.handle(inv("video", "a fox --seconds 2"), chat)  # 4 credits > 3
    assert "3" in notes(chat)[-1] and "daily" in notes(chat)[-1]
    assert await app.store.list_jobs(ALICE.key) == []


async def test_cancel_by_owner_only(app: Any, chat: FakeChat, sim: Any) -> None:
    sim.options.run_seconds = 30
    await app.bot.handle(inv("video", "a long fox"), chat)
    await app.bot.handle(inv("cancel", "1", user=BOB), chat)
    assert "not yours" in notes(chat, BOB)[-1]
    assert (await app.store.get_job(1)).state is not JobState.CANCELLED
    await app.bot.handle(inv("cancel", "#1"), chat)
    job = await app.runner.wait(1)
    assert job.state is JobState.CANCELLED
    assert "refunded" in notes(chat)[-1]


async def test_admin_commands(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("admin", "grant console:bob 50"), chat)
    assert "admin" in notes(chat)[-1].lower()
    await app.bot.handle(inv("admin", "grant bob 50", user=ROOT), chat)
    assert "Granted 50 credits to console:bob" in notes(chat, ROOT)[-1]
    await app.bot.handle(inv("admin", "block bob", user=ROOT), chat)
    await app.bot.handle(inv("video", "a fox", user=BOB), chat)
    assert "blocked" in notes(chat, BOB)[-1].lower()
    await app.bot.handle(inv("admin", "unblock <@bob>", user=ROOT), chat)
    await app.bot.handle(inv("video", "a fox", user=BOB), chat)
    await app.runner.wait(1)
    await app.bot.handle(inv("admin", "usage users 7", user=ROOT), chat)
    assert "console:bob" in notes(chat, ROOT)[-1]
    await app.bot.handle(inv("admin", "tier bob gold", user=ROOT), chat)
    assert "no tier" in notes(chat, ROOT)[-1]


async def test_buttons_reroll_extend_continue_delete(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a fox --seconds 1 --seed 3"), chat)
    parent = await app.runner.wait(1)
    assert parent.state is JobState.DONE

    await app.bot.handle(inv("action", options={"action": "reroll", "job_id": 1}, user=BOB), chat)
    reroll = await app.runner.wait(2)
    assert reroll.parent_id == 1 and reroll.parent_kind == "reroll" and reroll.owner_id == "bob"
    assert reroll.input["seed"] != parent.input["seed"]
    assert {k: v for k, v in reroll.input.items() if k != "seed"} == {
        k: v for k, v in parent.input.items() if k != "seed"}

    await app.bot.handle(inv("action", "the fox keeps running", options={"action": "extend", "job_id": 1}), chat)
    extend = await app.runner.wait(3)
    assert extend.state is JobState.DONE and extend.endpoint_id == "fal-ai/ltx-2.3/extend-video"
    assert extend.input["video_url"] == parent.result_url and extend.input["mode"] == "end"

    await app.bot.handle(inv("action", "", options={"action": "continue", "job_id": 1}), chat)
    cont = await app.runner.wait(4)
    assert cont.state is JobState.DONE and cont.endpoint_id == "fal-ai/ltx-2-19b/image-to-video"
    assert cont.prompt == parent.prompt and cont.parent_kind == "continue"

    await app.bot.handle(inv("action", options={"action": "delete", "job_id": 1}, user=BOB), chat)
    assert chat.of_kind("delete") == []
    await app.bot.handle(inv("action", options={"action": "delete", "job_id": 1}), chat)
    assert len(chat.of_kind("delete")) == 1


# What a Discord-like and a Slack-like port say about themselves: the core reads only these.
SERVER_TRAITS = PlatformTraits(command_prefix="/", workspace_word="server",
                               admin_setting="[discord] admin_users or admin_roles",
                               mention_pattern=r"<@!?(?P<id>\d+)>", markup="markdown")
TEAM_TRAITS = PlatformTraits(command_prefix="/ltx ", workspace_word="workspace",
                             admin_setting="[slack] admin_users",
                             mention_pattern=r"<@(?P<id>[A-Z0-9]+)(\|[^>]*)?>", markup="mrkdwn")


async def test_help_is_written_in_each_ports_markup(app: Any) -> None:
    plain, server, team = FakeChat("console"), FakeChat("console", traits=SERVER_TRAITS), FakeChat(
        "console", traits=TEAM_TRAITS)
    for chat in (plain, server, team):
        await app.bot.handle(inv("help"), chat)
    assert "**Models**" in notes(server)[-1] and "`/video <what happens> [--flags]`" in notes(server)[-1]
    assert "*Models*" in notes(team)[-1] and "**" not in notes(team)[-1]
    assert "`/ltx quota`" in notes(team)[-1] and "/ltx video" not in notes(team)[-1]
    said = notes(plain)[-1]
    assert "Models\n" in said and "`" not in said and "*" not in said and "/video <what happens>" in said


async def test_help_adds_the_surfaces_own_commands_and_admin_commands_for_admins(app: Any) -> None:
    own = (("/frob <id>", "frobs a job"), ("/leave", "leaves"))
    server = FakeChat("console", traits=PlatformTraits(markup="markdown", own_commands=own))
    team = FakeChat("console", traits=TEAM_TRAITS)
    for chat in (server, team):
        await app.bot.handle(inv("help"), chat)
        await app.bot.handle(inv("help", user=ROOT), chat)
    said, said_to_admin = notes(server)[-1], notes(server, ROOT)[-1]
    assert "**Here you can also type**\n`/frob <id>`: frobs a job\n`/leave`: leaves" in said
    assert "admin grant" not in said
    assert "**Admin commands**" in said_to_admin and "`/admin grant <user> <credits>`" in said_to_admin
    # A surface that adds nothing says nothing about it; the admin lines use its own prefix.
    assert "Here you can also type" not in notes(team)[-1]
    assert "`/ltx admin usage [users|workspaces] [days]`" in notes(team, ROOT)[-1]


async def test_jobs_say_where_the_video_is_and_when_it_was_deleted(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a fox --seed 1"), chat)
    job = await app.runner.wait(1)
    await app.bot.handle(inv("jobs"), chat)
    assert notes(chat)[-1].endswith(f"a fox {job.result_url}")
    # A surface that saved the video to a file (a terminal) names the file instead.
    saved = MessageRef("console", "general", job.result_message.id, extra={"path": "/videos/fox.mp4"})
    await app.store.update_job(1, result_message=saved)
    await app.bot.handle(inv("jobs"), chat)
    assert notes(chat)[-1].endswith("a fox /videos/fox.mp4") and "http" not in notes(chat)[-1]
    await app.bot.handle(inv("action", options={"action": "delete", "job_id": 1}), chat)
    assert [c.ref.id for c in chat.of_kind("delete") if c.ref] == [job.result_message.id]
    await app.bot.handle(inv("jobs"), chat)
    assert notes(chat)[-1].endswith("a fox · video deleted")
    await app.bot.handle(inv("action", options={"action": "delete", "job_id": 1}), chat)
    assert "it was deleted already" in notes(chat)[-1]
    assert len(chat.of_kind("delete")) == 1


async def test_admin_replies_follow_the_ports_traits(app: Any) -> None:
    team = FakeChat("console", traits=TEAM_TRAITS)
    await app.bot.handle(inv("admin", "block bob"), team)
    assert "[slack] admin_users" in notes(team)[-1]
    await app.bot.handle(inv("admin", "block <@U0B0B|bob>", user=ROOT), team)
    assert notes(team, ROOT)[-1] == "console:U0B0B is blocked."
    server = FakeChat("console", traits=SERVER_TRAITS)
    await app.bot.handle(inv("admin", "unblock <@!1234>", user=ROOT), server)
    assert notes(server, ROOT)[-1] == "console:1234 is unblocked."


async def test_quota_calls_the_workspace_what_the_port_calls_it(app: Any) -> None:
    app.settings.quota.workspace_monthly_credits = 100
    server = FakeChat("console", traits=SERVER_TRAITS)
    await app.bot.handle(inv("quota"), server)
    assert "This server: 0 of 100 credits used this month." in notes(server)[-1]


def test_every_action_kind_has_a_button() -> None:
    from bot.community import moderation

    # The job's own buttons, and those that answer with a note (Report, the moderation log's).
    assert set(actions.BUTTONS) | set(moderation.BUTTONS) == set(ACTION_KINDS)
    assert not set(actions.BUTTONS) & set(moderation.BUTTONS)


class BrokenChat(FakeChat):
    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        raise RuntimeError("secret internals must not reach the user")


async def test_unexpected_error_shows_only_an_id(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    chat = BrokenChat("console")
    app.register_port(chat)
    caplog.set_level(logging.ERROR)
    await app.bot.handle(inv("video", "a fox"), chat)
    said = notes(chat)[-1]
    match = re.search(r"`([0-9a-f]{8})`", said)
    assert match and "secret internals" not in said
    assert match.group(1) in caplog.text


async def test_a_clean_stop_leaves_no_temporary_files(settings: Any, sim: Any) -> None:
    from bot import media
    from bot.app import App

    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = settings.backend.fal_rest_url = sim.url
    application = App(settings)
    chat = FakeChat("console")
    application.register_port(chat)
    await application.start()
    await application.bot.handle(inv("video", "a fox --seconds 1"), chat)
    await application.runner.wait(1)
    assert media.temp_root(settings.media).exists()
    await application.stop()
    assert list(media.temp_root(settings.media).iterdir()) == []


async def test_a_repeated_platform_event_never_starts_a_second_job(settings: Any, sim: Any) -> None:
    """Slack re-sends events it thinks were missed; the id is remembered in SQLite, so even
    a restart between the two deliveries does not start the job twice."""
    from bot.app import App

    settings.backend.kind = "fal"
    settings.backend.fal_queue_url = settings.backend.fal_rest_url = sim.url
    for _ in range(2):  # the second round is a restarted bot
        application = App(settings)
        chat = FakeChat("console")
        application.register_port(chat)
        await application.start()
        try:
            await application.bot.handle(inv("video", "a fox", event_id="Ev0123"), chat)
            await application.bot.handle(inv("video", "a fox", event_id="Ev0123"), chat)
            jobs = await application.store.list_jobs(ALICE.key)
            assert len(jobs) == 1
            await application.runner.wait(jobs[0].id)
        finally:
            await application.stop()


async def test_continue_on_a_result_that_is_gone_says_so(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a fox --seconds 1"), chat)
    job = await app.runner.wait(1)
    # As after a restart of the simulator, or past fal's retention: the URL answers 404.
    await app.store.update_job(job.id, result_url=job.result_url.replace("/files/", "/files/gone-"))
    await app.bot.handle(inv("action", "", options={"action": "continue", "job_id": 1}), chat)
    said = notes(chat)[-1]
    assert "can't be fetched any more" in said and "Re-roll" in said
    assert len(await app.store.list_jobs(ALICE.key)) == 1


async def test_reroll_on_a_model_without_a_seed_resubmits_the_same_input(
        app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a fox --model ltx-2.3 --seconds 6"), chat)
    parent = await app.runner.wait(1)
    assert parent.state is JobState.DONE and "seed" not in parent.input
    await app.bot.handle(inv("action", options={"action": "reroll", "job_id": 1}), chat)
    reroll = await app.runner.wait(2)
    assert reroll.state is JobState.DONE and reroll.parent_kind == "reroll"
    assert reroll.input == parent.input


async def test_retake_and_restyle_an_earlier_result(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("video", "a fox --seconds 4 --seed 2"), chat)
    parent = await app.runner.wait(1)
    assert parent.state is JobState.DONE
    # The range is checked against the video's real length (97 frames at 24 fps).
    await app.bot.handle(inv("action", "rain --from 2 --to 6",
                             options={"action": "retake", "job_id": 1}), chat)
    assert "The clip is 4.0 s long" in notes(chat)[-1]
    assert len(await app.store.list_jobs(ALICE.key)) == 1
    await app.bot.handle(inv("action", "rain", options={"action": "retake", "job_id": 1,
                                                       "from": 1, "to": 3.5, "replace": "audio"}),
                         chat)
    retake = await app.runner.wait(2)
    assert retake.state is JobState.DONE and retake.parent_id == 1
    assert retake.endpoint_id == "fal-ai/ltx-2.3/retake-video"
    assert (retake.input["start_time"], retake.input["duration"], retake.input["retake_mode"]) == (
        1.0, 2.5, "replace_audio")
    assert retake.input["video_url"] == parent.result_url
    await app.bot.handle(inv("action", "as a watercolour",
                             options={"action": "restyle", "job_id": 1}), chat)
    restyle = await app.runner.wait(3)
    assert restyle.state is JobState.DONE
    assert restyle.endpoint_id == "fal-ai/ltx-2-19b/video-to-video"


async def test_retake_and_restyle_typed_with_a_job_number_act_on_that_result(
    app: Any, chat: FakeChat
) -> None:
    """`retake #1 ...` typed as text (a Slack `/ltx`, a mention) reaches job 1's video as
    its Retake button does; `restyle #1` likewise; an unknown number is refused."""
    await app.bot.handle(inv("video", "a fox --seconds 4 --seed 2"), chat)
    parent = await app.runner.wait(1)
    await app.bot.handle(inv("retake", "#1 rain --from 1 --to 3"), chat)
    retake = await app.runner.wait(2)
    assert retake.state is JobState.DONE and retake.parent_id == 1
    assert retake.endpoint_id == "fal-ai/ltx-2.3/retake-video"
    assert retake.input["video_url"] == parent.result_url
    await app.bot.handle(inv("restyle", "#1 as a watercolour"), chat)
    restyle = await app.runner.wait(3)
    assert restyle.parent_id == 1 and restyle.endpoint_id == "fal-ai/ltx-2-19b/video-to-video"
    await app.bot.handle(inv("retake", "#99 rain --from 1 --to 3"), chat)
    assert "99" in notes(chat)[-1]
    assert len(await app.store.list_jobs(ALICE.key)) == 3
