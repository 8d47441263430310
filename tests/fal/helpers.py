"""Small helpers shared by the fal tests."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from fractions import Fraction

import av
import httpx

from bot.fal import FalClient, FalEvent, QueueHandle


@dataclass
class VideoFacts:
    frames: int
    fps: Fraction
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    first_rgb: tuple[int, int, int]
    frame_bytes: list[bytes]


def probe(data: bytes) -> VideoFacts:
    """Decode every frame: a file that does not play fails here."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        frames = [f.to_image() for f in container.decode(video=0)]
        first = frames[0].resize((1, 1)).getpixel((0, 0))
        assert isinstance(first, tuple)
        return VideoFacts(
            frames=len(frames),
            fps=Fraction(stream.average_rate or 0),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            video_codec=stream.codec_context.name,
            audio_codec=audio,
            first_rgb=(int(first[0]), int(first[1]), int(first[2])),
            frame_bytes=[f.tobytes() for f in frames[:: max(1, len(frames) // 4)]],
        )


async def follow(fal: FalClient, handle: QueueHandle) -> list[FalEvent]:
    events: list[FalEvent] = []
    async with contextlib.aclosing(fal.events(handle)) as stream:
        async for event in stream:
            events.append(event)
    return events


async def download(http: httpx.AsyncClient, url: str) -> bytes:
    response = await http.get(url)
    response.raise_for_status()
    return response.content
