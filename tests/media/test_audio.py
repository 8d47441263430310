"""Sound inputs: sniffed from their bytes (whatever their names say), measured cheaply,
refused clearly when cut short, damaged or outside the limits, fetched through the guard."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import pytest

from bot import media
from bot.config import MediaSettings
from bot.errors import MediaError
from bot.ports import Attachment
from tests.media import makers
from tests.media.audio_makers import AUDIO, make_audio
from tests.media.conftest import FileServer, RecordingTransport

FORMAT_OF = {"mp3": "mp3", "wav": "wav", "m4a": "m4a", "aac": "aac", "opus": "ogg",
             "vorbis": "ogg", "flac": "flac"}


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {kind: make_audio(folder, kind, 3.0) for kind in AUDIO}


def rejection(path: Path, settings: MediaSettings, filename: str = "") -> str:
    with pytest.raises(MediaError) as caught:
        media.probe_input(path, settings, filename=filename)
    return str(caught.value)


@pytest.mark.parametrize("kind", list(AUDIO))
def test_each_format_is_sniffed_and_measured(kind: str, tones: dict[str, Path],
                                             media_settings: MediaSettings) -> None:
    info = media.probe_input(tones[kind], media_settings, filename="")
    assert (info.kind, info.format) == ("audio", FORMAT_OF[kind])
    assert info.duration is not None and abs(info.duration - 3.0) < 0.1
    assert info.content_type.startswith("audio/")
    assert media.kind_of_file(tones[kind]) == "audio"


def test_mp3_with_an_id3_tag_and_a_bare_adts_stream(tones: dict[str, Path]) -> None:
    tagged = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + tones["mp3"].read_bytes()[-4000:]
    assert media.sniff_bytes(tagged[:4096])[0] == "mp3"
    assert media.sniff_bytes(tones["aac"].read_bytes()[:4096]) == ("aac", "an AAC audio file")
    ogg_video = b"OggS\x00\x02" + b"\x00" * 22 + b"\x80theora"
    assert media.sniff_bytes(ogg_video) == (None, "an Ogg video")


@pytest.mark.parametrize("kind", list(AUDIO))
def test_a_cut_file_is_refused_as_incomplete(kind: str, tones: dict[str, Path], tmp_path: Path,
                                             media_settings: MediaSettings) -> None:
    data = tones[kind].read_bytes()
    cut = tmp_path / f"cut{tones[kind].suffix}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    text = rejection(cut, media_settings)
    assert "incomplete: the file ends early" in text
    assert media.FORMATS[FORMAT_OF[kind]].label in text


def test_a_mislabelled_file_is_judged_by_its_bytes(tones: dict[str, Path], tmp_path: Path,
                                                   media_settings: MediaSettings) -> None:
    # A WAV named .mp3 is a WAV; an MP3 named .png is an MP3; a ZIP named .mp3 is refused
    # naming both its ending and what the bytes are.
    wav_as_mp3 = tmp_path / "song.mp3"
    wav_as_mp3.write_bytes(tones["wav"].read_bytes())
    assert media.probe_input(wav_as_mp3, media_settings, filename="song.mp3").format == "wav"
    mp3_as_png = tmp_path / "cover.png"
    mp3_as_png.write_bytes(tones["mp3"].read_bytes())
    assert media.probe_input(mp3_as_png, media_settings, filename="cover.png").kind == "audio"
    zip_as_mp3 = tmp_path / "song2.mp3"
    zip_as_mp3.write_bytes(makers.zip_bytes())
    text = rejection(zip_as_mp3, media_settings, "song2.mp3")
    assert "ZIP archive (its name ends in .mp3, but the bytes say otherwise)" in text
    assert "MP3, WAV, M4A/AAC, Ogg/Opus or FLAC audio" in text


def test_damaged_sound_is_refused(tones: dict[str, Path], tmp_path: Path,
                                  media_settings: MediaSettings) -> None:
    data = bytearray(tones["flac"].read_bytes())
    data[200:] = bytes(len(data) - 200)  # the header survives, the sound is zeros
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    text = rejection(bad, media_settings)
    assert "FLAC audio file" in text and ("damaged" in text or "incomplete" in text)


def test_sound_only_mp4_is_taken_as_m4a(tmp_path: Path, media_settings: MediaSettings) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        feed = makers.AudioFeed(out, makers._add_audio(out, "aac", 44100), 44100)
        feed.until(44100 * 2)
        feed.close()
    info = media.probe_input(path, media_settings, filename="voice.mp4")
    assert (info.kind, info.format) == ("audio", "m4a")


def test_the_operator_limits_hold_before_the_sound_is_read(tones: dict[str, Path],
                                                           media_settings: MediaSettings) -> None:
    short = media_settings.model_copy(update={"max_audio_seconds": 2.0})
    assert "3.0 seconds long; the limit is 2 seconds" in rejection(tones["wav"], short)
    small = media_settings.model_copy(update={"max_input_bytes": 1000})
    assert "limit" in rejection(tones["mp3"], small)


def test_hints_name_sound_before_download() -> None:
    assert media.kind_from_hint("audio/mpeg") == "audio"
    assert media.kind_from_hint(None, "take.FLAC") == "audio"
    assert media.kind_from_hint(None, "https://x.test/a/voice.opus?sig=1") == "audio"
    assert media.kind_from_hint(None, "", filetype="m4a") == "audio"


async def test_audio_file_by_url_goes_through_the_guard(
    server: FileServer, http: httpx.AsyncClient, transport: RecordingTransport,
    media_settings: MediaSettings, tmp_path: Path, tones: dict[str, Path],
) -> None:
    server.files["/voice.mp3"] = tones["mp3"].read_bytes()
    att = Attachment(url=f"{server.url}/voice.mp3", filename="voice.mp3", kind="audio")
    with pytest.raises(MediaError, match="private network address"):
        await media.Fetcher(http, media_settings).fetch_input(att, tmp_path / "a")
    assert server.hits == [] and transport.urls == []
    allowed = media_settings.model_copy(update={"allow_hosts": ["127.0.0.1"]})
    local = await media.Fetcher(http, allowed).fetch_input(att, tmp_path / "b")
    assert local.path.suffix == ".mp3" and local.info.kind == "audio"
    assert local.info.duration is not None and abs(local.info.duration - 3.0) < 0.1
