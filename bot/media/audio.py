"""Sound inputs (for audio-to-video): proven to play, measured, and held to the limits.

A sniffed audio file is first checked for being cut short, as cheaply as its format
allows: a WAV's RIFF length, an M4A's boxes, an Ogg stream's end-of-stream page, the
chain of an AAC file's ADTS frames. Then PyAV (with the demuxer we sniffed, never
ffmpeg's guess) opens it; its length is the sum of its packets' durations, found by
demuxing without decoding, and a file whose header promises more than its packets
hold is cut too. Only the first packet is decoded, to prove the sound decodes.

The length is what audio-to-video prices and generates by (`MediaInfo.duration`); each
model's own range is checked against it by routing (`audio_length`) before any cost.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.error
from av.audio.stream import AudioStream

from bot.config import MediaSettings
from bot.errors import MediaError
from bot.media.decode import corrupt, truncated
from bot.media.headers import iso_structure, riff_cut_short
from bot.media.sniff import FORMATS
from bot.model import MediaInfo

# The demuxer each sniffed format is opened with (see probe._DEMUXER for why it is forced).
DEMUXER = {"mp3": "mp3", "wav": "wav", "m4a": "mov", "aac": "aac", "ogg": "ogg", "flac": "flac"}
# Packets may round a little; a header promising more than this beyond them means a cut file.
_TOLERANCE_SECONDS = 0.25
_OGG_TAIL = 65536


def probe_audio(path: Path, fmt: str, size_bytes: int,
                settings: MediaSettings | None) -> MediaInfo:
    """What an audio file holds: its length and codec. Raises MediaError saying why not."""
    if _cut_short(path, fmt, size_bytes):
        raise truncated(fmt)
    try:
        container = av.open(str(path), format=DEMUXER[fmt], metadata_errors="replace")
    except (av.error.FFmpegError, OSError, ValueError):
        raise corrupt(fmt) from None
    with container:
        stream = _sound_track(container, fmt)
        declared = _declared_seconds(container, stream)
        limit = settings.max_audio_seconds if settings is not None else None
        _check_limit(declared, limit, fmt)
        played = _packet_seconds(container, stream, fmt, limit)
        if declared is not None and played is not None and played + _TOLERANCE_SECONDS < declared:
            raise truncated(fmt)
        duration = played if played is not None else declared
        _check_limit(duration, limit, fmt)
        if duration is None:
            raise corrupt(fmt)
        if settings is not None:
            _decode_first(container, stream, fmt)
        return MediaInfo(
            kind="audio", format=fmt, size_bytes=size_bytes, width=0, height=0,
            duration=duration, has_audio=True, audio_codec=stream.codec_context.name,
        )


def _sound_track(container: av.container.InputContainer, fmt: str) -> AudioStream:
    for stream in container.streams.audio:
        if stream.codec_context is not None:
            return stream
    raise MediaError(f"That {FORMATS[fmt].label} has no sound track I can decode.")


def _declared_seconds(container: av.container.InputContainer,
                      stream: AudioStream) -> float | None:
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _check_limit(seconds: float | None, limit: float | None, fmt: str) -> None:
    if limit is not None and seconds is not None and seconds > limit:
        raise MediaError(f"That {FORMATS[fmt].label} is {seconds:.1f} seconds long; the limit is "
                         f"{limit:g} seconds.")


def _packet_seconds(container: av.container.InputContainer, stream: AudioStream, fmt: str,
                    limit: float | None) -> float | None:
    """Seconds of sound the packets really hold (demuxed, not decoded), stopping past `limit`."""
    if stream.time_base is None:
        return None
    total = 0
    try:
        for packet in container.demux(stream):
            if packet.size and packet.duration:
                total += packet.duration
                if limit is not None and float(total * stream.time_base) > limit:
                    break
        container.seek(0)
    except av.error.FFmpegError:
        raise corrupt(fmt) from None
    return float(total * stream.time_base) if total else None


def _decode_first(container: av.container.InputContainer, stream: AudioStream, fmt: str) -> None:
    try:
        for _frame in container.decode(stream):
            return
    except av.error.FFmpegError:
        raise corrupt(fmt) from None
    raise corrupt(fmt)


# ---------------------------------------------------------------- cut files, from the bytes


def _cut_short(path: Path, fmt: str, size: int) -> bool:
    if fmt == "wav":
        return riff_cut_short(path, size) or _wav_data_cut(path, size)
    if fmt == "m4a":
        return iso_structure(path, size) == "truncated"
    if fmt == "ogg":
        return not _ogg_ends(path, size)
    if fmt == "aac":
        return _adts_cut(path, size)
    return False


def _wav_data_cut(path: Path, size: int) -> bool:
    """The `data` chunk states its length: less on disk means the sound was cut off
    (writers that stream leave the RIFF length at 0 or -1 but state the chunk)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    offset = 12
    while offset + 8 <= len(head):
        chunk, length = head[offset:offset + 4], int.from_bytes(head[offset + 4:offset + 8], "little")
        if chunk == b"data":
            return length not in (0, 0xFFFFFFFF) and offset + 8 + length > size
        offset += 8 + length + (length & 1)
    return False


def _ogg_ends(path: Path, size: int) -> bool:
    """An Ogg stream's last page carries the end-of-stream flag; a cut file's does not."""
    with path.open("rb") as fh:
        fh.seek(max(0, size - _OGG_TAIL))
        tail = fh.read()
    last = tail.rfind(b"OggS")
    return last >= 0 and len(tail) > last + 5 and bool(tail[last + 5] & 0x04)


def _adts_cut(path: Path, size: int) -> bool:
    """Walk an AAC file's ADTS frames by their stated lengths: one past the end is cut."""
    data = path.read_bytes()
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        offset = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    while offset + 7 <= size:
        if data[offset] != 0xFF or data[offset + 1] & 0xF6 != 0xF0:
            return False  # not a frame boundary: leave the verdict to the demuxer
        length = ((data[offset + 3] & 0x03) << 11) | (data[offset + 4] << 3) | (data[offset + 5] >> 5)
        if length < 7:
            return False
        offset += length
    return offset != size
