"""Single frames cut from a video: the last one (Continue feeds it to the next
generation) and a poster (shown with the link when a video cannot be uploaded)."""

from __future__ import annotations

import contextlib
import uuid
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from bot.errors import MediaError
from bot.media.probe import header_duration, open_input, probe_output

_NO_FRAMES = "That video has no frames I can decode."


def _open_video(src: Path) -> tuple[InputContainer, VideoStream]:
    try:
        container = open_input(src)
    except (av.error.FFmpegError, OSError, ValueError):
        raise MediaError("That video can't be read.") from None
    if not container.streams.video:
        container.close()
        raise MediaError("That video has no picture track.")
    vs = container.streams.video[0]
    if vs.codec_context is None:
        container.close()
        raise MediaError("That video's picture uses a codec I can't decode.")
    vs.thread_type = "AUTO"
    return container, vs


def _frame_at(src: Path, seconds: float | None) -> VideoFrame:
    """The first frame at or after `seconds`, or the very last frame when `seconds` is None."""
    container, vs = _open_video(src)
    with container:
        tb = vs.time_base or Fraction(1, 1000)
        start = vs.start_time or 0
        target = header_duration(container, vs) if seconds is None else seconds
        chosen: VideoFrame | None = None
        if target is not None and target > 0:
            # Jump to the keyframe before the target instead of decoding everything before it.
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(start + int(target / tb), stream=vs, backward=True,
                               any_frame=False)
            chosen = _scan(container, vs, seconds, tb)
        if chosen is None:
            # No target, or nothing decodable after it: read from the start.
            try:
                container.seek(start, stream=vs, backward=True, any_frame=False)
            except av.error.FFmpegError:
                raise MediaError(_NO_FRAMES) from None
            chosen = _scan(container, vs, seconds, tb)
        if chosen is None:
            raise MediaError(_NO_FRAMES)
        return chosen


def _scan(container: InputContainer, vs: VideoStream, seconds: float | None,
          tb: Fraction) -> VideoFrame | None:
    """The first frame at or after `seconds` (the last decodable one when None or past the end)."""
    last: VideoFrame | None = None
    try:
        for frame in container.decode(vs):
            if seconds is not None and frame.pts is not None and float(frame.pts * tb) >= seconds:
                return frame
            last = frame
    except av.error.FFmpegError:
        # A damaged tail: the frames decoded so far still make a picture.
        pass
    return last


def last_frame(src: Path, dest_dir: Path) -> Path:
    """The true last frame as PNG (Continue feeds it to the next generation)."""
    frame = _frame_at(src, None)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{src.stem}-last-{uuid.uuid4().hex[:8]}.png"
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    image.save(dest, "PNG", compress_level=3)
    return dest


def poster_frame(src: Path, dest_dir: Path) -> Path:
    """The middle frame as JPEG: shown with the link when a video can't be uploaded."""
    info = probe_output(src)
    frame = _frame_at(src, (info.duration or 0.0) / 2)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{src.stem}-poster-{uuid.uuid4().hex[:8]}.jpg"
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    image.save(dest, "JPEG", quality=88)
    return dest
