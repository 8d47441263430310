"""End to end on the fake Discord: /retake, /restyle, /video with an audio file, /extend
with seconds at the start, the Retake button's modal, the clip menu's retake, and the
model option's autocomplete. Real discord.py, the real core and runner, the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.discord_render import flatten_message
from tests.discord.conftest import (
    dispatch,
    dispatch_guild,
    dispatch_message,
    mp4_bytes,
    open_modal,
)
from tests.discord.payloads import USER_ID
from tests.discord.test_e2e import Live, _notes, live
from tests.sim.media import sine, wav_bytes

__all__ = ["live"]  # the fixture, shared with test_e2e

RETAKE = "fal-ai/ltx-2.3/retake-video"


def _clip(live: Live, tmp_path: Path, name: str = "clip.mp4") -> dict[str, Any]:
    # 32 frames at 8 fps: a 4-second clip, long enough for a 2-second retake.
    return live.p.attachment(name, mp4_bytes(tmp_path, frames=32), "video/mp4")


async def test_retake_and_restyle_commands(live: Live, tmp_path: Path) -> None:
    clip = _clip(live, tmp_path)
    dispatch(live.client, live.p.slash("retake", {"prompt": "the dog turns into a cat",
                                                  "from": 1.0, "to": 3.0, "replace": "video"},
                                       attachments={"video": clip}))
    message, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id == RETAKE and job.state.value == "done"
    assert (job.input["start_time"], job.input["duration"]) == (1.0, 2.0)
    assert job.input["retake_mode"] == "replace_video"
    assert "dog turns into a cat" in flatten_message(message)

    after = len(live.fake.calls)
    dispatch(live.client, live.p.slash("restyle", {"prompt": "a watercolour painting"},
                                       attachments={"video": _clip(live, tmp_path, "b.mp4")}))
    _, job_id = await live.delivered(after)
    job = await live.wait_job(job_id)
    assert job.endpoint_id == "fal-ai/ltx-2-19b/video-to-video" and job.state.value == "done"

    # A finished job's video, by its number: the range is checked against that video.
    after = len(live.fake.calls)
    dispatch(live.client, live.p.slash("retake", {"prompt": "a bark", "job": job_id,
                                                  "from": 0.0, "to": 2.0, "replace": "audio"}))
    _, child_id = await live.delivered(after)
    child = await live.wait_job(child_id)
    assert child.endpoint_id == RETAKE and child.parent_id == job_id
    assert child.input["retake_mode"] == "replace_audio"


async def test_video_with_an_audio_file_and_extend_at_the_start(live: Live,
                                                                tmp_path: Path) -> None:
    sound = live.p.attachment("voice.wav", wav_bytes(sine(3.0, 440.0)), "audio/wav")
    dispatch(live.client, live.p.slash("video", {"prompt": "a singer on a stage"},
                                       attachments={"audio_file": sound}))
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id == "fal-ai/ltx-2.3/audio-to-video" and job.state.value == "done"
    assert job.input["audio_url"].startswith("http")

    after = len(live.fake.calls)
    dispatch(live.client, live.p.slash(
        "extend", {"prompt": "the road leads here", "seconds": 2.0, "at_start": True,
                   "model": "ltx-2.3/extend-video"}, attachments={"video": _clip(live, tmp_path)}))
    _, job_id = await live.delivered(after)
    job = await live.wait_job(job_id)
    assert job.endpoint_id == "fal-ai/ltx-2.3/extend-video"
    assert (job.input["mode"], job.input["duration"]) == ("start", 2.0)


async def test_a_short_sound_is_refused_before_any_cost(live: Live) -> None:
    sound = live.p.attachment("blip.wav", wav_bytes(sine(1.0, 440.0)), "audio/wav")
    dispatch(live.client, live.p.slash("video", {"prompt": "a singer"},
                                       attachments={"audio_file": sound}))
    await live.fake.wait_until(lambda: bool(_notes(live.fake)), what="an ephemeral note")
    assert "2 to 20 s of audio; this file is 1.0 s long" in _notes(live.fake)[0]
    assert await live.app.store.list_jobs("discord:600000000000000001", limit=5) == []


async def test_the_retake_button_opens_a_form(live: Live) -> None:
    dispatch(live.client, live.p.slash("video", {"prompt": "a lighthouse at night",
                                                 "duration": 3.0}))
    result, job_id = await live.delivered()
    await live.wait_job(job_id)
    after = len(live.fake.calls)
    modal = await open_modal(live.client, live.fake,
                             live.p.button(f"ltx:job:{job_id}:retake", result))
    labels = [c["label"] for row in modal["data"]["components"] for c in row["components"]]
    assert labels[:3] == ["From (seconds of the clip)", "To (seconds of the clip)",
                          "Redo: video, audio or both"]
    dispatch(live.client, live.p.modal_submit(modal, ["0.5", "2.5", "both", "a ship passes"]))
    _, child_id = await live.delivered(after)
    child = await live.wait_job(child_id)
    assert (child.endpoint_id, child.parent_id, child.prompt) == (RETAKE, job_id, "a ship passes")
    assert (child.input["start_time"], child.input["duration"]) == (0.5, 2.0)

    # A wrong mode is answered in words; nothing starts.
    modal = await open_modal(live.client, live.fake,
                             live.p.button(f"ltx:job:{job_id}:retake", result))
    dispatch(live.client, live.p.modal_submit(modal, ["0", "2", "colour", ""]))
    await live.fake.wait_until(lambda: bool(_notes(live.fake)), what="the refusal")
    assert "Redo must be video, audio or both, not 'colour'" in _notes(live.fake)[0]


async def test_the_clip_menu_retakes_a_section(live: Live, tmp_path: Path) -> None:
    target = live.p.message(attachments=[_clip(live, tmp_path)])
    modal = await open_modal(live.client, live.fake, live.p.context_menu("Extend video", target))
    dispatch(live.client, live.p.modal_submit(modal, ["a cat appears", "", "1-3", "video"]))
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert job.endpoint_id == RETAKE and job.input["retake_mode"] == "replace_video"
    assert (job.input["start_time"], job.input["duration"]) == (1.0, 2.0)


async def test_model_autocomplete_offers_every_matching_model(live: Live) -> None:
    payload = live.p.interaction(4, {
        "id": "1", "name": "video", "type": 1,
        "options": [{"name": "prompt", "type": 3, "value": "x"},
                    {"name": "model", "type": 3, "value": "2.3", "focused": True}]})
    dispatch(live.client, payload)
    call = await live.fake.wait_for(
        lambda c: c.path == f"/interactions/{payload['id']}/{payload['token']}/callback",
        what="the autocomplete answer")
    assert call.body["type"] == 8
    values = [c["value"] for c in call.body["data"]["choices"]]
    assert "ltx-2.3/retake-video" in values and "ltx-2.3/audio-to-video" in values
    assert all("2.3" in c["name"] or "2.3" in c["value"] for c in call.body["data"]["choices"])
    assert 0 < len(values) <= 25


async def test_a_mention_replying_to_a_clip_retakes_it(live: Live, tmp_path: Path) -> None:
    bot = live.fake.bot_id
    original = live.p.message(author_id=USER_ID + 1, author_name="bob",
                              attachments=[_clip(live, tmp_path)])
    dispatch_guild(live.client, live.p.guild_create())
    mention = live.p.message(content=f"<@{bot}> retake a cat appears --from 1 --to 3",
                             mentions=[bot], referenced=original)
    dispatch_message(live.client, mention)
    _, job_id = await live.delivered()
    job = await live.wait_job(job_id)
    assert (job.endpoint_id, job.prompt) == (RETAKE, "a cat appears")
    assert (job.input["start_time"], job.input["duration"]) == (1.0, 2.0)
