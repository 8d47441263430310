"""What the simulator draws for retake, extend, audio-to-video and restyle shows what the
job did, checked on the decoded MP4 and its sound (H.264 and AAC are lossy: colours and
pitches are compared with a tolerance)."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pytest
from PIL import Image

from bot.sim.files import FileStore
from bot.sim.render_edits import audio_to_video, edit_of, extend, restyle, restyled, retake
from tests.sim.media import (
    BLUE,
    GREEN,
    RED,
    YELLOW,
    Decoded,
    centre,
    clip_bytes,
    data_uri,
    distance,
    mean,
    near,
    silence,
    sine,
    wav_bytes,
)

# Four seconds at 10 fps, a colour a second, under a 440 Hz tone.
SOURCE = [RED] * 10 + [GREEN] * 10 + [BLUE] * 10 + [YELLOW] * 10


@pytest.fixture
def files() -> Iterator[FileStore]:
    store = FileStore()
    store.open()
    yield store


@pytest.fixture(scope="module")
def source_url() -> str:
    return data_uri(clip_bytes(SOURCE), "video/mp4")


def rng() -> random.Random:
    return random.Random(7)


def test_each_edit_endpoint_is_recognised() -> None:
    assert edit_of("fal-ai/ltx-2.3/retake-video") == "retake-video"
    assert edit_of("fal-ai/ltx-2/retake-video") == "retake-video"
    assert edit_of("fal-ai/ltx-2.3/extend-video") == edit_of("fal-ai/ltx-2-19b/extend-video")
    assert edit_of("fal-ai/ltx-2-19b/video-to-video") == "video-to-video"
    assert edit_of("fal-ai/ltx-2.3/audio-to-video") == "audio-to-video"
    assert edit_of("fal-ai/ltx-video-v097/extend") is None  # the old extend keeps its render
    assert edit_of("fal-ai/ltx-2.3/text-to-video") is None


@pytest.mark.parametrize("mode", ["replace_video", "replace_audio_and_video"])
def test_retake_redoes_the_range_and_keeps_the_rest(files: FileStore, source_url: str,
                                                    mode: str) -> None:
    made = retake({"video_url": source_url, "prompt": "a cat", "start_time": 1.0,
                   "duration": 2.0, "retake_mode": mode}, files, 1.0, rng())
    assert made is not None
    out = Decoded.of(made)
    assert len(out.frames) == len(SOURCE) and out.fps == 10
    for i, color in enumerate(SOURCE):
        seen = mean(out.frames[i])
        if 10 <= i < 30:
            assert distance(seen, color) > 80, (i, seen, color)  # visibly redone
        else:
            assert near(seen, color), (i, seen, color)  # kept
    assert abs(out.pitch(0.1, 0.9) - 440) < 25 and abs(out.pitch(3.1, 3.9) - 440) < 25
    inside = out.pitch(1.2, 2.8)
    if mode == "replace_video":
        assert abs(inside - 440) < 25, inside  # the sound is the clip's own
    else:
        assert abs(inside - 880) < 40, inside  # the sound is redone too


def test_retake_of_the_audio_only_leaves_every_frame(files: FileStore, source_url: str) -> None:
    made = retake({"video_url": source_url, "prompt": "a bark", "start_time": 2.0,
                   "duration": 2.0, "retake_mode": "replace_audio"}, files, 1.0, rng())
    assert made is not None
    out = Decoded.of(made)
    for i, color in enumerate(SOURCE):
        assert near(mean(out.frames[i]), color), (i, mean(out.frames[i]), color)
    assert abs(out.pitch(0.2, 1.8) - 440) < 25
    assert abs(out.pitch(2.2, 3.8) - 880) < 40


def test_a_retake_past_the_end_is_clamped_to_the_clip(files: FileStore, source_url: str) -> None:
    made = retake({"video_url": source_url, "prompt": "x", "start_time": 3.0, "duration": 5.0,
                   "retake_mode": "replace_video"}, files, 1.0, rng())
    assert made is not None and len(made.frames) == len(SOURCE)
    assert near(mean(made.frames[29]), BLUE)  # before the range: kept
    assert distance(mean(made.frames[35]), YELLOW) > 80


@pytest.mark.parametrize(("payload", "before"), [
    ({"duration": 2.0, "mode": "end"}, False),
    ({"duration": 2.0, "mode": "start"}, True),
    ({"num_frames": 20, "extend_direction": "forward"}, False),
    ({"num_frames": 20, "extend_direction": "backward"}, True),
])
def test_extend_continues_from_the_last_or_into_the_first_frame(
    files: FileStore, source_url: str, payload: dict[str, object], before: bool
) -> None:
    made = extend({"video_url": source_url, "prompt": "and then", **payload}, files, 1.0, rng())
    assert made is not None
    out = Decoded.of(made)
    assert len(out.frames) == len(SOURCE) + 20 and out.fps == 10
    kept = out.frames[20:] if before else out.frames[:len(SOURCE)]
    for i, color in enumerate(SOURCE):
        assert near(mean(kept[i]), color), (i, mean(kept[i]), color)
    if before:
        # The new frames lead into the source's first frame.
        assert near(centre(out.frames[19]), RED) and near(centre(out.frames[0]), RED, 40)
        assert out.frames[0].tobytes() != out.frames[19].tobytes()
        clip_sound = (2.2, 5.8)
    else:
        # The new frames go on from the source's last frame.
        assert near(centre(out.frames[len(SOURCE)]), YELLOW)
        assert near(centre(out.frames[-1]), YELLOW, 40)
        clip_sound = (0.2, 3.8)
    assert abs(out.pitch(*clip_sound) - 440) < 25  # the clip keeps its own sound
    assert out.pcm is not None and len(out.pcm) / 4 / 44100 == pytest.approx(6.0, abs=0.1)


def test_audio_to_video_carries_the_sound_and_draws_its_waveform(files: FileStore) -> None:
    # One second of tone, then one of silence: the waveform is tall on the left half only.
    sound = sine(1.0, 440.0, 0.5) + silence(1.0)
    picture = Image.new("RGB", (160, 90), BLUE)
    buf = io.BytesIO()
    picture.save(buf, "PNG")
    made = audio_to_video({"audio_url": data_uri(wav_bytes(sound), "audio/wav"),
                           "image_url": data_uri(buf.getvalue(), "image/png"),
                           "prompt": "a singer"}, files, 1.0, rng())
    assert made is not None
    out = Decoded.of(made)
    assert len(out.frames) == 50 and out.fps == 25  # follows the sound: 2 s at 25 fps
    assert abs(out.pitch(0.1, 0.9) - 440) < 25 and out.loudness(1.1, 1.9) < 0.02
    assert near(centre(out.frames[0]), BLUE, 40)  # the first-frame image
    frame = out.frames[25]
    w, h = frame.size
    band = [(x, y) for x in range(w) for y in range(h * 3 // 4, h)]
    bright = {x for x, y in band if _green(frame.getpixel((x, y)))}
    tall = {x for x in bright if _green(frame.getpixel((x, h * 3 // 4 + 3)))}
    assert len([x for x in tall if x < w // 2 - 4]) > w // 3  # loud half: tall bars
    assert not [x for x in tall if x > w // 2 + 4]  # silent half: a flat line
    assert _playhead(out.frames[0]) < _playhead(out.frames[25]) < _playhead(out.frames[-1])


def _green(pixel: object) -> bool:
    assert isinstance(pixel, tuple)
    return pixel[1] > 150 and pixel[0] < 150


def _playhead(frame: Image.Image) -> int:
    w, h = frame.size
    y = h - 4
    reds = [x for x in range(w) if _is_red(frame.getpixel((x, y)))]
    assert reds, "no playhead"
    return sum(reds) // len(reds)


def _is_red(pixel: object) -> bool:
    assert isinstance(pixel, tuple)
    return pixel[0] > 150 and pixel[1] < 100


def test_restyle_shows_the_clip_in_a_new_style(files: FileStore, source_url: str) -> None:
    made = restyle({"video_url": source_url, "prompt": "posterized"}, files, 1.0, rng())
    assert made is not None
    out = Decoded.of(made)
    assert len(out.frames) == len(SOURCE) and out.fps == 10
    for i in (5, 15, 25, 35):
        wanted = mean(restyled(Image.new("RGB", (8, 8), SOURCE[i])))
        seen = centre(out.frames[i])
        assert near(seen, wanted), (i, seen, wanted)
        assert distance(seen, SOURCE[i]) > 80  # visibly not the original
    assert abs(out.pitch(0.2, 3.8) - 440) < 25  # the clip's own sound


def test_unreadable_inputs_leave_the_ordinary_render(files: FileStore) -> None:
    remote = {"video_url": "https://example.com/a.mp4", "prompt": "x"}
    assert retake(remote, files, 1.0, rng()) is None
    assert extend(remote, files, 1.0, rng()) is None
    assert restyle(remote, files, 1.0, rng()) is None
    assert audio_to_video({"audio_url": "https://example.com/a.mp3", "prompt": "x"},
                          files, 1.0, rng()) is None
