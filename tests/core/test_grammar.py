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
from bot.ports import PlatformTraits
from bot.preview import preview

S = Settings()
IMG = MediaRef(kind="image", url="https://cdn.example/a.png")
IMG2 = MediaRef(kind="image", url="https://cdn.example/b.png")
VID = MediaRef(kind="video", url="https://cdn.example/c.mp4")
END = MediaRef(kind="image", url="https://cdn.example/end.png", role="end")
AUD = MediaRef(kind="audio", url="https://cdn.example/song.mp3")


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
        # The defaults of issue 12: current models with sound, none of them research only.
        ("a fox", [], "video", "fal-ai/ltx-2.3-22b/text-to-video"),
        ("a fox --seconds 4", [], "video", "fal-ai/ltx-2.3-22b/text-to-video"),
        ("a fox", [IMG], "video", "fal-ai/ltx-2-19b/image-to-video"),
        ("a fox", [IMG, END], "video", "fal-ai/ltx-2-19b/image-to-video"),
        ("a fox", [IMG, IMG2], "video", "fal-ai/ltx-video-13b-distilled/multiconditioning"),
        ("a fox", [IMG, VID], "video", "fal-ai/ltx-video-13b-distilled/multiconditioning"),
        ("a fox --extend", [VID], "video", "fal-ai/ltx-2.3/extend-video"),
        ("a fox", [VID], "extend", "fal-ai/ltx-2.3/extend-video"),
        ("a fox", [VID], "retake", "fal-ai/ltx-2.3/retake-video"),
        ("a fox", [VID], "restyle", "fal-ai/ltx-2-19b/video-to-video"),
        ("a fox", [AUD], "video", "fal-ai/ltx-2.3/audio-to-video"),
        ("a fox", [AUD, IMG], "video", "fal-ai/ltx-2.3/audio-to-video"),
        # The seed endpoints stay reachable by name.
        ("a fox --model ltx-video", [], "video", "fal-ai/ltx-video"),
        ("a fox --model ltx-i2v", [IMG], "video", "fal-ai/ltx-video/image-to-video"),
        ("a fox --model ltx-2", [IMG, IMG2], "video", "fal-ai/ltx-2-19b/image-to-video"),
        ("a fox --model 13b", [], "video", "fal-ai/ltx-video-13b-distilled/multiconditioning"),
        ("a fox --model ltx-extend", [VID], "extend", "fal-ai/ltx-video-v097/extend"),
        # A key, an alias and the full fal id name the same model.
        ("a fox --model ltx-2.3/text-to-video/fast", [], "video", "fal-ai/ltx-2.3/text-to-video/fast"),
        ("a fox --model ltx-2.3-fast", [], "video", "fal-ai/ltx-2.3/text-to-video/fast"),
        ("a fox --model fal-ai/ltx-2.3/text-to-video/fast", [], "video",
         "fal-ai/ltx-2.3/text-to-video/fast"),
    ],
)
def test_routing(text: str, media: list[MediaRef], name: str, endpoint: str) -> None:
    assert build(text, media, name).endpoint.endpoint_id == endpoint


def test_seconds_convert_with_model_fps_and_frame_rule() -> None:
    req = build("a fox --seconds 4 --fps 24", [IMG])
    assert req.input["num_frames"] == 97 and req.input["fps"] == 24
    assert (req.input["num_frames"] - 1) % 8 == 0
    req = build("a fox --seconds 4 --model ltx-13b", [])
    assert req.input["number_of_frames"] == 121 and req.input["frame_rate"] == 30
    req = build("a fox --seconds 4", [])  # LTX-2.3 22B: 24 fps by default
    assert req.input["num_frames"] == 97 and req.input["fps"] == 24


def test_keyframes_spread_and_explicit() -> None:
    req = build("a flower opens", [IMG, IMG2])
    frames = [i["start_frame_num"] for i in req.input["images"]]
    assert frames == [0, 120]
    req = build("a flower opens --at 0,64 --strength 0.7", [IMG, IMG2])
    assert [i["start_frame_num"] for i in req.input["images"]] == [0, 64]
    assert {i["strength"] for i in req.input["images"]} == {0.7}
    assert [s.path for s in req.slots] == [("images", 0, "image_url"), ("images", 1, "image_url")]


def test_extend_start_frame_and_slots() -> None:
    req = build("keep walking --from 24 --model ltx-extend", [VID], "extend")
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
        ("a fox --camera dolly_in --model ltx-video", [], "video", UnsupportedOption,
         "does not support --camera"),
        ("a fox", [], "extend", MediaError, "exactly one video"),
        ("a fox --model nope", [], "video", UsageError, "no model called"),
        ("a fox --model ltx-video", [IMG], "video", MediaError, "takes no attachments"),
        ("a fox --at 0", [IMG, IMG2], "video", UsageError, "one frame number per input"),
        ("a fox --at 0,500", [IMG, IMG2], "video", UsageError, "past the end"),
        ("a fox --ar 4:3 --model ltx-extend", [VID], "extend", UsageError, "9:16, 16:9"),
        ("a fox --seed", [], "video", UsageError, "needs a value"),
        ('a fox --negative "unclosed', [], "video", UsageError, "not closed"),
        ("x" * 2001, [], "video", UsageError, "limit is 2000"),
        ("a fox --audio=maybe", [IMG], "video", UsageError, "takes on or off"),
        ("a fox", [IMG] * 9, "video", MediaError, "0 to 8 images"),
        ("a fox", [VID] * 3, "video", MediaError, "0 to 2 videos"),
        ("a fox --fps 24.5 --seconds 2 --model ltx-13b", [], "video", UsageError, "whole --fps"),
        ("a fox --seed 99999999999", [], "video", UsageError, "4294967295; got 99999999999"),
    ],
)
def test_errors(text: str, media: list[MediaRef], name: str, error: type[Exception], fragment: str | None) -> None:
    with pytest.raises(error) as info:
        build(text, media, name)
    if fragment:
        assert fragment in str(info.value)


# ---------------------------------------------------------------- smaller things users met


@pytest.mark.parametrize(
    ("text", "shape", "aspect", "size"),
    [
        ("more waves", 9 / 16, "9:16", (720, 1280)),  # a portrait clip stays portrait
        ("more waves", 16 / 9, "16:9", (1280, 720)),
        ("more waves", 1.0, "16:9", (1280, 720)),  # square: the model's default
        ("more waves --ar 16:9", 9 / 16, "16:9", (1280, 720)),  # --ar says otherwise
        ("more waves --resolution 480p", 0.6, "9:16", (480, 853)),
    ],
)
def test_extend_follows_the_clips_shape(text: str, shape: float, aspect: str,
                                        size: tuple[int, int]) -> None:
    # The 0.9.7 extend model imposes 16:9 unless told; LTX-2.3 extend keeps the clip's own shape.
    req = routing.build_request(grammar.parse("extend", text + " --model ltx-extend"), [VID], S,
                                input_aspect=shape)
    assert req.input["aspect_ratio"] == aspect
    assert (req.estimate.width, req.estimate.height) == size  # priced for what is made


def test_extend_before_the_clip_is_probed_keeps_the_default() -> None:
    assert build("more waves --model ltx-extend", [VID], "extend").input["aspect_ratio"] == "16:9"


def test_ltx2_resolution_follows_the_images_shape() -> None:
    def size(text: str, shape: float | None) -> Any:
        return routing.build_request(grammar.parse("video", text), [IMG], S,
                                     input_aspect=shape).input["video_size"]

    assert size("a fox --resolution 720p", 3 / 4) == {"width": 720, "height": 960}
    assert size("a fox --resolution 720p", 3 / 2) == {"width": 1088, "height": 720}
    assert size("a fox --resolution 720p --ar 16:9", 3 / 4) == {"width": 1280, "height": 720}
    assert size("a fox --resolution 480p", 1 / 6) == {"width": 480, "height": 2048}  # capped
    assert size("a fox --resolution 720p", None) == {"width": 1280, "height": 720}


@pytest.mark.parametrize("value", ["4000x4000", "32x720", "big", "720", "square-xl"])
def test_ltx2_resolution_refusal_is_one_sentence_with_every_form(value: str) -> None:
    with pytest.raises(UsageError) as info:
        build(f"a fox --resolution {value}", [IMG])
    text = str(info.value)
    assert "Input should" not in text and text.count("--resolution") == 1
    assert text.count(".") == 1 + text.count("e.g.") * 2  # one sentence
    for form in ("480p", "720p", "1080p", "64x64 to 2048x2048", "square_hd", "landscape_16_9",
                 "portrait_4_3"):
        assert form in text
    assert text.endswith(f"got {value!r}.")


@pytest.mark.parametrize(
    ("value", "size", "pixels"),
    [
        ("square_hd", "square_hd", (1024, 1024)),
        ("landscape-16-9", "landscape_16_9", (1024, 576)),
        ("Portrait_4_3", "portrait_4_3", (768, 1024)),
        ("2048x2048", {"width": 2048, "height": 2048}, (2048, 2048)),
    ],
)
def test_ltx2_takes_its_size_names(value: str, size: Any, pixels: tuple[int, int]) -> None:
    req = build(f"a fox --resolution {value}", [IMG])
    assert req.input["video_size"] == size
    assert (req.estimate.width, req.estimate.height) == pixels


def test_a_size_name_and_a_different_ar_conflict() -> None:
    assert build("a fox --resolution portrait_16_9 --ar 9:16", [IMG]).input["video_size"] == "portrait_16_9"
    with pytest.raises(UsageError, match="already sets the shape"):
        build("a fox --resolution square_hd --ar 9:16", [IMG])
    # Models without size names list what they take.
    with pytest.raises(UsageError, match="takes --resolution 480p, 720p; got square_hd"):
        build("a fox --resolution square_hd", [IMG, IMG2])


def test_a_refused_size_is_explained_once() -> None:
    """A union field fails once per arm with the same words: each is said once."""
    with pytest.raises(UsageError) as info:
        routing.validate_input(catalog.by_name("ltx-2"), {
            "prompt": "a fox", "image_url": "https://x/a.png",
            "video_size": {"width": 4000, "height": 4000}})
    assert str(info.value).count("less than or equal to 2048") == 1


@pytest.mark.parametrize("typo", ["ltx3", "ltx-13", "LTX2 ", "extnd", "ltx-video-2", "keyframe", "19"])
def test_model_did_you_mean_suggests_only_names_it_lists(typo: str) -> None:
    try:
        build(f"a fox --model {typo}", [IMG])
        return  # a name after all (e.g. a different case)
    except UsageError as exc:
        text = str(exc)
    listed = text.split("Models (other names in brackets): ", 1)[1]
    names = set(listed.replace("(", ",").replace(")", ",").rstrip(".").replace(" ", "").split(","))
    names.discard("")
    assert names == set(catalog.all_names())  # every key and alias is shown
    if "Did you mean" in text:
        suggested = text.split("Did you mean ", 1)[1].split("?", 1)[0].split(" or ")
        assert suggested and set(suggested) <= names, (suggested, names)


def test_ltx3_suggests_names_that_are_listed() -> None:
    with pytest.raises(UsageError) as info:
        build("a fox --model ltx3")
    assert "Did you mean ltx23 or ltx?" in str(info.value)
    assert "ltx-video (ltx, " in str(info.value)


@pytest.mark.parametrize(
    ("text", "media", "fragment"),
    [
        ("a fox --camera dolly_in --model ltx-video", [],
         "Use --model ltx-2.3-22b/text-to-video or ltx-2.3-22b/distilled/text-to-video or "
         "ltx-2-19b/text-to-video for that."),
        ("a fox --camera dolly_in --model ltx-extend", [VID],
         "Use --model ltx-2-19b/extend-video or ltx-2-19b/video-to-video for that."),
        ("a fox --camera dolly_in --model ltx-13b", [IMG],
         "Use --model ltx-2 or ltx-2.3-22b/image-to-video or ltx-2.3-22b/distilled/image-to-video"),
        ("a fox --from 4", [IMG], "ltx-extend (with 1 video), ltx-2.3/retake-video (with 1 video)"),
        ("a fox --seconds 3 --model ltx-i2v", [IMG],
         "Use --model ltx-13b or ltx-2 or ltx-2.3-22b/image-to-video or "
         "ltx-2.3-22b/distilled/image-to-video or others (see models) for that."),
    ],
)
def test_an_unsupported_flag_names_the_models_that_take_it(
        text: str, media: list[MediaRef], fragment: str) -> None:
    with pytest.raises(UnsupportedOption) as info:
        build(text, media, "extend" if media == [VID] and "--model" not in text else "video")
    assert fragment in str(info.value)


CONSOLE = PlatformTraits(local_files=True)
CHAT = PlatformTraits(local_files=False)


def test_extend_without_a_clip_says_how_to_give_one_here() -> None:
    def refusal(traits: PlatformTraits) -> str:
        with pytest.raises(MediaError) as info:
            routing.build_request(grammar.parse("extend", "more waves"), [], S, traits=traits)
        return str(info.value)

    assert "--video PATH" in refusal(CONSOLE) and "/extend #N" in refusal(CONSOLE)
    assert "attach" not in refusal(CONSOLE) and "reply" not in refusal(CONSOLE)
    assert "attach a clip or reply to a message" in refusal(CHAT)


@pytest.mark.parametrize(
    ("text", "traits", "fragment"),
    [
        ("the cat yawns cat.png", CONSOLE, "give it with --image cat.png"),
        ("the cat yawns cat.png", CHAT, "nothing is attached"),
        ("waves roll in, see clip.MOV.", CONSOLE, "give it with --video clip.MOV"),
        ("make https://example.com/a/cat.webp?x=1 dance", CHAT,
         "give it with --image https://example.com/a/cat.webp?x=1"),
        ("/extend more waves clip.mp4", CONSOLE, "--video clip.mp4"),
    ],
)
def test_a_file_named_in_a_prompt_alone_is_refused(text: str, traits: PlatformTraits,
                                                   fragment: str) -> None:
    name = "extend" if text.startswith("/extend") else "video"
    text = text.removeprefix("/extend ")
    with pytest.raises(UsageError) as info:
        routing.refuse_file_words(grammar.parse(name, text), text, traits, attached=0)
    assert fragment in str(info.value) and "quotes" in str(info.value)


@pytest.mark.parametrize(
    ("text", "attached"),
    [
        ('the cat yawns "cat.png"', 0),  # quoted: meant as a word
        ('"a sign that reads cat.png" glows', 0),
        ("the cat yawns cat.png", 1),  # an attachment: not a prompt alone
        ("the cat yawns --image cat.png", 0),
        ("the cat yawns, e.g. slowly", 0),
        ("a node.js logo spins", 0),
    ],
)
def test_words_that_are_meant_as_words_pass(text: str, attached: int) -> None:
    routing.refuse_file_words(grammar.parse("video", text), text, CONSOLE, attached=attached)


def test_an_existing_local_picture_is_refused_only_where_paths_are_files(tmp_path: Any) -> None:
    from PIL import Image

    picture = tmp_path / "snapshot.dat"  # a PNG whose name says nothing
    Image.new("RGB", (8, 8)).save(picture, format="PNG")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    text = f"the cat yawns {picture}"
    with pytest.raises(UsageError, match=f"--image {picture}"):
        routing.refuse_file_words(grammar.parse("video", text), text, CONSOLE, attached=0)
    routing.refuse_file_words(grammar.parse("video", text), text, CHAT, attached=0)
    text = f"read {notes} aloud"  # a file, but no picture or clip: a word
    routing.refuse_file_words(grammar.parse("video", text), text, CONSOLE, attached=0)


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


def test_preview_reads_leading_command_words_as_the_chat_does() -> None:
    assert preview("video of a cat playing piano", [], S)["input"]["prompt"] == (
        "video of a cat playing piano")
    out = preview("/keyframes a flower opens", ["a.png", "b.png"], S)
    assert out["endpoint"].endswith("multiconditioning") and out["input"]["prompt"] == "a flower opens"
    # As in a chat, a leading "extend" is the command (which needs a clip), not a prompt.
    out = preview("extend the red carpet", ["clip.mp4"], S)
    assert out["endpoint"] == catalog.by_name(S.models.extend).endpoint_id
    assert out["input"]["prompt"] == "the red carpet" and out["notes"] == []
    with pytest.raises(MediaError, match="exactly one video"):
        preview("extend the red carpet", [], S)


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


@pytest.mark.parametrize(
    ("text", "attach", "endpoint", "fields"),
    [
        ("retake the dog turns into a cat --from 2 --to 5", ["https://cdn.example/c.mp4"],
         "fal-ai/ltx-2.3/retake-video", {"start_time": 2.0, "duration": 3.0}),
        ("restyle as a watercolour", ["https://cdn.example/c.mp4"],
         "fal-ai/ltx-2-19b/video-to-video", {"video_url": "https://cdn.example/c.mp4"}),
        ("extend the beam sweeps --seconds 4 --at-start", ["https://cdn.example/c.mp4"],
         "fal-ai/ltx-2.3/extend-video", {"duration": 4.0, "mode": "start"}),
        ("a woman sings --audio-file https://cdn.example/s.mp3", [],
         "fal-ai/ltx-2.3/audio-to-video", {"audio_url": "https://cdn.example/s.mp3"}),
        ("a door opens --end https://cdn.example/z.png", ["https://cdn.example/a.png"],
         "fal-ai/ltx-2-19b/image-to-video", {"end_image_url": "https://cdn.example/z.png"}),
        ("/restyle as a watercolour --model ltx-2-19b/video-to-video",
         ["https://cdn.example/c.mp4"], "fal-ai/ltx-2-19b/video-to-video", {}),
    ],
)
def test_preview_of_each_new_command(text: str, attach: list[str], endpoint: str,
                                     fields: dict[str, Any]) -> None:
    out = preview(text, attach, S)
    assert out["endpoint"] == endpoint
    assert {k: out["input"][k] for k in fields} == fields
    assert out["estimate"]["credits"] > 0
