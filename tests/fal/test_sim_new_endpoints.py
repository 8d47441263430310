"""The simulator validates every LTX-2.3 / LTX-2 19B / LTX-2.3 22B endpoint as fal does
(the same 422 shapes) and answers with the output fields of the specs: a playable video
of the requested length, plus `seed` and `prompt` only where fal sends them."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bot import catalog
from bot.catalog import VideoOnlyOutput
from bot.fal import FalClient
from bot.sim import Simulator
from bot.sim.options import SimOptions
from tests.fal.conftest import fast_options
from tests.fal.helpers import download, follow, probe

NEW = [e for e in catalog.ENDPOINTS if e.license == "unconfirmed"]


@pytest.fixture
def sim_options() -> SimOptions:
    # Small pictures: these tests are about fields, lengths and validation, not the drawing.
    return fast_options(scale=0.1)


def _tone(path: Path, seconds: float) -> Path:
    rate = 8000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = bytearray()
        for i in range(int(seconds * rate)):
            value = int(8000 * math.sin(2 * math.pi * 440 * i / rate))
            samples += value.to_bytes(2, "little", signed=True)
        out.writeframes(bytes(samples))
    return path


async def _inputs(fal: FalClient, http: httpx.AsyncClient, tmp_path: Path,
                  endpoint: catalog.Endpoint) -> dict[str, str]:
    """An uploaded picture, clip or audio file for each URL field the endpoint has."""
    fields, urls = endpoint.input_model.model_fields, {}
    if "image_url" in fields:
        picture = tmp_path / "p.png"
        Image.new("RGB", (160, 90), (200, 40, 40)).save(picture)
        urls["image_url"] = await fal.upload(picture, content_type="image/png", filename="p.png")
    if "video_url" in fields:
        handle = await fal.enqueue("fal-ai/ltx-video-13b-distilled/multiconditioning",
                                   {"prompt": "a clip", "number_of_frames": 49, "frame_rate": 24})
        await follow(fal, handle)
        clip = tmp_path / "c.mp4"
        clip.write_bytes(await download(http, (await fal.result(handle))["video"]["url"]))
        urls["video_url"] = await fal.upload(clip, content_type="video/mp4", filename="c.mp4")
    if "audio_url" in fields:
        tone = _tone(tmp_path / "t.wav", 3.0)
        urls["audio_url"] = await fal.upload(tone, content_type="audio/wav", filename="t.wav")
    return urls


def _minimal(endpoint: catalog.Endpoint, urls: dict[str, str]) -> dict[str, object]:
    fields = endpoint.input_model.model_fields
    payload: dict[str, object] = {"prompt": "a red fox"} if "prompt" in fields else {}
    for name in ("image_url", "video_url", "audio_url"):
        if name in fields and fields[name].is_required():
            payload[name] = urls[name]
    if "num_frames" in fields:
        payload["num_frames"] = 25  # short: rendering every endpoint stays quick
    return payload


@pytest.mark.parametrize("endpoint", NEW, ids=lambda e: e.key)
async def test_every_new_endpoint_completes_with_its_output_fields(
    endpoint: catalog.Endpoint, fal: FalClient, sim: Simulator, http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    urls = await _inputs(fal, http, tmp_path, endpoint)
    handle = await fal.enqueue(endpoint.endpoint_id, _minimal(endpoint, urls))
    await follow(fal, handle)
    result = await fal.result(handle)
    endpoint.output_model.model_validate(result)
    if issubclass(endpoint.output_model, VideoOnlyOutput):
        assert set(result) == {"video"}
    else:
        assert {"video", "seed", "prompt"} <= set(result)
    video = result["video"]
    facts = probe(await download(http, video["url"]))
    assert facts.frames == video["num_frames"]
    assert video["duration"] == pytest.approx(video["num_frames"] / video["fps"], abs=0.01)
    if endpoint.duration is not None and "video_url" in urls:
        # Extend returns the whole clip: the 49-frame 24 fps source, then the added seconds.
        assert video["duration"] == pytest.approx(49 / 24 + endpoint.duration.default, abs=0.05)
    elif endpoint.duration is not None:
        assert video["duration"] == pytest.approx(endpoint.duration.default, abs=0.05)
    if endpoint.audio_seconds is not None:  # the clip follows its (3 s) audio
        assert video["duration"] == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    ("endpoint_id", "payload", "loc", "kind"),
    [
        ("fal-ai/ltx-2.3/text-to-video", {"prompt": "x", "duration": 7}, ["body", "duration"],
         "literal_error"),
        ("fal-ai/ltx-2.3/text-to-video", {"prompt": "x", "resolution": "720p"},
         ["body", "resolution"], "literal_error"),
        ("fal-ai/ltx-2.3/retake-video", {"video_url": "https://x/c.mp4", "prompt": "x",
                                         "duration": 1}, ["body", "duration"],
         "greater_than_equal"),
        ("fal-ai/ltx-2.3/extend-video", {"video_url": "https://x/c.mp4", "mode": "middle"},
         ["body", "mode"], "literal_error"),
        ("fal-ai/ltx-2-19b/video-to-video", {"prompt": "x"}, ["body", "video_url"], "missing"),
        ("fal-ai/ltx-2.3-22b/text-to-video", {"prompt": "x", "num_frames": 500},
         ["body", "num_frames"], "less_than_equal"),
        ("fal-ai/ltx-2.3/text-to-video/fast", {"prompt": "x", "duration": 14, "fps": 24},
         ["body"], "value_error"),
        ("fal-ai/ltx-2.3/audio-to-video", {"audio_url": "https://x/a.mp3"}, ["body"],
         "value_error"),
    ],
)
async def test_bad_inputs_get_fals_422(
    endpoint_id: str, payload: dict[str, object], loc: list[str], kind: str,
    sim: Simulator, http: httpx.AsyncClient,
) -> None:
    response = await http.post(f"{sim.url}/{endpoint_id}", json=payload)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(d["loc"], d["type"]) for d in detail] == [(loc, kind)]
    assert all(isinstance(d["msg"], str) and d["msg"] for d in detail)


async def test_fast_runs_long_clips_at_25_fps_and_1080p(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient,
) -> None:
    handle = await fal.enqueue("fal-ai/ltx-2.3/text-to-video/fast",
                               {"prompt": "x", "duration": 12, "fps": 25, "resolution": "1080p"})
    await follow(fal, handle)
    video = (await fal.result(handle))["video"]
    assert (video["num_frames"], video["fps"]) == (300, 25)
