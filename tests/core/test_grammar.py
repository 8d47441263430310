"""The grammar and routing: free text and structured options, routing, per-model mapping and errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import catalog, grammar, routing
from bot.config import Settings
from bot.errors import MediaError, UnsupportedOption, UsageError, UserError
from bot.model import MediaRef
from bot.preview import preview

S = Settings()
IMG = MediaRef(kind="image", url="https://cdn.example/a.png")
IMG2 = MediaRef(kind="image", url="https://cdn.example/b.png")
VID = MediaRef(kind="video", url="https://cdn.example/c.mp4")


def build(text: str, media: list[MediaRef] | None = None, name: str = "video",
          options: dict[str, Any] | None = None) -> Any:
    return routing.build_request(grammar.parse(name, text, options), media or [], S)


@pytest.mark.parametrize(
    ("text", "prompt", "options"),
    [
        ("a red fox runs --seed 42", "a red fox runs", {"seed": 42}),
        ("--seed=42 a red fox runs", "a red fox runs", {"seed": 42}),
        ('a fox --negative "blurry, text" runs', "a fox runs", {"negative": "blurry, text"}),
        ('a fox --negative="blurry, text" runs', "a fox runs", {"negative": "blurry, text"}),
        ('"--seed 4" is literal', "--seed 4 is literal", {}),
        ("the cat's tail swings --seconds 4", "the cat's tail swings", {"seconds": 4.0}),
        ("a fox \u2014seed 7", "a fox", {"seed": 7}),  # a phone turned -- into an em dash
        ("a fox --no-audio", "a fox", {"audio": False}),
        ("a fox --audio off --ar 9x16", "a fox", {"audio": False, "aspect": "9:16"}),
        ("a fox --audio the end", "a fox the end", {"audio": True}),
        ("a fox --camera dolly-in --camera-scale .5", "a fox", {"camera": "dolly_in", "camera_scale": 0.5}),
        ("a fox --at 0,40,80", "a fox", {"positions": [0, 40, 80]}),
        ("a fox --seconds 5s", "a fox", {"seconds": 5.0}),
        ("\u201ca quoted prompt\u201d --seed 1", "a quoted prompt", {"seed": 1}),
    ],
)
def test_free_text(text: str, prompt: str, options: dict[str, Any]) -> None:
    command = grammar.parse("video", text)
    assert command.prompt == prompt
    assert command.options == options


def test_structured_options_equal_free_text() -> None:
    text = grammar.parse("video", "a red fox --seconds 5 --ar 9:16 --seed 42 --model ltx-2")
    structured = grammar.parse("video", "a red fox", {"seconds": 5, "aspect": "9:16", "seed": "42", "model": "ltx-2"})
    assert text == structured
    assert build("a red fox --seconds 5 --ar 9:16 --seed 42", [IMG]).input == build(
        "a red fox", [IMG], options={"seconds": 5, "aspect": "9:16", "seed": 42}).input


def test_media_flags_are_collected() -> None:
    command = grammar.parse("keyframes", "--image a.png --image=b.png --video c.mp4 blooms")
    assert [m.kind for m in command.media] == ["image", "image", "video"]
    assert command.prompt == "blooms"


@pytest.mark.parametrize(
    ("text", "media", "name", "endpoint"),
    [
        ("a fox", [], "video", "fal-ai/ltx-video"),
        ("a fox --seconds 4", [], "video", "fal-ai/ltx-video-13b-distilled/multiconditioning"),
        ("a fox", [IMG], "video", "fal-ai/ltx-2-19b/image-to-video"),
        ("a fox", [IMG, IMG2], "video", "fal-ai/ltx-video-13b-distilled/multiconditioning"),
        ("a fox", [IMG, VID], "video", "fal-ai/ltx-video-13b-distilled/multiconditioning"),
        ("a fox --extend", [VID], "video", "fal-ai/ltx-video-v097/extend"),
        ("a fox", [VID], "extend", "fal-ai/ltx-video-v097/extend"),
        ("a fox --model ltx-i2v", [IMG], "video", "fal-ai/ltx-video/image-to-video"),
        ("a fox --model ltx-2", [IMG, IMG2], "video", "fal-ai/ltx-2-19b/image-to-video"),
    ],
)
def test_routing(text: str, media: list[MediaRef], name: str, endpoint: str) -> None:
    assert build(text, media, name).endpoint.endpoint_id == endpoint


def test_seconds_convert_with_model_fps_and_frame_rule() -> None:
    req = build("a fox --seconds 4 --fps 24", [IMG])
    assert req.input["num_frames"] == 97 and req.input["fps"] == 24
    assert (req.input["num_frames"] - 1) % 8 == 0
    req = build("a fox --seconds 4", [])
    assert req.input["number_of_frames"] == 121 and req.input["frame_rate"] == 30


def test_keyframes_spread_and_explicit() -> None:
    req = build("a flower opens", [IMG, IMG2])
    frames = [i["start_frame_num"] for i in req.input["images"]]
    assert frames == [0, 120]
    req = build("a flower opens --at 0,64 --strength 0.7", [IMG, IMG2])
    assert [i["start_frame_num"] for i in req.input["images"]] == [0, 64]
    assert {i["strength"] for i in req.input["images"]} == {0.7}
    assert [s.path for s in req.slots] == [("images", 0, "image_url"), ("images", 1, "image_url")]


def test_extend_start_frame_and_slots() -> None:
    req = build("keep walking --from 24", [VID], "extend")
    assert req.input["video"] == {"video_url": VID.url, "start_frame_num": 24}
    assert req.slots[0].path == ("video", "video_url")
    assert req.with_urls(["https://fal/x.mp4"])["video"]["video_url"] == "https://fal/x.mp4"


def test_ltx2_end_image_and_estimate() -> None:
    req = build("a fox --model ltx-2 --resolution 720p --ar 16:9 --seconds 4.8", [IMG, IMG2])
    assert req.input["end_image_url"] == IMG2.url
    assert req.input["video_size"] == {"width": 1280, "height": 720}
    assert req.estimate.usd == pytest.approx(catalog.Price(usd_per_megapixel=0.0018).usd(1280, 720, 121))
    assert req.estimate.credits == 21


@pytest.mark.parametrize(
    ("text", "media", "name", "error", "fragment"),
    [
        ("a fox --sed 4", [], "video", UsageError, "Did you mean --seed"),
        ("a fox --seconds 30", [IMG], "video", UsageError, "0.3 s to 19.2 s"),
        ("a fox --steps 60", [IMG], "video", UsageError, "between 8 and 50"),
        ("a fox --seconds five", [], "video", UsageError, "needs a number"),
        ("--seed 4", [], "video", UsageError, "describe the video"),
        ("a fox --camera dolly_in", [], "video", UnsupportedOption, "does not support --camera"),
        ("a fox", [], "extend", MediaError, "exactly one video"),
        ("a fox --model nope", [], "video", UsageError, "no model called"),
        ("a fox --model ltx-video", [IMG], "video", MediaError, "takes no attachments"),
        ("a fox --at 0", [IMG, IMG2], "video", UsageError, "one frame number per input"),
        ("a fox --at 0,500", [IMG, IMG2], "video", UsageError, "past the end"),
        ("a fox --ar 4:3", [VID], "extend", UsageError, "9:16, 16:9"),
        ("a fox --seed", [], "video", UsageError, "needs a value"),
        ('a fox --negative "unclosed', [], "video", UsageError, "not closed"),
        ("x" * 2001, [], "video", UsageError, "limit is 2000"),
        ("a fox --audio=maybe", [IMG], "video", UsageError, "takes on or off"),
        ("a fox", [IMG] * 9, "video", MediaError, "0 to 8 images"),
        ("a fox", [VID] * 3, "video", MediaError, "0 to 2 videos"),
        ("a fox --fps 24.5 --seconds 2", [], "video", UsageError, "whole --fps"),
        ("a fox --seed 99999999999", [], "video", UsageError, "4294967295; got 99999999999"),
    ],
)
def test_errors(text: str, media: list[MediaRef], name: str, error: type[Exception], fragment: str | None) -> None:
    with pytest.raises(error) as info:
        build(text, media, name)
    if fragment:
        assert fragment in str(info.value)


def test_ltx_seed_examples_validate_via_grammar_output() -> None:
    for text, media in [("a fox", []), ("a fox --seconds 3 --ar 1:1", []), ("a fox", [IMG]),
                        ("a fox", [IMG, VID]), ("a fox", [VID])]:
        req = build(text, media, "extend" if media == [VID] else "video")
        req.endpoint.input_model.model_validate(req.input)


FLAG_WORDS = st.sampled_from([f"--{f}" for f in grammar.OPTION_BY_FLAG] + ["--", "-", "—", "--x=", "="])
VALUES = st.one_of(st.integers(-10, 10**6).map(str), st.floats(allow_nan=True).map(str),
                   st.sampled_from(["on", "off", "16:9", "720p", "dolly_in", "a,b", '"', "'", "0,8"]),
                   st.text(max_size=12))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(FLAG_WORDS, VALUES, st.text(max_size=8)), max_size=12),
       st.sampled_from(["video", "keyframes", "extend", "quote"]),
       st.lists(st.sampled_from([IMG, IMG2, VID]), max_size=12))
def test_fuzz_returns_request_or_user_error(words: list[str], name: str, media: list[MediaRef]) -> None:
    try:
        request = build(" ".join(words), media, name)
    except UserError as exc:
        assert str(exc)
        return
    request.endpoint.input_model.model_validate(request.input)
    images = sum(1 for m in media if m.kind == "image")
    assert request.endpoint.media.accepts(images, len(media) - images)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(grammar.OPTION_BY_NAME)), st.one_of(
    st.integers(-5, 500), st.floats(allow_nan=True), st.booleans(), st.text(max_size=10))))
def test_fuzz_structured_options(options: dict[str, Any]) -> None:
    try:
        request = build("a fox", [IMG], options=options)
    except UserError as exc:
        assert str(exc)
        return
    request.endpoint.input_model.model_validate(request.input)


def test_preview_reads_a_command_only_from_a_slash() -> None:
    assert preview("video of a cat playing piano", [], S)["input"]["prompt"] == (
        "video of a cat playing piano")
    out = preview("/keyframes a flower opens", ["a.png", "b.png"], S)
    assert out["endpoint"].endswith("multiconditioning") and out["input"]["prompt"] == "a flower opens"
    assert preview("extend the red carpet", [], S)["input"]["prompt"] == "extend the red carpet"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("extend more waves", ("extend", "more waves")),
        ("/video a fox", ("video", "a fox")),
        ("video of a cat playing piano", ("video", "video of a cat playing piano")),
        ("admin grant <@1> 50", ("admin", "grant <@1> 50")),
        ("Keyframes a flower opens", ("keyframes", "a flower opens")),
        ("cancel 12", ("cancel", "12")),
        ("a red fox --seconds 4", ("video", "a red fox --seconds 4")),
        ("  help ", ("help", "")),
    ],
)
def test_leading_command(text: str, expected: tuple[str, str]) -> None:
    assert grammar.leading_command(text) == expected


def test_usage_speaks_each_platforms_syntax() -> None:
    slack = grammar.usage("/ltx ", "mrkdwn")
    assert "`/ltx <what happens> [--flags]`" in slack and "`/ltx quota`" in slack
    assert "/ltx video" not in slack  # "video" would end up in the prompt there
    assert "`/video <what happens> [--flags]`" in grammar.usage("/", "markdown")


@pytest.mark.parametrize(
    ("markup", "bold", "code"),
    [("markdown", "**Flags**", "`--seed`"), ("mrkdwn", "*Flags*", "`--seed`"),
     ("plain", "Flags (", "--seed random seed")],
)
def test_usage_in_each_markup(markup: Any, bold: str, code: str) -> None:
    text = grammar.usage("/", markup)
    assert bold in text and code in text
    if markup != "markdown":
        assert "**" not in text
    if markup == "plain":
        assert "`" not in text and "*" not in text
