"""End to end on the fake Slack: retake and restyle after a mention with a clip, a sound
file (mention and message shortcut) making audio-to-video, and the Retake button's form.
Signed requests over HTTP, the real core and runner, the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.slack_forms import RETAKE_MODAL
from adapters.slack_render import ANIMATE_MODAL
from tests.console.helpers import make_mp4
from tests.sim.media import sine, wav_bytes
from tests.slack.payloads import (
    app_mention,
    block_actions,
    form_values,
    message_shortcut,
    view_submission,
)
from tests.slack.test_e2e import Live, buttons_of, finished_video, live

__all__ = ["live"]  # the fixture, shared with test_e2e

RETAKE = "fal-ai/ltx-2.3/retake-video"


async def _job_in(live: Live, ts: str) -> Any:
    await live.fake.wait_for(lambda: live.videos(ts), limit=60)
    [buttons] = await live.fake.wait_for(
        lambda: [m for m in live.button_messages() if m.thread_ts == ts], limit=10)
    return await live.app.runner.wait(int(buttons_of(buttons)["ltx_reroll"]))


async def test_mentions_with_a_clip_retake_and_restyle_it(live: Live, tmp_path: Path) -> None:
    data = make_mp4(tmp_path / "dog.mp4", frames=96).read_bytes()  # 4 s
    clip = live.fake.add_user_file("dog.mp4", data, "video/mp4")
    await live.sender.event(app_mention(
        "<@UBOT> retake the dog turns into a cat --from 1 --to 3 --replace video", [clip],
        ts="1700000500.000100"))
    job = await _job_in(live, "1700000500.000100")
    assert job.endpoint_id == RETAKE and job.state.value == "done"
    assert (job.input["start_time"], job.input["duration"]) == (1.0, 2.0)
    assert job.input["retake_mode"] == "replace_video"

    clip = live.fake.add_user_file("dog2.mp4", data, "video/mp4")
    await live.sender.event(app_mention("<@UBOT> restyle a watercolour painting", [clip],
                                        ts="1700000600.000100"))
    job = await _job_in(live, "1700000600.000100")
    assert job.endpoint_id == "fal-ai/ltx-2-19b/video-to-video" and job.state.value == "done"


async def test_a_sound_file_makes_audio_to_video(live: Live) -> None:
    sound = live.fake.add_user_file("voice.wav", wav_bytes(sine(3.0, 440.0)), "audio/wav")
    await live.sender.event(app_mention("<@UBOT> a singer on a stage", [sound],
                                        ts="1700000700.000100"))
    job = await _job_in(live, "1700000700.000100")
    assert job.endpoint_id == "fal-ai/ltx-2.3/audio-to-video" and job.state.value == "done"

    # The message shortcut's form takes a message's sound file too.
    sound = live.fake.add_user_file("song.wav", wav_bytes(sine(2.5, 330.0)), "audio/wav")
    message = {"type": "message", "user": "U0002", "ts": "1700000800.000100", "text": "listen",
               "files": [sound]}
    await live.sender.interactive(message_shortcut(message))
    [view] = await live.fake.wait_for(
        lambda: [v for v in live.fake.views if v["callback_id"] == ANIMATE_MODAL])
    resp = await live.sender.interactive(view_submission(view, form_values("a choir sings")))
    assert resp.status_code == 200
    job = await _job_in(live, "1700000800.000100")
    assert job.endpoint_id == "fal-ai/ltx-2.3/audio-to-video" and job.prompt == "a choir sings"


def _retake_values(start: str, end: str, replace: str | None, prompt: str) -> dict[str, Any]:
    selected = None if replace is None else {"text": {"type": "plain_text", "text": replace},
                                             "value": replace}
    return {
        "from": {"from": {"type": "number_input", "value": start}},
        "to": {"to": {"type": "number_input", "value": end}},
        "replace": {"replace": {"type": "static_select", "selected_option": selected}},
        "prompt": {"prompt": {"type": "plain_text_input", "value": prompt}},
    }


async def test_the_retake_button_opens_a_form(live: Live) -> None:
    fake = live.fake
    buttons, job_id = await finished_video(live, "a lighthouse at night --seconds 3")
    assert "ltx_retake" in buttons_of(buttons)
    await live.sender.interactive(block_actions("ltx_retake", str(job_id),
                                                message_ts=buttons.ts, thread_ts=None))
    [view] = await fake.wait_for(lambda: [v for v in fake.views if v["callback_id"] == RETAKE_MODAL])
    assert [b["block_id"] for b in view["blocks"]] == ["from", "to", "replace", "prompt"]

    # A section that ends before it starts is answered in the form; nothing runs.
    resp = await live.sender.interactive(view_submission(view, _retake_values("2", "1", None, "")))
    assert resp.json() == {"response_action": "errors", "errors": {"to": "To must be after From."}}

    resp = await live.sender.interactive(
        view_submission(view, _retake_values("0.5", "2.5", "audio", "a foghorn sounds")))
    assert resp.status_code == 200
    await fake.wait_for(lambda: len(live.videos()) >= 2, limit=60)
    [child] = [j for j in await live.app.store.list_jobs("slack:U0001") if j.parent_id == job_id]
    child = await live.app.runner.wait(child.id)
    assert (child.endpoint_id, child.prompt, child.state.value) == (RETAKE, "a foghorn sounds",
                                                                    "done")
    assert child.input["retake_mode"] == "replace_audio"
    assert (child.input["start_time"], child.input["duration"]) == (0.5, 2.0)
