"""The official fal-client completes one job on each new endpoint against the simulator,
and what comes back shows what the job did (a retake's section redone, an extension's
added frames, an audio-to-video's sound, a restyle's new colours).

Inputs are uploaded with the bot's own client (fal-client uploads to fal's CDN only);
everything after that is fal-client's: submit, status, result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fal_client
import fal_client.client
import httpx
import pytest
from PIL import Image

from bot import catalog
from bot.fal import FalClient
from bot.sim import Simulator
from tests.fal.conftest import KEY
from tests.fal.helpers import download
from tests.sim.media import (
    BLUE,
    GREEN,
    RED,
    YELLOW,
    Decoded,
    centre,
    clip_bytes,
    distance,
    mean,
    near,
    sine,
    wav_bytes,
)

NEW = [e for e in catalog.ENDPOINTS if e.license == "unconfirmed"]
SOURCE = [RED] * 10 + [GREEN] * 10 + [BLUE] * 10 + [YELLOW] * 10  # 4 s at 10 fps


@pytest.fixture
def official(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> fal_client.AsyncClient:
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{sim.url}/")
    return fal_client.AsyncClient(key=KEY)


async def _uploads(fal: FalClient, tmp_path: Path) -> dict[str, str]:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(clip_bytes(SOURCE))
    sound = tmp_path / "voice.wav"
    sound.write_bytes(wav_bytes(sine(3.0, 440.0)))
    picture = tmp_path / "first.png"
    Image.new("RGB", (160, 90), BLUE).save(picture)
    return {
        "video_url": await fal.upload(clip, content_type="video/mp4", filename="clip.mp4"),
        "audio_url": await fal.upload(sound, content_type="audio/wav", filename="voice.wav"),
        "image_url": await fal.upload(picture, content_type="image/png", filename="first.png"),
    }


def _arguments(endpoint: catalog.Endpoint, urls: dict[str, str]) -> dict[str, Any]:
    fields = endpoint.input_model.model_fields
    arguments: dict[str, Any] = {"prompt": "a red fox"} if "prompt" in fields else {}
    for name, url in urls.items():
        if name in fields and fields[name].is_required():
            arguments[name] = url
    if "num_frames" in fields and "video_url" not in arguments and "audio_url" not in arguments:
        arguments["num_frames"] = 25  # short: rendering every endpoint stays quick
    if "num_frames" in fields and "extend_direction" in fields:
        arguments["num_frames"] = 20
    return arguments


@pytest.mark.parametrize("endpoint", NEW, ids=lambda e: e.key)
async def test_official_client_completes_a_job(
    endpoint: catalog.Endpoint, official: fal_client.AsyncClient, fal: FalClient,
    sim: Simulator, http: httpx.AsyncClient, tmp_path: Path,
) -> None:
    urls = await _uploads(fal, tmp_path)
    result = await official.subscribe(endpoint.endpoint_id,
                                      arguments=_arguments(endpoint, urls), interval=0.02)
    endpoint.output_model.model_validate(result)
    out = Decoded(await download(http, result["video"]["url"]))
    assert len(out.frames) == result["video"]["num_frames"]
    name = endpoint.endpoint_id.rsplit("/", 1)[-1]
    if name == "retake-video":  # default section: 0 to 5 s, clamped to the 4 s clip
        assert all(distance(mean(f), c) > 80 for f, c in zip(out.frames, SOURCE, strict=True))
    elif name == "extend-video":  # the clip, then frames that go on from its last one
        assert near(mean(out.frames[5]), RED) and near(centre(out.frames[-1]), YELLOW, 40)
        assert len(out.frames) > len(SOURCE)
    elif name == "audio-to-video":  # as long as the 3 s of sound, which it carries
        assert result["video"]["duration"] == pytest.approx(3.0, abs=0.1)
        assert abs(out.pitch(0.2, 2.8) - 440) < 25
    elif name == "video-to-video":  # the clip's timing, in new colours
        assert len(out.frames) == len(SOURCE)
        assert distance(centre(out.frames[5]), RED) > 80
