"""Inputs for the simulator's edit renders, and the decoded facts of what it made."""

from __future__ import annotations

import array
import base64
import io
import itertools
import math
from pathlib import Path

import av
from PIL import Image

from bot.sim import render_sound
from bot.sim.render import AUDIO_RATE, write_mp4
from bot.sim.render_edits import Made

Color = tuple[int, int, int]
RED, GREEN, BLUE, YELLOW = (220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30)


def sine(seconds: float, freq: float, level: float = 0.3) -> bytes:
    total = round(seconds * AUDIO_RATE)
    step = 2 * math.pi * freq / AUDIO_RATE
    return array.array("f", (level * math.sin(step * k) for k in range(total))).tobytes()


def silence(seconds: float) -> bytes:
    return bytes(round(seconds * AUDIO_RATE) * 4)


def clip_bytes(colors: list[Color], fps: int = 10, *, freq: float | None = 440.0,
               size: tuple[int, int] = (96, 64)) -> bytes:
    """An MP4: one solid frame a colour, with a tone of `freq` Hz as long (None: silent)."""
    frames = [Image.new("RGB", size, color) for color in colors]
    return _encoded(frames, fps, sine(len(colors) / fps, freq) if freq else None)


def wav_bytes(pcm: bytes) -> bytes:
    """PCM (mono float32 at AUDIO_RATE) as a 16-bit WAV file."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=AUDIO_RATE, layout="mono")
        frame = av.AudioFrame(format="flt", layout="mono", samples=len(pcm) // 4)
        frame.planes[0].update(pcm.ljust(frame.planes[0].buffer_size, b"\0"))
        frame.sample_rate, frame.pts = AUDIO_RATE, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def _encoded(frames: list[Image.Image], fps: float, pcm: bytes | None) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        write_mp4(frames, fps, path, pcm)
        return path.read_bytes()


class Decoded:
    """A rendered MP4, decoded: its frames, rate and sound."""

    def __init__(self, data: bytes) -> None:
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.video[0]
            self.fps = float(stream.average_rate or 0)
            self.frames = [f.to_image().convert("RGB") for f in container.decode(video=0)]
        self.pcm = render_sound.decode_pcm(data)

    @classmethod
    def of(cls, made: Made) -> Decoded:
        return cls(_encoded(made.frames, made.fps, made.pcm))

    def pitch(self, start: float, end: float) -> float:
        """The tone's frequency between two moments, by counting zero crossings."""
        assert self.pcm is not None
        samples = array.array("f")
        samples.frombytes(self.pcm[round(start * AUDIO_RATE) * 4: round(end * AUDIO_RATE) * 4])
        crossings = sum(1 for a, b in itertools.pairwise(samples)
                        if (a < 0) != (b < 0))
        return crossings / 2 / (end - start)

    def loudness(self, start: float, end: float) -> float:
        assert self.pcm is not None
        samples = array.array("f")
        samples.frombytes(self.pcm[round(start * AUDIO_RATE) * 4: round(end * AUDIO_RATE) * 4])
        return max((abs(v) for v in samples), default=0.0)


def mean(image: Image.Image) -> Color:
    pixel = image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def centre(image: Image.Image) -> Color:
    # The prompt is written at the top left, the waveform across the bottom: judge the middle.
    w, h = image.size
    return mean(image.crop((w // 4, h // 4, 3 * w // 4, 2 * h // 3)))


def near(seen: Color, wanted: Color, tolerance: int = 30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, wanted, strict=True))


def distance(a: Color, b: Color) -> int:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))
