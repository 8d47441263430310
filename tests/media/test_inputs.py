"""Sniffing, probing and limits for inputs, and images prepared for the models."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot import media
from bot.config import MediaSettings
from bot.errors import MediaError
from tests.media import makers


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("fmt", "pil_format", "extra"),
    [("png", "PNG", {}), ("jpeg", "JPEG", {"quality": 90}), ("webp", "WEBP", {}),
     ("gif", "GIF", {})],
)
def test_every_image_format_is_recognised(tmp_path: Path, media_settings: MediaSettings,
                                          fmt: str, pil_format: str, extra: dict[str, Any]) -> None:
    # A misleading name: the bytes decide.
    path = write(tmp_path, "upload.bin", makers.image_bytes(pil_format, (96, 64), **extra))
    info = media.probe(path, media_settings)
    assert (info.kind, info.format, info.width, info.height) == ("image", fmt, 96, 64)
    assert info.size_bytes == path.stat().st_size


def test_animated_gif_uses_its_first_frame(tmp_path: Path, media_settings: MediaSettings) -> None:
    path = write(tmp_path, "anim.gif", makers.animated_gif((250, 0, 0), (0, 0, 250)))
    assert media.probe(path, media_settings).format == "gif"
    out = media.prepare_image(path, tmp_path / "out", size=(64, 64))
    with Image.open(out) as im:
        red, _green, blue = im.convert("RGB").getpixel((32, 32))  # type: ignore[misc]
    assert red > 200 and blue < 50


@pytest.mark.parametrize("fmt", ["mp4", "mov", "webm"])
def test_every_video_format_is_recognised(clips: dict[str, Path], media_settings: MediaSettings,
                                          fmt: str) -> None:
    info = media.probe(clips[fmt], media_settings)
    assert (info.kind, info.format, info.width, info.height) == ("video", fmt, 96, 64)
    assert info.frames == 24
    assert info.fps == pytest.approx(24)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert info.has_audio
    assert info.video_codec == ("vp8" if fmt == "webm" else "h264")
    assert info.audio_codec == ("opus" if fmt == "webm" else "aac")


def rejection(path: Path, settings: MediaSettings, filename: str = "") -> str:
    with pytest.raises(MediaError) as caught:
        media.probe_input(path, settings, filename=filename)
    return str(caught.value)


def test_each_bad_input_gets_its_own_message(tmp_path: Path, clips: dict[str, Path],
                                             media_settings: MediaSettings) -> None:
    png = makers.image_bytes("PNG", (64, 64))
    jpeg = makers.image_bytes("JPEG", (256, 256), color=(10, 200, 90))
    mp4 = clips["mp4"].read_bytes()
    # The IDAT chunk's compressed bytes, overwritten: the CRC and the zlib stream both break.
    idat = png.index(b"IDAT") + 4
    corrupt_png = png[:idat] + b"\x55" * 12 + png[idat + 12:]
    # The box layout intact but the first frames' bytes garbage: a damaged, not a cut, file.
    mdat = mp4.index(b"mdat") + 4
    corrupt_mp4 = mp4[:mdat] + bytes((7 * k + 3) % 256 for k in range(400)) + mp4[mdat + 400:]
    small = MediaSettings(tmp_dir=media_settings.tmp_dir, max_input_bytes=1000)
    cases = {
        "empty": (write(tmp_path, "empty.png", b""), media_settings, "empty.png"),
        "zip named png": (write(tmp_path, "cat.png", makers.zip_bytes()), media_settings, "cat.png"),
        "pdf": (write(tmp_path, "doc", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), media_settings, ""),
        "html": (write(tmp_path, "login", b"<!DOCTYPE html><html><body>Sign in"), media_settings, ""),
        "corrupt png": (write(tmp_path, "bad.png", corrupt_png), media_settings, ""),
        "truncated jpeg": (write(tmp_path, "cut.jpg", jpeg[: len(jpeg) // 2]), media_settings, ""),
        "truncated mp4": (write(tmp_path, "cut.mp4", mp4[: len(mp4) * 2 // 3]), media_settings, ""),
        "corrupt mp4": (write(tmp_path, "bad.mp4", corrupt_mp4), media_settings, ""),
        "oversized": (write(tmp_path, "big.png", png + b"\x00" * 2000), small, ""),
        # Sides within the side limit: the pixel limit is what refuses it.
        "bomb": (write(tmp_path, "bomb.png", makers.png_bomb(side=8000)), media_settings, ""),
    }
    messages = {name: rejection(path, settings, filename)
                for name, (path, settings, filename) in cases.items()}
    assert "empty" in messages["empty"]
    assert "ZIP archive" in messages["zip named png"] and ".png" in messages["zip named png"]
    assert "PDF" in messages["pdf"]
    assert "web page" in messages["html"]
    assert "damaged" in messages["corrupt png"] and "PNG" in messages["corrupt png"]
    assert "incomplete" in messages["truncated jpeg"] and "JPEG" in messages["truncated jpeg"]
    assert "incomplete" in messages["truncated mp4"] and "MP4" in messages["truncated mp4"]
    assert "damaged" in messages["corrupt mp4"] and "MP4" in messages["corrupt mp4"]
    assert "the limit is 1000 bytes" in messages["oversized"] or "limit" in messages["oversized"]
    assert "64 megapixels" in messages["bomb"] and "limit is 40 megapixels" in messages["bomb"]
    for name in ("empty", "zip named png", "pdf", "html"):
        assert "I accept PNG, JPEG, WebP or GIF images and MP4, WebM or MOV videos" in messages[name]
    assert len(set(messages.values())) == len(messages), messages


def test_truncated_webm_and_png_are_incomplete(tmp_path: Path, clips: dict[str, Path],
                                               media_settings: MediaSettings) -> None:
    webm = clips["webm"].read_bytes()
    png = makers.image_bytes("PNG", (300, 200))
    assert "incomplete" in rejection(write(tmp_path, "cut.webm", webm[: len(webm) // 2]),
                                     media_settings)
    assert "incomplete" in rejection(write(tmp_path, "cut.png", png[: len(png) - 40]),
                                     media_settings)


def test_bomb_is_refused_from_the_header_without_decoding(tmp_path: Path,
                                                          media_settings: MediaSettings) -> None:
    # 50 megapixels: under Pillow's own bomb threshold, over ours. Only the header is valid,
    # so refusing it proves nothing was decoded.
    header = makers.png_bomb(side=8)[:33]
    header = header[:16] + (10000).to_bytes(4, "big") + (5000).to_bytes(4, "big") + header[24:]
    path = write(tmp_path, "wide.png", header)
    assert "10000x5000" in rejection(path, media_settings)


def test_video_limits(tmp_path: Path, clips: dict[str, Path], media_settings: MediaSettings) -> None:
    short = MediaSettings(tmp_dir=media_settings.tmp_dir, max_video_seconds=0.5)
    few = MediaSettings(tmp_dir=media_settings.tmp_dir, max_video_frames=10)
    tiny = MediaSettings(tmp_dir=media_settings.tmp_dir, max_image_pixels=1000)
    assert "1.0 seconds long; the limit is 0.5 seconds" in rejection(clips["mp4"], short)
    assert "24 frames; the limit is 10" in rejection(clips["mp4"], few)
    # WebM headers carry no frame count: the frames are counted by demuxing.
    assert "frames; the limit is 10" in rejection(clips["webm"], few)
    assert "96x64" in rejection(clips["mov"], tiny)


@pytest.mark.parametrize(
    ("head", "words"),
    [(b"PK\x03\x04rest", "a ZIP archive"), (b"\x00\x00\x00\x18ftypheic", "a HEIC image"),
     (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x1fB\x86\x81\x01matroska", "an MKV video"),
     (b"RIFF\x00\x00\x00\x00WAVEfmt ", "a WAV audio file"), (b"hello world\n", "a text file"),
     (b"\x00\x01\x02\x03\xfe\xfd", "a file of a type I don't recognise"),
     (b"\x00\x00\x00\x14ftypqt  ", "a MOV video"), (b"\x00\x00\x00\x1cftypisom", "an MP4 video")],
)
def test_sniff_names_what_it_sees(head: bytes, words: str) -> None:
    assert media.sniff_bytes(head)[1] == words


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    src = write(tmp_path, "phone.jpg", makers.exif_rotated_jpeg())
    out = media.prepare_image(src, tmp_path / "out", max_side=1280)
    with Image.open(out) as im:
        rgb = im.convert("RGB")
        assert rgb.width < rgb.height  # stored 64x32, shown 32x64: portrait
        top = rgb.getpixel((rgb.width // 2, rgb.height // 8))
        bottom = rgb.getpixel((rgb.width // 2, rgb.height * 7 // 8))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below


def test_exact_model_size_is_cover_cropped(tmp_path: Path) -> None:
    # Square input, 768x512 wanted: a centred crop, so the middle survives and no bars appear.
    img = Image.new("RGB", (1000, 1000), (0, 0, 255))
    img.paste((255, 0, 0), (0, 400, 1000, 600))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = media.prepare_image(write(tmp_path, "sq.png", buf.getvalue()), tmp_path / "out",
                              size=(768, 512))
    with Image.open(out) as im:
        assert im.size == (768, 512)
        assert im.format == "PNG"
        middle = im.convert("RGB").getpixel((384, 256))
        corner = im.convert("RGB").getpixel((2, 2))
    assert middle == (255, 0, 0)
    assert isinstance(corner, tuple) and corner[2] > 240  # image content, not padding


@pytest.mark.parametrize(
    ("aspect", "expected"),
    # A 1920x1200 photo: crops keep its 1200-pixel height (no upscaling) unless the long
    # side would pass 1280; each side is then rounded to a multiple of 32.
    [("16:9", (1280, 704)), ("9:16", (672, 1216)), ("1:1", (1216, 1216)), ("4:3", (1280, 960)),
     ("3:4", (896, 1216)), (None, (1280, 800)), ("auto", (1280, 800))],
)
def test_multiples_of_32_with_aspect_choices(tmp_path: Path, aspect: str | None,
                                             expected: tuple[int, int]) -> None:
    src = write(tmp_path, "photo.jpg", makers.image_bytes("JPEG", (1920, 1200)))
    out = media.prepare_image(src, tmp_path / "out", aspect=aspect)
    with Image.open(out) as im:
        assert im.size == expected
        assert im.format == "JPEG"


def test_transparency_becomes_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = media.prepare_image(write(tmp_path, "logo.png", buf.getvalue()), tmp_path / "o")
    with Image.open(out) as im:
        assert im.mode == "RGB"
        assert im.getpixel((10, 10)) == (255, 255, 255)


def test_bad_aspect_is_a_user_error() -> None:
    with pytest.raises(MediaError, match="not an aspect ratio"):
        media.target_size(100, 100, aspect="wide")


@settings(max_examples=300, deadline=None)
@given(width=st.integers(1, 9000), height=st.integers(1, 9000),
       aspect=st.sampled_from([None, "16:9", "9:16", "1:1", "4:3", "3:4"]),
       max_side=st.sampled_from([512, 768, 1280, 1920]))
def test_target_size_properties(width: int, height: int, aspect: str | None,
                                max_side: int) -> None:
    w, h = media.target_size(width, height, aspect=aspect, max_side=max_side)
    assert w % 32 == 0 and h % 32 == 0
    assert 64 <= w <= max_side and 64 <= h <= max_side
    wanted = media.parse_aspect(aspect) or Fraction(width, height)
    # The short side is the long side over the ratio, rounded by at most half a step (16),
    # except where it is clamped to the 64-pixel minimum.
    if min(w, h) > 64 and 1 / 8 < wanted < 8:
        tolerance = 16 / (min(w, h) - 16) + 0.001
        assert abs(w / h - float(wanted)) / float(wanted) <= tolerance


@pytest.mark.parametrize(
    ("pil_format", "fmt", "mode", "extra"),
    [("PNG", "png", "RGB", {}), ("GIF", "gif", "RGB", {}), ("WEBP", "webp", "RGB", {}),
     ("WEBP", "webp", "RGB", {"lossless": True}), ("WEBP", "webp", "RGBA", {}),
     ("JPEG", "jpeg", "RGB", {"exif": Image.Exif().tobytes() + b"\x00" * 20000})],
)
def test_header_sizes_match_pillow(tmp_path: Path, pil_format: str, fmt: str, mode: str,
                                   extra: dict[str, object]) -> None:
    img = Image.new(mode, (333, 127))
    buf = io.BytesIO()
    img.save(buf, pil_format, **extra)
    path = write(tmp_path, "x", buf.getvalue())
    assert media.image_header_size(path, fmt) == (333, 127)
