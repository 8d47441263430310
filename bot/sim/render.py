"""Real, small, deterministic videos for the simulator.

A job renders one of three things, so that a user can see what each input does:

- with anchors (frames that must show a given picture: keyframes at their
  `start_frame_num`, a start and an end image, the frames of a video to extend),
  each anchor frame shows its picture, frames between two anchors cross-fade from
  one to the next, frames before the first hold it, and frames after the last
  continue from it (a slow zoom with the prompt written on);
- with one input image, a slow pan and zoom over it;
- with nothing readable, a procedural scene with the prompt written on it.

Output is H.264 in MP4 with exactly the requested frame count and frame rate,
plus an AAC tone when the model makes audio. Everything here is synchronous and
CPU-bound: the server runs it in a thread.
"""

from __future__ import annotations

import array
import colorsys
import functools
import io
import logging
import math
import random
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.audio.stream import AudioStream
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

_fonts = threading.local()

AUDIO_RATE = 44100
# PyAV ships this one without annotations.
_frame_from_image = cast(Callable[[Image.Image], av.VideoFrame], av.VideoFrame.from_image)
MIN_SIDE = 64


@dataclass(frozen=True)
class RenderSpec:
    """What one simulated video shows: its size, length, seed, prompt and source picture."""

    width: int
    height: int
    frames: int
    fps: float
    seed: int
    prompt: str
    audio: bool = False
    source: Image.Image | None = None  # RGB; None = procedural scene
    reverse: bool = False
    # Output frame -> the picture it shows (RGB, any size); rules over `source`.
    anchors: tuple[tuple[int, Image.Image], ...] = ()


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """`scale` of the requested size, even (H.264 4:2:0 needs it), at least MIN_SIDE a side."""

    def side(value: int) -> int:
        target = max(MIN_SIDE, round(value * scale))
        return target + (target % 2)

    return side(width), side(height)


def load_picture(data: bytes) -> Image.Image | None:
    """An image, or the first frame of a video, from raw bytes; None if neither."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.convert("RGB")
    except Exception:
        # Pillow raises many kinds for non-images; a video is tried next.
        log.debug("input is not an image", exc_info=True)
    try:
        with av.open(io.BytesIO(data), "r") as container:
            for frame in container.decode(video=0):
                to_image = cast(Callable[[], Image.Image], frame.to_image)
                return to_image().convert("RGB")
    except Exception:
        # Not a video either: the job renders a procedural scene instead, as documented.
        log.debug("input is neither an image nor a video", exc_info=True)
    return None


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` filling width x height: the largest centred crop of its shape, resized."""
    sw, sh = image.size
    if sw * height > sh * width:
        cw, ch = sh * width / height, float(sh)
    else:
        cw, ch = float(sw), sw * height / width
    box = ((sw - cw) / 2, (sh - ch) / 2, (sw + cw) / 2, (sh + ch) / 2)
    return image.resize((width, height), Image.Resampling.BILINEAR, box=box)


def load_frames(data: bytes, skip: int, limit: int, size: tuple[int, int]) -> list[Image.Image]:
    """Up to `limit` frames of a video from its frame `skip` on, each covering `size` (RGB,
    made small at once: a long clip at full size would not fit in memory); [] if no video."""
    out: list[Image.Image] = []
    if limit <= 0:
        return out
    try:
        with av.open(io.BytesIO(data), "r") as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index < skip:
                    continue
                to_image = cast(Callable[[], Image.Image], frame.to_image)
                out.append(cover(to_image().convert("RGB"), *size))
                if len(out) >= limit:
                    break
    except Exception:
        # Not a video: the job goes on with whatever else it has, as documented.
        log.debug("input is not a video", exc_info=True)
    return out


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def pan_zoom_frames(spec: RenderSpec, rng: random.Random) -> list[Image.Image]:
    assert spec.source is not None
    src = spec.source
    # Pre-shrink a big upload: the crops below only need about twice the output size.
    limit = max(spec.width, spec.height) * 2
    if max(src.size) > limit:
        src = src.copy()
        src.thumbnail((limit, limit))
    sw, sh = src.size
    target_aspect = spec.width / spec.height
    # The largest crop of the source with the output's aspect ratio.
    if sw / sh > target_aspect:
        base_h = float(sh)
        base_w = base_h * target_aspect
    else:
        base_w = float(sw)
        base_h = base_w / target_aspect
    zoom_in = rng.random() < 0.5
    direction = rng.choice((-1.0, 1.0))
    out: list[Image.Image] = []
    n = max(1, spec.frames - 1)
    for i in range(spec.frames):
        t = i / n
        zoom = 1.0 + 0.3 * (t if zoom_in else 1.0 - t)
        cw, ch = base_w / zoom, base_h / zoom
        spare_x, spare_y = sw - cw, sh - ch
        cx = spare_x / 2 + direction * (t - 0.5) * spare_x * 0.9
        cy = spare_y / 2
        box = (cx, cy, cx + cw, cy + ch)
        out.append(src.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box))
    return out


def continued(last: Image.Image, step: int, steps: int, prompt: str) -> Image.Image:
    """Frame `step` of `steps` after the last anchor: a slow zoom on it, the prompt on top."""
    w, h = last.size
    zoom = 1.0 + 0.25 * step / max(1, steps)
    cw, ch = w / zoom, h / zoom
    frame = last.resize((w, h), Image.Resampling.BILINEAR,
                        box=((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2))
    write_prompt(frame, prompt)
    return frame


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font, loaded once per render thread: loading it parses a FreeType
    font (about 1 ms), and doing that for every frame held the GIL long enough to delay
    the simulator's own event loop (bench/queue.py's detection p50 went 20 -> 62 ms).
    One per thread, because a FreeType face must not be used by two threads at once."""
    font = getattr(_fonts, "font", None)
    if font is None:
        font = _fonts.font = ImageFont.load_default()
    return cast(ImageFont.FreeTypeFont | ImageFont.ImageFont, font)


@functools.lru_cache(maxsize=64)
def _prompt_lines(prompt: str, width: int) -> tuple[str, ...]:
    words = " ".join(prompt.split())[:160]
    return tuple(textwrap.wrap(words, width=max(8, width // 7))[:4])


def write_prompt(frame: Image.Image, prompt: str) -> None:
    lines = _prompt_lines(prompt, frame.width)
    draw = ImageDraw.Draw(frame)
    font = _font()
    for row, line in enumerate(lines):
        draw.text((4, 4 + row * 12), line, fill=(255, 255, 255), font=font)


def _anchored_frames(spec: RenderSpec) -> list[Image.Image]:
    """The timeline through every anchor (see the module's text)."""
    w, h = spec.width, spec.height
    last_frame = spec.frames - 1
    anchors: dict[int, Image.Image] = {}
    for index, picture in spec.anchors:
        anchors[min(max(0, index), last_frame)] = cover(picture, w, h)
    marks = sorted(anchors)
    out: list[Image.Image] = []
    for i in range(spec.frames):
        if i in anchors:
            out.append(anchors[i])
        elif i < marks[0]:
            out.append(anchors[marks[0]])
        elif i > marks[-1]:
            out.append(continued(anchors[marks[-1]], i - marks[-1], last_frame - marks[-1],
                                  spec.prompt))
        else:
            before = max(m for m in marks if m < i)
            after = min(m for m in marks if m > i)
            mix = (i - before) / (after - before)
            out.append(Image.blend(anchors[before], anchors[after], mix))
    return out


def procedural_frames(spec: RenderSpec, rng: random.Random) -> list[Image.Image]:
    w, h = spec.width, spec.height
    hue = rng.random()
    top = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.6, 0.5))
    bottom = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((hue + 0.35) % 1, 0.7, 0.25))
    background = Image.new("RGB", (w, h))
    paint = ImageDraw.Draw(background)
    for y in range(h):
        mix = y / max(1, h - 1)
        paint.line(
            [(0, y), (w, y)],
            fill=tuple(int(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True)),
        )
    font = _font()
    blobs = [
        (rng.random(), rng.random(), rng.uniform(0.5, 2.0), rng.uniform(0.06, 0.16),
         tuple(int(c * 255) for c in colorsys.hsv_to_rgb(rng.random(), 0.8, 0.95)))
        for _ in range(3)
    ]
    out: list[Image.Image] = []
    n = max(1, spec.frames)
    for i in range(spec.frames):
        t = i / n
        frame = background.copy()
        draw = ImageDraw.Draw(frame)
        for bx, by, speed, radius, color in blobs:
            angle = 2 * math.pi * (t * speed + bx)
            px = w * (0.5 + 0.35 * math.cos(angle))
            py = h * (0.5 + 0.3 * math.sin(angle + by * math.pi))
            r = radius * min(w, h)
            draw.ellipse((px - r, py - r, px + r, py + r), fill=color)
        write_prompt(frame, spec.prompt)
        draw.text((4, h - 14), f"{i + 1}/{spec.frames}", fill=(255, 255, 0), font=font)
        out.append(frame)
    return out


def tone_pcm(seconds: float, rng: random.Random) -> bytes:
    """A quiet sine (one of a few notes, by `rng`) as mono float32 PCM at AUDIO_RATE."""
    freq = rng.choice((220.0, 277.18, 329.63, 440.0, 554.37))
    total = round(seconds * AUDIO_RATE)
    step = 2 * math.pi * freq / AUDIO_RATE
    return array.array("f", (0.2 * math.sin(step * k) for k in range(total))).tobytes()


def render_video(spec: RenderSpec, dest: Path) -> None:
    """Write an MP4 of exactly `spec.frames` frames at `spec.fps` to `dest`."""
    rng = random.Random(spec.seed)
    if spec.anchors:
        frames = _anchored_frames(spec)
    elif spec.source is not None:
        frames = pan_zoom_frames(spec, rng)
    else:
        frames = procedural_frames(spec, rng)
    if spec.reverse:
        frames.reverse()
    pcm = tone_pcm(spec.frames / spec.fps, rng) if spec.audio else None
    write_mp4(frames, spec.fps, dest, pcm)


def write_mp4(frames: list[Image.Image], fps: float, dest: Path, pcm: bytes | None) -> None:
    """H.264 frames at `fps`, with `pcm` (mono float32 at AUDIO_RATE) as an AAC track if any."""
    rate = _fps_fraction(fps)
    width, height = frames[0].size
    with av.open(str(dest), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        # One thread keeps output byte-identical for a seed and many jobs cheap in parallel.
        video.options = {"preset": "ultrafast", "crf": "28", "threads": "1"}
        video.codec_context.time_base = 1 / rate
        audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if pcm else None
        for index, image in enumerate(frames):
            frame = _frame_from_image(image)
            frame.pts = index
            frame.time_base = 1 / rate
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None and pcm:
            _encode_pcm(container, audio, pcm)


def _encode_pcm(container: av.container.OutputContainer, audio: AudioStream,
                pcm: bytes) -> None:
    chunk_bytes = 1024 * 4  # AAC's frame size, float32 samples
    position = 0
    for start in range(0, len(pcm), chunk_bytes):
        chunk = pcm[start:start + chunk_bytes]
        count = len(chunk) // 4
        sound = av.AudioFrame(format="fltp", layout="mono", samples=count)
        plane = sound.planes[0]
        plane.update(chunk.ljust(plane.buffer_size, b"\0"))
        sound.sample_rate = AUDIO_RATE
        sound.pts = position
        sound.time_base = Fraction(1, AUDIO_RATE)
        position += count
        for packet in audio.encode(sound):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)
