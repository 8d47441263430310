"""Sound for the simulator's edits: input tracks decoded to one PCM form, spliced, and
drawn as a waveform.

All PCM here is mono float32 at `render.AUDIO_RATE` (`bytes`, 4 bytes a sample), the
form `render.write_mp4` encodes.
"""

from __future__ import annotations

import array
import io
import logging
import math

import av
from av.audio.resampler import AudioResampler
from PIL import Image, ImageDraw

from bot.sim.render import AUDIO_RATE

log = logging.getLogger(__name__)
SAMPLE = 4  # bytes of one float32 sample
_MAX_SECONDS = 60.0  # no input the simulator takes is longer; a hostile one stops here


def decode_pcm(data: bytes) -> bytes | None:
    """The first sound track of a media file as mono float32 PCM at AUDIO_RATE; None when
    it has none (or is not media)."""
    out = bytearray()
    limit = int(_MAX_SECONDS * AUDIO_RATE) * SAMPLE
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.audio:
                return None
            resampler = AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            for frame in container.decode(audio=0):
                for chunk in resampler.resample(frame):
                    out += bytes(chunk.planes[0])[: chunk.samples * SAMPLE]
                if len(out) >= limit:
                    break
            for chunk in resampler.resample(None):
                out += bytes(chunk.planes[0])[: chunk.samples * SAMPLE]
    except Exception:
        # Unreadable sound: the job goes on without it, as a model would ignore it.
        log.debug("input has no readable sound", exc_info=True)
        return None
    return bytes(out[:limit]) or None


def seconds_of(pcm: bytes) -> float:
    return len(pcm) / SAMPLE / AUDIO_RATE


def fitted(pcm: bytes | None, seconds: float) -> bytes:
    """`pcm` cut or padded with silence to `seconds`."""
    size = round(seconds * AUDIO_RATE) * SAMPLE
    return (pcm or b"")[:size].ljust(size, b"\0")


def tone(seconds: float, freq: float, level: float = 0.3) -> bytes:
    """A sine of `freq` Hz, faded in and out over 10 ms so splices do not click."""
    total = round(seconds * AUDIO_RATE)
    fade = max(1, min(total // 2, AUDIO_RATE // 100))
    step = 2 * math.pi * freq / AUDIO_RATE
    return array.array("f", (
        level * min(1.0, k / fade, (total - k) / fade) * math.sin(step * k) for k in range(total)
    )).tobytes()


def splice(base: bytes, start: float, piece: bytes) -> bytes:
    """`base` with the samples from `start` seconds on replaced by `piece` (no longer)."""
    at = min(len(base), round(start * AUDIO_RATE) * SAMPLE)
    piece = piece[: len(base) - at]
    return base[:at] + piece + base[at + len(piece):]


def peaks(pcm: bytes, columns: int) -> list[float]:
    """The loudest sample in each of `columns` equal slices of `pcm`, over the loudest of all
    (0..1: a quiet recording still fills the band, as in any audio editor)."""
    samples = array.array("f")
    samples.frombytes(pcm[: len(pcm) // SAMPLE * SAMPLE])
    if not samples or columns <= 0:
        return [0.0] * max(0, columns)
    out: list[float] = []
    for col in range(columns):
        lo = col * len(samples) // columns
        hi = max(lo + 1, (col + 1) * len(samples) // columns)
        out.append(max(abs(v) for v in samples[lo:hi]))
    loudest = max(out)
    return [level / loudest for level in out] if loudest > 0 else out


def draw_waveform(frame: Image.Image, levels: list[float], played: float) -> None:
    """The waveform across the bottom quarter of `frame` (bright bars, one a column, as tall
    as the sound is loud) on a dark band, with a red playhead at the `played` share."""
    w, h = frame.size
    top = h * 3 // 4
    middle = (top + h) / 2
    reach = (h - top) / 2 - 1
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, top, w, h), fill=(10, 10, 30))
    for x, level in enumerate(levels[:w]):
        half = level * reach
        draw.line([(x, middle - half), (x, middle + half)], fill=(80, 255, 120))
    head = min(w - 1, round(played * (w - 1)))
    draw.line([(head, top), (head, h)], fill=(255, 40, 40), width=2)
