"""Real, small, deterministic videos for the simulator.

A job renders either a slow pan and zoom over its input image (so an
image-to-video test can see its own picture move) or a procedural scene with
the prompt written on it. Output is H.264 in MP4 with exactly the requested
frame count and frame rate, plus an AAC tone when the model makes audio.
Everything here is synchronous and CPU-bound: the server runs it in a thread.
"""

from __future__ import annotations

import array
import colorsys
import io
import logging
import math
import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

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


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def _pan_zoom_frames(spec: RenderSpec, rng: random.Random) -> list[Image.Image]:
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


def _procedural_frames(spec: RenderSpec, rng: random.Random) -> list[Image.Image]:
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
    font = ImageFont.load_default()
    words = " ".join(spec.prompt.split())[:160]
    lines = textwrap.wrap(words, width=max(8, w // 7))[:4]
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
        for row, line in enumerate(lines):
            draw.text((4, 4 + row * 12), line, fill=(255, 255, 255), font=font)
        draw.text((4, h - 14), f"{i + 1}/{spec.frames}", fill=(255, 255, 0), font=font)
        out.append(frame)
    return out


def _tone(spec: RenderSpec, rng: random.Random) -> list[bytes]:
    """Mono float32 PCM in 1024-sample chunks (AAC's frame size), as long as the video."""
    freq = rng.choice((220.0, 277.18, 329.63, 440.0, 554.37))
    total = round(spec.frames / spec.fps * AUDIO_RATE)
    step = 2 * math.pi * freq / AUDIO_RATE
    chunks: list[bytes] = []
    for start in range(0, total, 1024):
        count = min(1024, total - start)
        samples = array.array("f", (0.2 * math.sin(step * (start + k)) for k in range(count)))
        chunks.append(samples.tobytes())
    return chunks


def render_video(spec: RenderSpec, dest: Path) -> None:
    """Write an MP4 of exactly `spec.frames` frames at `spec.fps` to `dest`."""
    rng = random.Random(spec.seed)
    frames = _pan_zoom_frames(spec, rng) if spec.source is not None else _procedural_frames(spec, rng)
    if spec.reverse:
        frames.reverse()
    rate = _fps_fraction(spec.fps)
    with av.open(str(dest), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height = spec.width, spec.height
        video.pix_fmt = "yuv420p"
        # One thread keeps output byte-identical for a seed and many jobs cheap in parallel.
        video.options = {"preset": "ultrafast", "crf": "28", "threads": "1"}
        video.codec_context.time_base = 1 / rate
        audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if spec.audio else None
        for index, image in enumerate(frames):
            frame = _frame_from_image(image)
            frame.pts = index
            frame.time_base = 1 / rate
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            position = 0
            for chunk in _tone(spec, rng):
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
