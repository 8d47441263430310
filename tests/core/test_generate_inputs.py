"""What a generation makes of its inputs, through `Bot.handle` on the real App and simulator:
the source's shape, how to give a file where there is nothing to attach, and file names
typed into a prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.model import JobState
from bot.ports import Invocation, Place, PlatformTraits, User
from tests.fakes.chat import FakeChat
from tests.media.makers import make_video

ALICE = User(platform="console", id="alice", name="Alice")
ROOM = Place(platform="console", channel="general", workspace="local")


def inv(command: str, text: str = "", **kw: Any) -> Invocation:
    return Invocation(user=ALICE, place=ROOM, command=command, text=text, **kw)


@pytest.fixture
def chat(app: Any) -> FakeChat:
    port = FakeChat("console")  # a terminal: local files, nothing to attach
    app.register_port(port)
    return port


def notes(chat: FakeChat) -> list[str]:
    return [c.text or "" for c in chat.of_kind("tell")]


async def nothing_started(app: Any, chat: FakeChat) -> None:
    assert await app.store.list_jobs(ALICE.key) == []
    assert await app.store.ledger_rows() == []
    assert chat.of_kind("post") == []


def made_size(job: Any) -> tuple[int, int]:
    assert job.state is JobState.DONE and job.result is not None
    return job.result["video"]["width"], job.result["video"]["height"]


async def test_extending_a_portrait_clip_keeps_it_portrait(app: Any, chat: FakeChat,
                                                           tmp_path: Path) -> None:
    clip = make_video(tmp_path / "tall.mp4", size=(72, 128), frames=9, audio=False)
    # The 0.9.7 extend model takes an aspect ratio (LTX-2.3's keeps the clip's by itself).
    await app.bot.handle(inv("extend", f"more waves --video {clip} --model ltx-extend"), chat)
    job = await app.runner.wait(1)
    assert job.input["aspect_ratio"] == "9:16"  # not the endpoint's default 16:9
    width, height = made_size(job)
    assert height > width
    # --ar still decides when given.
    await app.bot.handle(inv("extend", f"more waves --video {clip} --ar 16:9 --model ltx-extend"),
                         chat)
    assert (await app.runner.wait(2)).input["aspect_ratio"] == "16:9"


async def test_the_extend_button_keeps_the_shape_of_the_job_it_extends(
        app: Any, chat: FakeChat, tmp_path: Path) -> None:
    tall = tmp_path / "tall.png"
    Image.new("RGB", (96, 160), (200, 80, 20)).save(tall)
    await app.bot.handle(inv("video", f"a lighthouse --seconds 1 --image {tall}"), chat)
    parent = await app.runner.wait(1)
    width, height = made_size(parent)
    assert height > width  # LTX-2's `auto` followed the portrait image
    await app.bot.handle(inv("action", "the beam sweeps --model ltx-extend",
                             options={"action": "extend", "job_id": parent.id}), chat)
    child = await app.runner.wait(2)
    assert child.endpoint_id == "fal-ai/ltx-video-v097/extend"
    assert child.input["aspect_ratio"] == "9:16"


async def test_extend_without_a_clip_in_a_terminal_says_video_path_or_job(
        app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("extend", "more waves"), chat)
    [note] = notes(chat)
    assert "--video PATH" in note and "/extend #N" in note
    assert "attach" not in note and "reply to a message" not in note
    await nothing_started(app, chat)


async def test_extend_without_a_clip_in_a_chat_says_attach_or_reply(app: Any) -> None:
    chat = FakeChat("discord", traits=PlatformTraits(local_files=False))
    app.register_port(chat)
    await app.bot.handle(Invocation(user=User("discord", "1", "a"), place=Place("discord", "c"),
                                    command="extend", text="more waves"), chat)
    assert "attach a clip or reply to a message" in notes(chat)[0]


async def test_a_picture_named_in_the_prompt_is_refused_before_anything_is_spent(
        app: Any, chat: FakeChat, tmp_path: Path) -> None:
    cat = tmp_path / "cat.png"
    Image.new("RGB", (96, 64), (10, 120, 200)).save(cat)
    await app.bot.handle(inv("video", f"the cat yawns {cat}"), chat)
    [note] = notes(chat)
    assert f"--image {cat}" in note
    await nothing_started(app, chat)
    # The same file given as an image runs, from the image.
    await app.bot.handle(inv("video", f"the cat yawns --seconds 1 --image {cat}"), chat)
    assert (await app.runner.wait(1)).endpoint_id == "fal-ai/ltx-2-19b/image-to-video"


async def test_a_quote_of_a_prompt_naming_a_file_is_refused_too(app: Any, chat: FakeChat) -> None:
    await app.bot.handle(inv("quote", "the cat yawns cat.png"), chat)
    assert "--image cat.png" in notes(chat)[0]
    assert "credits" not in notes(chat)[0]
