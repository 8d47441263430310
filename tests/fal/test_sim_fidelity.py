"""What the simulator draws follows its inputs, so a user can see what `--at` and
`--from` do: keyframes appear at their frames, an end image at the end, and an
extension starts with the source clip's frames and goes on from its last one.

Checked on the decoded MP4 (H.264 is lossy: colours are compared with a tolerance).
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import httpx
from PIL import Image

from bot.fal import FalClient
from bot.sim import Simulator
from tests.fal.helpers import download, follow

RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30)
Color = tuple[int, int, int]


def _frames(data: bytes) -> list[Image.Image]:
    with av.open(io.BytesIO(data), "r") as container:
        return [frame.to_image().convert("RGB") for frame in container.decode(video=0)]


def _mean(image: Image.Image) -> Color:
    pixel = image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def _near(seen: Color, wanted: Color, tolerance: int = 30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, wanted, strict=True))


def _centre(image: Image.Image) -> Color:
    # The prompt is written at the top left of drawn frames: judge the middle.
    w, h = image.size
    return _mean(image.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)))


async def _png(fal: FalClient, tmp_path: Path, color: Color) -> str:
    path = tmp_path / f"{color[0]}-{color[1]}-{color[2]}.png"
    Image.new("RGB", (160, 90), color).save(path)
    return await fal.upload(path, content_type="image/png", filename=path.name)


async def _result_frames(fal: FalClient, http: httpx.AsyncClient, endpoint: str,
                         payload: dict[str, object]) -> list[Image.Image]:
    handle = await fal.enqueue(endpoint, payload)
    await follow(fal, handle)
    return _frames(await download(http, (await fal.result(handle))["video"]["url"]))


async def test_keyframes_appear_at_their_frames(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    colors = (RED, GREEN, BLUE)
    urls = [await _png(fal, tmp_path, color) for color in colors]
    at = (0, 16, 32)
    frames = await _result_frames(fal, http, "fal-ai/ltx-video-13b-distilled/multiconditioning", {
        "prompt": "three keys", "number_of_frames": 41, "frame_rate": 10,
        "images": [{"image_url": u, "start_frame_num": n} for u, n in zip(urls, at, strict=True)],
    })
    assert len(frames) == 41
    for frame, color in zip(at, colors, strict=True):
        assert _near(_mean(frames[frame]), color), (frame, _mean(frames[frame]), color)
    # Between two keyframes the picture moves from one to the next.
    middle = _mean(frames[8])
    assert _near(middle, tuple((a + b) // 2 for a, b in zip(RED, GREEN, strict=True)), 40), middle
    # After the last keyframe the video goes on from it.
    assert _near(_centre(frames[-1]), BLUE, 40), _centre(frames[-1])


async def test_the_end_image_is_the_last_frame(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    start, end = await _png(fal, tmp_path, YELLOW), await _png(fal, tmp_path, BLUE)
    frames = await _result_frames(fal, http, "fal-ai/ltx-2-19b/image-to-video", {
        "prompt": "sunset", "image_url": start, "end_image_url": end, "num_frames": 17,
        "generate_audio": False,
    })
    assert _near(_mean(frames[0]), YELLOW) and _near(_mean(frames[-1]), BLUE), (
        _mean(frames[0]), _mean(frames[-1]))


def _clip(path: Path, colors: list[Color], fps: int = 10) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for color in colors:
            for packet in stream.encode(av.VideoFrame.from_image(Image.new("RGB", (96, 64), color))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


async def test_extend_starts_with_the_source_and_goes_on_from_its_last_frame(
    fal: FalClient, sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Ten frames that step through four colours, each easy to tell apart.
    source = [RED] * 3 + [GREEN] * 3 + [BLUE] * 2 + [YELLOW] * 2
    clip = _clip(tmp_path / "source.mp4", source)
    url = await fal.upload(clip, content_type="video/mp4", filename="source.mp4")
    frames = await _result_frames(fal, http, "fal-ai/ltx-video-v097/extend",
                                  {"prompt": "and then", "video": {"video_url": url}})
    for index, color in enumerate(source):
        assert _near(_mean(frames[index]), color), (index, _mean(frames[index]), color)
    # The new frames continue from the source's last frame, with the prompt drawn on.
    assert _near(_centre(frames[len(source)]), YELLOW) and _near(_centre(frames[-1]), YELLOW)
    assert frames[-1].tobytes() != frames[len(source) - 1].tobytes()

    # --from 6: the extension starts at the source's frame 6.
    later = await _result_frames(fal, http, "fal-ai/ltx-video-v097/extend",
                                 {"prompt": "later", "video": {"video_url": url, "start_frame_num": 6}})
    assert _near(_mean(later[0]), BLUE) and _near(_mean(later[2]), YELLOW), (
        _mean(later[0]), _mean(later[2]))
