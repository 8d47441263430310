"""Test media made on the spot with Pillow and PyAV (nothing is committed)."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, cast

import av
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image, ImageChops

Color = tuple[int, int, int]


def image_bytes(fmt: str, size: tuple[int, int] = (96, 64), color: Color = (200, 30, 30),
                **save: Any) -> bytes:
    img = Image.new("RGB", size, color)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def animated_gif(first: Color, second: Color, size: tuple[int, int] = (40, 30)) -> bytes:
    frames = [Image.new("RGB", size, first), Image.new("RGB", size, second)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def exif_rotated_jpeg() -> bytes:
    """64x32 as stored (left half red, right half blue) with Orientation=6: shown upright it
    is 32x64 with red on top."""
    img = Image.new("RGB", (64, 32), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 20000) -> bytes:
    """A 1-bit `side`x`side` PNG of zeros: a few dozen KB that would decode to
    side^2 pixels (400 megapixels by default)."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(comp.compress(row * (side % 1000)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "not an image")
    return buf.getvalue()


def _tone(samples: int, start: int, rate: int) -> bytes:
    return struct.pack(f"<{samples}f", *(0.2 * math.sin(2 * math.pi * 440 * (start + n) / rate)
                                         for n in range(samples)))


def _add_audio(out: av.container.OutputContainer, codec: str, rate: int) -> AudioStream:
    stream = cast(AudioStream, out.add_stream(codec, rate=rate))
    stream.layout = "stereo"
    stream.bit_rate = 128_000
    return stream


class AudioFeed:
    """A 440 Hz tone fed to an encoder in its own frame size and sample format
    (AAC: 1024 fltp; Opus: 960 s16), through a resampler that re-chunks."""

    def __init__(self, out: av.container.OutputContainer, stream: AudioStream,
                 rate: int) -> None:
        self.out, self.stream, self.rate, self.sample = out, stream, rate, 0
        ctx = stream.codec_context
        self.resampler = AudioResampler(format=ctx.format.name, layout="stereo", rate=rate,
                                        frame_size=ctx.frame_size or None)

    def until(self, sample: int) -> None:
        while self.sample < sample:
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
            data = _tone(1024, self.sample, self.rate)
            for plane in frame.planes:
                plane.update(data)
            frame.sample_rate, frame.pts = self.rate, self.sample
            self.sample += 1024
            for chunk in self.resampler.resample(frame):
                self.out.mux(self.stream.encode(chunk))

    def close(self) -> None:
        for chunk in self.resampler.resample(None):
            self.out.mux(self.stream.encode(chunk))
        self.out.mux(self.stream.encode(None))


def frame_color(i: int, frames: int) -> Color:
    """A colour per frame index, far enough apart to tell neighbouring frames' colours."""
    level = 16 + round(223 * i / max(1, frames - 1))
    return (level, 255 - level, 128)


def make_video(path: Path, fmt: str = "mp4", *, size: tuple[int, int] = (96, 64), frames: int = 24,
               fps: int = 24, audio: bool = True, gop: int = 8) -> Path:
    """Solid colour frames (`frame_color`) with a tone: cheap to make, easy to check."""
    video_codec, audio_codec, audio_rate = {
        "mp4": ("libx264", "aac", 48000),
        "mov": ("libx264", "aac", 48000),
        "webm": ("libvpx", "libopus", 48000),
    }[fmt]
    with av.open(str(path), "w", format={"mp4": "mp4", "mov": "mov", "webm": "webm"}[fmt]) as out:
        vs = cast(VideoStream, out.add_stream(video_codec, rate=fps))
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.gop_size = gop
        if video_codec == "libx264":
            vs.options = {"preset": "ultrafast", "bf": "2"}
        feed = AudioFeed(out, _add_audio(out, audio_codec, audio_rate), audio_rate) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_image(  # type: ignore[no-untyped-call]
                Image.new("RGB", size, frame_color(i, frames)))
            frame.pts = i
            out.mux(vs.encode(frame))
            if feed is not None:
                feed.until((i + 1) * audio_rate // fps)
        out.mux(vs.encode(None))
        if feed is not None:
            feed.close()
    return path


def make_noise_clip(path: Path, *, frames: int = 72, size: tuple[int, int] = (640, 360),
                    fps: int = 24) -> Path:
    """Lossless random noise with an AAC track: ~40 MB in about a second, and the hardest
    thing there is to fit under a limit."""
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.options = {"preset": "ultrafast", "qp": "0"}
        feed = AudioFeed(out, _add_audio(out, "aac", 48000), 48000)
        for i in range(frames):
            frame = av.VideoFrame(size[0], size[1], "yuv420p")
            for plane in frame.planes:
                plane.update(os.urandom(plane.buffer_size))
            frame.pts = i
            out.mux(vs.encode(frame))
            feed.until((i + 1) * 48000 // fps)
        out.mux(vs.encode(None))
        feed.close()
    return path


def make_smooth_clip(path: Path, *, frames: int = 48, size: tuple[int, int] = (640, 360),
                     fps: int = 24, crf: int = 4, audio: bool = True) -> Path:
    """Moving gradients at near-lossless quality: big, but easy to squeeze (scale-down path)."""
    gradient = Image.linear_gradient("L").resize(size)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": str(crf)}
        feed = AudioFeed(out, _add_audio(out, "aac", 48000), 48000) if audio else None
        for i in range(frames):
            red = ImageChops.offset(gradient, i * 6, 0)
            blue = ImageChops.offset(gradient, 0, i * 4)
            img = Image.merge("RGB", (red, gradient, blue))
            frame = av.VideoFrame.from_image(  # type: ignore[no-untyped-call]
                img)
            frame.pts = i
            out.mux(vs.encode(frame))
            if feed is not None:
                feed.until((i + 1) * 48000 // fps)
        out.mux(vs.encode(None))
        if feed is not None:
            feed.close()
    return path


def decode_counts(path: Path) -> tuple[int, int]:
    """(video frames, audio samples) that actually decode."""
    video = samples = 0
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                video += 1
            elif isinstance(frame, av.AudioFrame):
                samples += frame.samples
    return video, samples
