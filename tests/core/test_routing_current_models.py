"""Routing for the current models (issue 12): retake, restyle, audio to video, LTX-2.3
extend, end images, duration lists, cross-field rules, research-only models, prices."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bot import catalog, grammar, routing
from bot.catalog import VideoOutput
from bot.config import Settings
from bot.errors import MediaError, UnsupportedOption, UsageError
from bot.model import MediaRef

S = Settings()
IMG = MediaRef(kind="image", url="https://cdn.example/a.png")
END = MediaRef(kind="image", url="https://cdn.example/end.png", role="end")
CLIP = MediaRef(kind="video", url="https://cdn.example/c.mp4", duration=8.0)
SONG = MediaRef(kind="audio", url="https://cdn.example/song.mp3", duration=3.0)


def build(text: str, media: list[MediaRef] | None = None, name: str = "video",
          settings: Settings = S) -> Any:
    return routing.build_request(grammar.parse(name, text), media or [], settings)


# ---------------------------------------------------------------- retake


def test_retake_takes_seconds_of_the_clip() -> None:
    req = build("the dog turns into a cat --from 2 --to 5", [CLIP], "retake")
    assert req.endpoint.endpoint_id == "fal-ai/ltx-2.3/retake-video"
    assert req.input == {"video_url": CLIP.url, "prompt": "the dog turns into a cat",
                         "start_time": 2.0, "duration": 3.0,
                         "retake_mode": "replace_audio_and_video"}
    assert req.estimate.seconds == 3.0 and req.estimate.usd == pytest.approx(0.30)
    assert [s.path for s in req.slots] == [("video_url",)]


@pytest.mark.parametrize(("word", "mode"), [("video", "replace_video"), ("audio", "replace_audio"),
                                            ("both", "replace_audio_and_video")])
def test_retake_replace_picks_the_tracks(word: str, mode: str) -> None:
    req = build(f"rain --from 1 --to 4 --replace {word}", [CLIP], "retake")
    assert req.input["retake_mode"] == mode


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rain --from 2 --to 9", "The clip is 8.0 s long"),
        ("rain --from 2 --to 3", "redoes 2 to 20 s of a clip"),
        ("rain --from 5 --to 4", "--to must be after --from"),
        ("rain --from 2 --to 5 --replace sound", "must be one of video, audio, both"),
    ],
)
def test_retake_refuses_a_range_it_cannot_do(text: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        build(text, [CLIP], "retake")


def test_retake_needs_one_clip() -> None:
    with pytest.raises(MediaError, match="Retake needs exactly one video"):
        build("rain --from 1 --to 4", [IMG], "retake")


def test_from_is_a_frame_number_on_the_old_extend_model() -> None:
    req = build("more --from 24 --model ltx-extend", [CLIP], "extend")
    assert req.input["video"]["start_frame_num"] == 24
    with pytest.raises(UsageError, match="frame number"):
        build("more --from 2.5 --model ltx-extend", [CLIP], "extend")


# ---------------------------------------------------------------- restyle, audio, extend


def test_restyle_sends_the_clip_to_video_to_video() -> None:
    req = build("as a watercolour", [CLIP], "restyle")
    assert req.endpoint.endpoint_id == "fal-ai/ltx-2-19b/video-to-video"
    assert req.input["video_url"] == CLIP.url and "seed" not in req.input
    with_song = build("as a watercolour", [CLIP, SONG], "restyle")
    assert with_song.input["audio_url"] == SONG.url


def test_audio_to_video_follows_its_audio() -> None:
    req = build("a woman whispers", [SONG])
    assert req.endpoint.endpoint_id == "fal-ai/ltx-2.3/audio-to-video"
    assert req.input == {"audio_url": SONG.url, "prompt": "a woman whispers", "aspect_ratio": "auto"}
    assert req.estimate.seconds == 3.0 and req.estimate.usd == pytest.approx(0.30)
    with_image = build("she sings", [SONG, IMG])
    assert with_image.input["image_url"] == IMG.url


def test_audio_length_is_checked_before_any_cost() -> None:
    long = MediaRef(kind="audio", url="https://cdn.example/long.mp3", duration=25.0)
    with pytest.raises(MediaError, match=r"2 to 20 s of audio; this file is 25\.0 s long"):
        build("a concert", [long])


def test_audio_to_video_wants_a_prompt_or_an_image() -> None:
    with pytest.raises(UsageError, match="give a prompt or an image"):
        routing.build_request(grammar.parse("video", ""), [SONG], S)
    assert build("", [SONG, IMG]).input["image_url"] == IMG.url


def test_audio_file_flag_is_an_audio_input() -> None:
    command = grammar.parse("video", "a woman sings --audio-file song.mp3 --audio off")
    assert [(m.kind, m.url) for m in command.media] == [("audio", "song.mp3")]
    assert command.options == {"audio": False}


def test_ltx23_extend_adds_seconds_at_the_end_or_start() -> None:
    req = build("the beam sweeps --seconds 7.5", [CLIP], "extend")
    assert req.input == {"video_url": CLIP.url, "prompt": "the beam sweeps", "duration": 7.5,
                         "mode": "end"}
    assert req.estimate.usd == pytest.approx(0.75)
    assert build("before --at-start", [CLIP], "extend").input["mode"] == "start"
    assert build("before --at-start --model ltx-2-19b/extend-video", [CLIP],
                 "extend").input["extend_direction"] == "backward"
    with pytest.raises(UsageError, match="between 2 and 20"):
        build("more --seconds 30", [CLIP], "extend")
    with pytest.raises(UnsupportedOption, match="--at-start"):
        build("more --at-start --model ltx-extend", [CLIP], "extend")


def test_end_image_goes_to_the_image_models_end_field() -> None:
    command = grammar.parse("video", "a door opens --end last.png")
    assert [(m.kind, m.role) for m in command.media] == [("image", "end")]
    req = build("a door opens", [IMG, END])
    assert req.endpoint.key == "ltx-2"
    assert (req.input["image_url"], req.input["end_image_url"]) == (IMG.url, END.url)
    # Given first, the end image still goes to the end field.
    assert build("a door opens", [END, IMG]).input["end_image_url"] == END.url
    with pytest.raises(MediaError, match="no end image"):
        build("a door opens --model ltx-i2v", [IMG, END])


# ---------------------------------------------------------------- durations and rules between fields


def test_a_duration_list_takes_the_nearest_and_says_so() -> None:
    req = build("a fox --model ltx-2.3 --seconds 7")
    assert req.input["duration"] == 8
    assert req.notes == ["LTX-2.3 Pro text-to-video makes 6, 8, 10 s clips: --seconds 7 became 8."]
    assert build("a fox --model ltx-2.3 --seconds 8").notes == []
    assert build("a fox --model ltx-2.3 --seconds 40").input["duration"] == 10


def test_fast_long_clips_only_at_25_fps_and_1080p() -> None:
    assert build("a fox --model ltx-2.3-fast --seconds 14").input["duration"] == 14
    for extra in ("--fps 24", "--resolution 1440p"):
        with pytest.raises(UsageError, match="only at 25 fps and 1080p"):
            build(f"a fox --model ltx-2.3-fast --seconds 14 {extra}")
    assert build("a fox --model ltx-2.3-fast --seconds 10 --fps 24").input["fps"] == 24


def test_resolution_and_fps_follow_each_models_options() -> None:
    with pytest.raises(UsageError, match="takes --resolution 1080p, 1440p, 2160p"):
        build("a fox --model ltx-2.3 --resolution 720p")
    with pytest.raises(UsageError, match="takes --fps 24, 25, 48, 50"):
        build("a fox --model ltx-2.3 --fps 30")
    with pytest.raises(UsageError, match="takes its length in seconds"):
        build("a fox --model ltx-2.3 --frames 100")


# ---------------------------------------------------------------- research only


def test_research_only_models_can_be_turned_off() -> None:
    assert build("a fox --model ltx-video").endpoint.license == "research"
    strict = Settings.model_validate({"models": {"allow_research_only": False}})
    with pytest.raises(UsageError, match=r"\[models\] allow_research_only = false"):
        build("a fox --model ltx-video", settings=strict)
    assert build("a fox", settings=strict).endpoint.key == "ltx-2.3-22b/text-to-video"
    with pytest.raises(ValidationError, match="research only"):
        Settings.model_validate({"models": {"allow_research_only": False, "text": "ltx-video"}})


def test_no_default_is_research_only() -> None:
    for role in ("text", "image", "keyframes", "extend", "audio", "retake", "restyle"):
        assert catalog.by_name(getattr(S.models, role)).license != "research", role


def test_models_roles_take_a_key_an_alias_or_the_fal_id() -> None:
    for name in ("ltx-2.3/retake-video", "retake", "fal-ai/ltx-2.3/retake-video"):
        assert Settings.model_validate({"models": {"retake": name}}).models.retake == (
            "ltx-2.3/retake-video")
    with pytest.raises(ValidationError, match="cannot be the audio model"):
        Settings.model_validate({"models": {"audio": "ltx-2"}})


# ---------------------------------------------------------------- prices


def test_per_second_prices_by_resolution() -> None:
    req = build("a fox --model ltx-2.3 --seconds 8 --resolution 1440p")
    assert req.estimate.usd == pytest.approx(8 * 0.16) and req.estimate.credits == 128
    assert (req.estimate.width, req.estimate.height) == (2560, 1440)


@pytest.mark.parametrize("key", ["ltx-2.3/text-to-video", "ltx-2.3", "fal-ai/ltx-2.3/text-to-video"])
def test_price_overrides_per_second_by_resolution(key: str) -> None:
    settings = Settings.model_validate(
        {"prices": {key: {"usd_per_second_by_resolution": {"1080p": 0.1, "1440p": 0.2}}}})
    assert build("a fox --model ltx-2.3 --seconds 6", settings=settings).estimate.usd == (
        pytest.approx(0.6))
    flat = Settings.model_validate({"prices": {key: {"usd_per_second": 0.05}}})
    assert build("a fox --model ltx-2.3 --seconds 10", settings=flat).estimate.usd == (
        pytest.approx(0.5))


def test_settlement_per_second_is_on_the_requested_duration() -> None:
    req = build("a fox --model ltx-2.3 --seconds 10")
    made = VideoOutput.model_validate({"video": {"url": "u", "duration": 9.96, "num_frames": 249}})
    assert catalog.settle_usd(req.endpoint, made, req.input) == pytest.approx(0.8)
    a2v = build("a woman whispers", [SONG])
    heard = VideoOutput.model_validate({"video": {"url": "u", "duration": 3.0}})
    assert catalog.settle_usd(a2v.endpoint, heard, a2v.input) == pytest.approx(a2v.estimate.usd)


def test_reroll_needs_no_seed_where_the_model_has_none() -> None:
    assert not catalog.by_name("ltx-2.3").takes_seed
    assert "seed" not in build("a fox --model ltx-2.3").input
    with pytest.raises(UnsupportedOption, match="does not support --seed"):
        build("a fox --model ltx-2.3 --seed 4")
