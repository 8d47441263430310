"""Probing: what a sniffed file really holds (Pillow for images, PyAV for videos and
sound: `bot.media.audio`),
checked against the operator's limits before any quota is spent.

Inputs are proven to decode; our own finished videos (`probe_output`) are trusted
further and only measured.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.error
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from bot.config import MediaSettings
from bot.errors import MediaError
from bot.media.audio import probe_audio
from bot.media.decode import corrupt, prove_decodes, truncated
from bot.media.headers import iso_structure, riff_cut_short, webm_truncated
from bot.media.images import preparation_needed
from bot.media.limits import ImageLimits
from bot.media.sizes import too_big
from bot.media.sniff import AUDIO_FORMATS, FORMATS, IMAGE_FORMATS, sniff
from bot.model import MediaInfo

# Forcing the demuxer we sniffed keeps ffmpeg from "probing" a file into
# something else (an HLS playlist, a concat list) that could read other files.
_DEMUXER = {"mp4": "mov", "mov": "mov", "webm": "matroska", "gif": "gif"}


# ---------------------------------------------------------------- shared by images and videos


def open_input(path: Path, demuxer: str | None = None) -> av.container.InputContainer:
    # Tags in a damaged (or hostile) file need not be UTF-8; they must not stop a probe.
    return av.open(str(path), format=demuxer, metadata_errors="replace")


def frame_rate(stream: VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def header_duration(container: av.container.InputContainer, vs: VideoStream) -> float | None:
    """Seconds as the container (else the picture track) declares them; None when neither does."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if vs.duration is not None and vs.duration > 0 and vs.time_base is not None:
        return float(vs.duration * vs.time_base)
    return None


def audio_stream(container: av.container.InputContainer) -> AudioStream | None:
    """The first sound track that ffmpeg can decode (a garbage codec tag counts as none)."""
    for stream in container.streams.audio:
        if stream.codec_context is not None:
            return stream
    return None


# ---------------------------------------------------------------- images


def _probe_image(path: Path, fmt: str, size_bytes: int, limits: ImageLimits | None) -> MediaInfo:
    # The RIFF header states the file's length: less on disk means a cut file.
    if fmt == "webp" and riff_cut_short(path, size_bytes):
        raise truncated(fmt)
    width, height = prove_decodes(path, fmt, limits, preparation_needed)
    return MediaInfo(kind="image", format=fmt, size_bytes=size_bytes, width=width, height=height)


# ---------------------------------------------------------------- videos


def _check_structure(path: Path, fmt: str, size_bytes: int) -> None:
    """Tell a cut file from a damaged one before the demuxer gives its vaguer verdict."""
    if fmt in ("mp4", "mov"):
        structure = iso_structure(path, size_bytes)
        if structure == "truncated":
            raise truncated(fmt)
        if structure == "no-index":
            raise MediaError(
                f"That {FORMATS[fmt].label} has no index (moov box), so it is damaged or incomplete."
            )
    elif fmt == "webm" and webm_truncated(path, size_bytes):
        raise truncated(fmt)


class _SoundOnly(MediaError):
    """An MP4 that holds only sound: an M4A file under another brand, probed as one."""


def _picture_track(container: av.container.InputContainer, fmt: str) -> VideoStream:
    if not container.streams.video and fmt == "mp4" and audio_stream(container) is not None:
        raise _SoundOnly("sound only")
    if not container.streams.video:
        raise MediaError(f"That {FORMATS[fmt].label} has no picture track, only sound or data.")
    vs = container.streams.video[0]
    if vs.codec_context is None:  # a codec tag ffmpeg has no decoder for (or garbage)
        raise corrupt(fmt)
    return vs


def _check_duration(duration: float | None, settings: MediaSettings | None) -> None:
    if settings is not None and duration is not None and duration > settings.max_video_seconds:
        raise MediaError(
            f"That video is {duration:.1f} seconds long; the limit is "
            f"{settings.max_video_seconds:g} seconds."
        )


def _check_frames(frames: int | None, settings: MediaSettings | None) -> None:
    if settings is not None and frames is not None and frames > settings.max_video_frames:
        raise MediaError(f"That video has {frames} frames; the limit is {settings.max_video_frames}.")


def _probe_video(path: Path, fmt: str, size_bytes: int, settings: MediaSettings | None) -> MediaInfo:
    """`settings` None: our own output, measured but held to no input limit."""
    _check_structure(path, fmt, size_bytes)
    try:
        container = open_input(path, _DEMUXER[fmt])
    except (av.error.FFmpegError, OSError, ValueError):
        raise corrupt(fmt) from None
    with container:
        vs = _picture_track(container, fmt)
        width, height = vs.codec_context.width, vs.codec_context.height
        if settings is not None:
            ImageLimits.of(settings).check_size(width, height, "video's picture")
        fps = frame_rate(vs)
        duration = header_duration(container, vs)
        # Refused by the header's duration before any demuxing.
        _check_duration(duration, settings)
        frames = vs.frames or _count_packets(container, vs, settings)
        if duration is None and frames and fps:
            duration = frames / fps
        _check_frames(frames, settings)
        audio = audio_stream(container)
        if settings is not None:
            # Only inputs need proof that the picture decodes; our own outputs are trusted.
            _decode_first_frame(container, vs, fmt)
        return MediaInfo(
            kind="video", format=fmt, size_bytes=size_bytes, width=width, height=height,
            frames=frames, fps=fps, duration=duration, has_audio=audio is not None,
            video_codec=vs.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def _count_packets(
    container: av.container.InputContainer, vs: VideoStream, settings: MediaSettings | None
) -> int | None:
    """Frames by demuxing (no decoding) when the header has no count, as in most WebM files."""
    limit = settings.max_video_frames if settings is not None else None
    count = 0
    try:
        for packet in container.demux(vs):
            if packet.size:
                count += 1
                if limit is not None and count > limit:
                    break
        container.seek(0)
    except av.error.FFmpegError:
        return count or None
    return count or None


def _decode_first_frame(container: av.container.InputContainer, vs: VideoStream, fmt: str) -> None:
    try:
        for _frame in container.decode(vs):
            return
    except av.error.FFmpegError:
        raise corrupt(fmt) from None
    raise corrupt(fmt)


# ---------------------------------------------------------------- entry points


def probe(path: Path, settings: MediaSettings) -> MediaInfo:
    """Sniff and probe an input, enforcing every limit in `settings`. Raises MediaError."""
    return probe_input(path, settings, filename="")


def probe_input(path: Path, settings: MediaSettings | None, *, filename: str) -> MediaInfo:
    """`probe`, naming the user's `filename` when the bytes belie its ending."""
    size = path.stat().st_size
    if settings is not None and size > settings.max_input_bytes:
        raise MediaError(too_big(size, settings.max_input_bytes))
    fmt = sniff(path, filename=filename)
    if fmt in IMAGE_FORMATS:
        return _probe_image(path, fmt, size, ImageLimits.of(settings) if settings else None)
    if fmt in AUDIO_FORMATS:
        return probe_audio(path, fmt, size, settings)
    try:
        return _probe_video(path, fmt, size, settings)
    except _SoundOnly:
        return probe_audio(path, "m4a", size, settings)


def probe_output(path: Path) -> MediaInfo:
    """What a finished (or fitted) video really is: codec, size, fps, frames, duration, audio.
    A GIF here is a video (LTX-2 can render to GIF), probed for its frames and timing."""
    fmt = sniff(path)
    if fmt == "gif":
        return _probe_video(path, fmt, path.stat().st_size, None)
    return probe_input(path, None, filename="")
