"""Sound files made on the spot with PyAV (nothing is committed): a 440 Hz tone in each
format audio-to-video takes."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
from av.audio.stream import AudioStream

from tests.media.makers import AudioFeed

# format name -> (container format, codec, sample rate, file ending)
AUDIO = {
    "mp3": ("mp3", "libmp3lame", 44100, ".mp3"),
    "wav": ("wav", "pcm_s16le", 44100, ".wav"),
    "m4a": ("ipod", "aac", 44100, ".m4a"),
    "aac": ("adts", "aac", 44100, ".aac"),
    "opus": ("ogg", "libopus", 48000, ".opus"),
    "vorbis": ("ogg", "vorbis", 44100, ".ogg"),
    "flac": ("flac", "flac", 44100, ".flac"),
}


def make_audio(folder: Path, kind: str, seconds: float = 3.0, name: str = "") -> Path:
    """A tone of `seconds` in the format `kind` (a key of AUDIO)."""
    container, codec, rate, ending = AUDIO[kind]
    path = folder / (name or f"tone-{kind}-{seconds:g}{ending}")
    with av.open(str(path), "w", format=container) as out:
        stream = cast(AudioStream, out.add_stream(codec, rate=rate))
        stream.layout = "stereo"
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        feed = AudioFeed(out, stream, rate)
        feed.until(int(seconds * rate))
        feed.close()
    return path
