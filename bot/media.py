"""Media in and out: what users send us and what we send back.

Inputs are judged by their bytes, never by their names or claimed types: a file
is sniffed, then probed (Pillow for images, PyAV for videos) against the
operator's limits before any quota is spent. Downloads refuse to reach private
networks (SSRF) and keep credentials on the hosts they belong to.

Outputs are probed, fitted under a platform's upload limit by re-encoding when
needed, and cut into frames (the last frame for Continue, a poster when a
video cannot be uploaded).

CPU-heavy functions are synchronous; async callers run them in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

import av
import av.error
import httpx
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream
from PIL import Image, ImageOps

from bot.config import MediaSettings
from bot.errors import MediaError
from bot.model import LocalMedia, MediaInfo, MediaKind
from bot.ports import Attachment, Credential

log = logging.getLogger(__name__)

MiB = 1024 * 1024
ACCEPTED = "PNG, JPEG, WebP or GIF images and MP4, WebM or MOV videos"
IMAGE_FORMATS = ("png", "jpeg", "webp", "gif")
VIDEO_FORMATS = ("mp4", "webm", "mov")
MAX_REDIRECTS = 5
SNIFF_BYTES = 4096

_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
# Forcing the demuxer we sniffed keeps ffmpeg from "probing" a file into
# something else (an HLS playlist, a concat list) that could read other files.
_DEMUXER = {"mp4": "mov", "mov": "mov", "webm": "matroska", "gif": "gif"}
_EXTENSION = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "gif": ".gif",
              "mp4": ".mp4", "webm": ".webm", "mov": ".mov"}
_LABEL = {"png": "PNG image", "jpeg": "JPEG image", "webp": "WebP image", "gif": "GIF image",
          "mp4": "MP4 video", "webm": "WebM video", "mov": "MOV video"}


def format_size(n: float) -> str:
    """A size people read at a glance: `850 KB`, `9.2 MB`."""
    if n < MiB / 10:
        return f"{max(1, round(n / 1024))} KB"
    value = n / MiB
    text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return (text[:-2] if text.endswith(".0") else text) + " MB"


# ---------------------------------------------------------------- sniffing

_ISO_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                     b"mif1", b"msf1"}


def sniff_bytes(head: bytes) -> tuple[str | None, str]:
    """(accepted format or None, what the bytes are in words) from a file's first bytes."""
    if not head:
        return None, "an empty file"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg", "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif", "a GIF image"
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return "webp", "a WebP image"
        if kind == b"WAVE":
            return None, "a WAV audio file"
        if kind == b"AVI ":
            return None, "an AVI video"
        return None, "a RIFF file"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _ISO_IMAGE_BRANDS:
            return None, "a HEIC image"
        if brand in (b"avif", b"avis"):
            return None, "an AVIF image"
        if brand in (b"M4A ", b"M4B "):
            return None, "an M4A audio file"
        if brand == b"qt  ":
            return "mov", "a MOV video"
        return "mp4", "an MP4 video"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        # QuickTime files older than the ftyp box start straight with an atom.
        return "mov", "a MOV video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return "webm", "a WebM video"
        return None, "an MKV video"
    named: tuple[tuple[bytes, str], ...] = (
        (b"PK\x03\x04", "a ZIP archive"),
        (b"PK\x05\x06", "a ZIP archive"),
        (b"%PDF", "a PDF"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"Rar!", "a RAR archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"BZh", "a bzip2 archive"),
        (b"\xfd7zXZ\x00", "an xz archive"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (b"BM", "a BMP image"),
        (b"\x00\x00\x01\x00", "an icon file"),
        (b"8BPS", "a Photoshop file"),
        (b"ID3", "an MP3 audio file"),
        (b"OggS", "an Ogg audio file"),
        (b"fLaC", "a FLAC audio file"),
        (b"\x7fELF", "a program"),
        (b"MZ", "a Windows program"),
        (b"\xd0\xcf\x11\xe0", "an old Office document"),
        (b"{\\rtf", "an RTF document"),
    )
    for magic, words in named:
        if head.startswith(magic):
            return None, words
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return None, "an MP3 audio file"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        # Slack answers a missing token with its login page: say so plainly.
        return None, "a web page (HTML), not a file"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return None, "an SVG image"
    if text.startswith((b"{", b"[")):
        return None, "a JSON or text file"
    try:
        decoded = head[: max(0, len(head) - 4)].decode("utf-8") if len(head) > 4 else head.decode()
    except UnicodeDecodeError:
        return None, "a file of a type I don't recognise"
    if all(ch.isprintable() or ch in "\r\n\t" for ch in decoded):
        return None, "a text file"
    return None, "a file of a type I don't recognise"


def sniff(path: Path, *, filename: str = "") -> str:
    """The accepted format of the file at `path`, or a MediaError saying what it really is."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    fmt, words = sniff_bytes(head)
    if fmt is not None:
        return fmt
    if not head:
        raise MediaError(f"That file is empty (0 bytes). I accept {ACCEPTED}.")
    suffix = Path(filename).suffix.lower() if filename else ""
    claimed = ""
    if suffix and suffix.lstrip(".") in {"png", "jpg", "jpeg", "webp", "gif", "mp4", "webm", "mov"}:
        claimed = f" (its name ends in {suffix}, but the bytes say otherwise)"
    raise MediaError(f"That file is {words}{claimed}. I accept {ACCEPTED}.")


# ---------------------------------------------------------------- probing


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise MediaError(f"That {what} has no picture size, so I can't use it.")
    if width * height > max_pixels:
        raise MediaError(
            f"That {what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:g} megapixels."
        )


def _truncated(fmt: str) -> MediaError:
    return MediaError(
        f"That {_LABEL[fmt]} is incomplete: the file ends early (an interrupted upload?). "
        "Please send it again."
    )


def _corrupt(fmt: str) -> MediaError:
    return MediaError(f"That {_LABEL[fmt]} is damaged: I couldn't decode it.")


def image_header_size(path: Path, fmt: str) -> tuple[int, int] | None:
    """Width and height as the file's header declares them, read without decoding anything
    (None when the header is too damaged to say)."""
    with path.open("rb") as fh:
        head = fh.read(64)
        if fmt == "png" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if fmt == "gif" and len(head) >= 10:
            return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
        if fmt == "webp" and len(head) >= 30:
            chunk = head[12:16]
            if chunk == b"VP8X":
                return (int.from_bytes(head[24:27], "little") + 1,
                        int.from_bytes(head[27:30], "little") + 1)
            if chunk == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                return (int.from_bytes(head[26:28], "little") & 0x3FFF,
                        int.from_bytes(head[28:30], "little") & 0x3FFF)
            return None
        if fmt == "jpeg":
            return _jpeg_size(fh)
    return None


def _jpeg_size(fh: IO[bytes]) -> tuple[int, int] | None:
    # Walk the marker segments to the first start-of-frame; EXIF blocks can be 64 KB long.
    fh.seek(2)
    for _ in range(1000):
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:
            fh.seek(-1, os.SEEK_CUR)
            continue
        if kind in (0x01, *range(0xD0, 0xD8)):
            continue
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        length = int.from_bytes(length_bytes, "big")
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            data = fh.read(5)
            if len(data) < 5:
                return None
            return int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")
        fh.seek(length - 2, os.SEEK_CUR)
    return None


def _probe_image(path: Path, fmt: str, size_bytes: int, max_pixels: int) -> MediaInfo:
    if fmt == "webp":
        with path.open("rb") as fh:
            riff = fh.read(8)
        # The RIFF header states the file's length: less on disk means a cut file.
        if len(riff) == 8 and int.from_bytes(riff[4:8], "little") + 8 > size_bytes:
            raise _truncated(fmt)
    declared = image_header_size(path, fmt)
    if declared is not None:
        # Header dimensions first: a bomb is refused before a byte of it is decoded.
        _check_pixels(declared[0], declared[1], max_pixels, "image")
    try:
        # No warnings.catch_warnings() here: it swaps process-wide state and this runs in
        # worker threads. Our header check refuses bombs long before Pillow would warn.
        with Image.open(path, formats=[_PIL_FORMAT[fmt]]) as im:
            width, height = im.size
            _check_pixels(width, height, max_pixels, "image")
            im.load()
    except Image.DecompressionBombError:
        raise MediaError(
            f"That image has far too many pixels to open safely; the limit is "
            f"{max_pixels / 1e6:g} megapixels."
        ) from None
    except MediaError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        text = str(exc).lower()
        if "truncated" in text or isinstance(exc, EOFError) or "end of file" in text:
            raise _truncated(fmt) from None
        raise _corrupt(fmt) from None
    return MediaInfo(kind="image", format=fmt, size_bytes=size_bytes, width=width, height=height)


def _iso_structure(path: Path, size: int) -> Literal["ok", "truncated", "no-index"]:
    """Walk the top-level boxes of an MP4/MOV: a box running past the end means a cut file."""
    seen_moov = False
    offset = 0
    with path.open("rb") as fh:
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return "truncated"
            box_size = int.from_bytes(header[:4], "big")
            box_type = header[4:8]
            if box_size == 1:
                if len(header) < 16:
                    return "truncated"
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - offset
            if box_size < 8:
                return "no-index" if not seen_moov else "ok"
            if box_type == b"moov":
                seen_moov = True
            if offset + box_size > size:
                return "truncated"
            offset += box_size
    return "ok" if seen_moov else "no-index"


def _ebml_vint(data: bytes, pos: int) -> tuple[int, int] | None:
    if pos >= len(data) or data[pos] == 0:
        return None
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if pos + length > len(data):
        return None
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    unknown = value == (1 << (7 * length)) - 1
    return (-1 if unknown else value), pos + length


def _webm_truncated(path: Path, size: int) -> bool:
    """True when the Segment element declares more bytes than the file holds."""
    with path.open("rb") as fh:
        head = fh.read(256)
    header = _ebml_vint(head, 4)
    if header is None:
        return True
    header_size, pos = header
    pos += header_size
    if head[pos : pos + 4] != b"\x18\x53\x80\x67":
        return False  # unusual layout; leave the verdict to the demuxer
    segment = _ebml_vint(head, pos + 4)
    if segment is None:
        return True
    seg_size, data_start = segment
    return seg_size >= 0 and data_start + seg_size > size


def _open_input(path: Path, demuxer: str | None = None) -> av.container.InputContainer:
    # Tags in a damaged (or hostile) file need not be UTF-8; they must not stop a probe.
    return av.open(str(path), format=demuxer, metadata_errors="replace")


def _rate(stream: VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def _probe_video(path: Path, fmt: str, size_bytes: int, settings: MediaSettings | None) -> MediaInfo:
    if fmt in ("mp4", "mov"):
        structure = _iso_structure(path, size_bytes)
        if structure == "truncated":
            raise _truncated(fmt)
        if structure == "no-index":
            raise MediaError(
                f"That {_LABEL[fmt]} has no index (moov box), so it is damaged or incomplete."
            )
    elif fmt == "webm" and _webm_truncated(path, size_bytes):
        raise _truncated(fmt)
    try:
        container = _open_input(path, _DEMUXER[fmt])
    except (av.error.FFmpegError, OSError, ValueError):
        raise _corrupt(fmt) from None
    with container:
        if not container.streams.video:
            raise MediaError(f"That {_LABEL[fmt]} has no picture track, only sound or data.")
        vs = container.streams.video[0]
        if vs.codec_context is None:  # a codec tag ffmpeg has no decoder for (or garbage)
            raise _corrupt(fmt)
        width, height = vs.codec_context.width, vs.codec_context.height
        if settings is not None:
            _check_pixels(width, height, settings.max_image_pixels, "video's picture")
        fps = _rate(vs)
        duration: float | None = None
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
        elif vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        frames: int | None = vs.frames or None
        if settings is not None and duration is not None and duration > settings.max_video_seconds:
            raise MediaError(
                f"That video is {duration:.1f} seconds long; the limit is "
                f"{settings.max_video_seconds:g} seconds."
            )
        if frames is None:
            frames = _count_packets(container, vs, settings)
        if duration is None and frames and fps:
            duration = frames / fps
        if settings is not None and frames is not None and frames > settings.max_video_frames:
            raise MediaError(
                f"That video has {frames} frames; the limit is {settings.max_video_frames}."
            )
        audio = _audio_stream(container)
        if settings is not None:
            # Only inputs need proof that the picture decodes; our own outputs are trusted.
            _decode_first_frame(container, vs, fmt)
        return MediaInfo(
            kind="video", format=fmt, size_bytes=size_bytes, width=width, height=height,
            frames=frames, fps=fps, duration=duration, has_audio=audio is not None,
            video_codec=vs.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )


def _audio_stream(container: av.container.InputContainer) -> AudioStream | None:
    """The first sound track that ffmpeg can decode (a garbage codec tag counts as none)."""
    for stream in container.streams.audio:
        if stream.codec_context is not None:
            return stream
    return None


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
        raise _corrupt(fmt) from None
    raise _corrupt(fmt)


def probe(path: Path, settings: MediaSettings) -> MediaInfo:
    """Sniff and probe an input, enforcing every limit in `settings`. Raises MediaError."""
    return _probe(path, settings, filename="")


def _probe(path: Path, settings: MediaSettings | None, *, filename: str) -> MediaInfo:
    size = path.stat().st_size
    if settings is not None and size > settings.max_input_bytes:
        raise MediaError(f"That file is {format_size(size)}; the limit is {format_size(settings.max_input_bytes)}.")
    fmt = sniff(path, filename=filename)
    if fmt in IMAGE_FORMATS:
        max_pixels = settings.max_image_pixels if settings is not None else 1 << 62
        return _probe_image(path, fmt, size, max_pixels)
    return _probe_video(path, fmt, size, settings)


def probe_output(path: Path) -> MediaInfo:
    """What a finished (or fitted) video really is: codec, size, fps, frames, duration, audio.
    A GIF here is a video (LTX-2 can render to GIF), probed for its frames and timing."""
    fmt = sniff(path)
    if fmt == "gif":
        return _probe_video(path, fmt, path.stat().st_size, None)
    return _probe(path, None, filename="")


# ---------------------------------------------------------------- images for the models


def parse_aspect(aspect: str | None) -> Fraction | None:
    """"16:9" -> 16/9; None or "auto" -> None (keep the image's own shape)."""
    if aspect is None or aspect.strip().lower() in ("", "auto"):
        return None
    try:
        left, right = aspect.split(":")
        ratio = Fraction(int(left), int(right))
    except (ValueError, ZeroDivisionError):
        raise MediaError(f'"{aspect}" is not an aspect ratio like 16:9.') from None
    if ratio <= 0:
        raise MediaError(f'"{aspect}" is not an aspect ratio like 16:9.')
    return ratio


def target_size(
    width: int, height: int, *, aspect: str | None = None, multiple_of: int = 32,
    max_side: int = 1280,
) -> tuple[int, int]:
    """The model-friendly size for a `width`x`height` image: the chosen (or own) aspect ratio,
    both sides multiples of `multiple_of`, the long side at most `max_side`, never upscaled
    beyond the image's own detail but at least two multiples on the short side."""
    ratio = parse_aspect(aspect) or Fraction(width, height)
    # The part of the image that survives a centred crop to the target shape.
    if Fraction(width, height) > ratio:
        crop_w, crop_h = float(height * ratio), float(height)
    else:
        crop_w, crop_h = float(width), float(width / ratio)
    limit = max(max_side, 2 * multiple_of)
    scale = min(1.0, limit / max(crop_w, crop_h))
    target_w, target_h = crop_w * scale, crop_h * scale
    # Tiny images are scaled up to the smallest size a model takes, keeping the shape.
    smallest = 2 * multiple_of
    if min(target_w, target_h) < smallest:
        grow = smallest / min(target_w, target_h)
        target_w, target_h = target_w * grow, target_h * grow

    def snap(value: float) -> int:
        return max(smallest, min(limit // multiple_of * multiple_of,
                                 round(value / multiple_of) * multiple_of))

    # Round the long side, then derive the short one from it: one rounding error instead
    # of two that can compound (81x141 would otherwise become 96x128, 30% off its shape).
    shape = target_w / target_h
    if shape >= 1:
        width = snap(target_w)
        return width, snap(width / shape)
    height = snap(target_h)
    return snap(height * shape), height


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (
        im.mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        # Transparent areas would turn black (their hidden colour); white is what a
        # person saw on screen for most logos and stickers.
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return im.convert("RGB")


def prepare_image(
    src: Path, dest_dir: Path, *, size: tuple[int, int] | None = None, multiple_of: int = 32,
    aspect: str | None = None, max_side: int = 1280, max_pixels: int = 40_000_000,
) -> Path:
    """An upright RGB image of the size the endpoint wants, written into `dest_dir`.

    With an exact `size` (0.9 image-to-video wants 768x512) the image is cover-cropped:
    the model animates whatever is in the frame, so padding bars would become part of
    the scene (and be animated); losing a sliver of the edges is the smaller harm.
    """
    fmt = sniff(src)
    if fmt not in IMAGE_FORMATS:
        raise MediaError(f"That {_LABEL[fmt]} is not an image.")
    declared = image_header_size(src, fmt)
    if declared is not None:
        _check_pixels(declared[0], declared[1], max_pixels, "image")
    try:
        with Image.open(src, formats=[_PIL_FORMAT[fmt]]) as opened:
            _check_pixels(opened.width, opened.height, max_pixels, "image")
            if fmt == "jpeg":
                # Decode JPEGs at a reduced scale when the result is much smaller: faster,
                # less memory, same quality after the final resize.
                want = size or (max_side, max_side)
                opened.draft("RGB", (want[0] * 2, want[1] * 2))
            opened.seek(0)  # GIF/WebP: the first frame
            upright = ImageOps.exif_transpose(opened)
            rgb = _to_rgb(upright)
    except Image.DecompressionBombError:
        raise MediaError("That image has far too many pixels to open safely.") from None
    except MediaError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if "truncated" in str(exc).lower():
            raise _truncated(fmt) from None
        raise _corrupt(fmt) from None
    if size is None:
        size = target_size(rgb.width, rgb.height, aspect=aspect, multiple_of=multiple_of,
                           max_side=max_side)
    out = ImageOps.fit(rgb, size, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    dest_dir.mkdir(parents=True, exist_ok=True)
    # Photos stay JPEG (a PNG of a photo is 5x bigger to upload); everything else may
    # hold sharp edges or text, which JPEG smears.
    if fmt == "jpeg":
        dest = dest_dir / f"{src.stem}-{uuid.uuid4().hex[:8]}.jpg"
        out.save(dest, "JPEG", quality=95, subsampling=0)
    else:
        dest = dest_dir / f"{src.stem}-{uuid.uuid4().hex[:8]}.png"
        out.save(dest, "PNG", compress_level=3)
    return dest


# ---------------------------------------------------------------- downloads


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _forbidden(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None and _forbidden(mapped):
            return True
        if ip.teredo is not None and _forbidden(ip.teredo[1]):
            return True
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this to stay on loopback)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_allowed(host: str, port: int, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().strip()
        if entry in (host, f"{host}:{port}", f"[{host}]:{port}"):
            return True
    return False


def _ip_allowed(ip: Address, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


_PRIVATE_TEXT = "That link points to a private network address, which I can't fetch."


async def _check_destination(host: str, port: int, allowed: Sequence[str]) -> list[str] | None:
    """Refuse private destinations. Returns the checked addresses to connect to (pinned, so a
    second DNS answer can't swap in a private one), or None when the host is allow-listed."""
    if _host_allowed(host, port, allowed):
        return None
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolve_host(host, port)
        except (OSError, UnicodeError):
            raise MediaError(f"I couldn't find the server {host}.") from None
        if not addresses:
            raise MediaError(f"I couldn't find the server {host}.")
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%")[0])
        if _forbidden(ip) and not _ip_allowed(ip, allowed):
            raise MediaError(_PRIVATE_TEXT)
    return addresses


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def safe_source(url: str) -> str:
    """A URL without its query, fragment or user info: signed links keep their secrets."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    return Path(unquote(parts.path) if parts.scheme == "file" else url).name


async def download(
    url: str, dest: Path, http: httpx.AsyncClient, settings: MediaSettings, *, max_bytes: int,
    credential: Credential | None = None, extra_allowed_hosts: Sequence[str] = (),
) -> Path:
    """Stream `url` into `dest` (at most `max_bytes`, within the download timeout), refusing
    private destinations at every redirect hop and sending `credential` only where it belongs."""
    allowed = [*settings.allow_hosts, *extra_allowed_hosts]
    timeout = settings.download_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            await _download(url, dest, http, allowed, max_bytes, credential, timeout)
    except TimeoutError:
        _unlink(dest)
        raise MediaError(f"The download took longer than {timeout:g} seconds, so I gave up.") from None
    except BaseException:
        _unlink(dest)
        raise
    return dest


async def _download(
    url: str, dest: Path, http: httpx.AsyncClient, allowed: Sequence[str], max_bytes: int,
    credential: Credential | None, timeout_seconds: float,
) -> None:
    current = url
    previous_scheme: str | None = None
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            if previous_scheme is None:
                raise MediaError("I can only fetch http:// or https:// links.")
            raise MediaError("That link redirects somewhere I can't follow (not http or https).")
        if parts.username or parts.password:
            raise MediaError("I don't fetch links with a user name or password in them.")
        host = (parts.hostname or "").lower()
        if not host:
            raise MediaError("That link has no server name in it.")
        try:
            port = parts.port or _default_port(scheme)
        except ValueError:
            raise MediaError("That link has an invalid port number.") from None
        pinned = await _check_destination(host, port, allowed)

        headers: dict[str, str] = {"Accept": "*/*", "User-Agent": "ltx-bot"}
        # A credential never rides along to another host, nor from https down to http.
        downgrade = previous_scheme == "https" and scheme == "http"
        if credential is not None and credential.allows(host, port) and not downgrade:
            headers[credential.header] = credential.value
        extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout_seconds).as_dict()}
        if pinned is not None:
            # The original authority, so virtual hosting (and TLS, via SNI) still see the name.
            headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
            if scheme == "https":
                extensions["sni_hostname"] = host
        response = await _send(http, httpx.URL(current), pinned, headers, extensions, host)
        try:
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise MediaError(f"{host} answered with a redirect to nowhere.")
                previous_scheme = scheme
                current = urljoin(current, location)
                continue
            _check_status(response.status_code, host)
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise MediaError(f"That file is {format_size(int(length))}; the limit is {format_size(max_bytes)}.")
            await _stream_to(response, dest, max_bytes)
            return
        finally:
            await response.aclose()
    raise MediaError("That link redirects too many times.")


async def _send(
    http: httpx.AsyncClient, url: httpx.URL, addresses: list[str] | None,
    headers: dict[str, str], extensions: dict[str, Any], host: str,
) -> httpx.Response:
    """GET `url`, connecting to each checked address in turn (an unreachable IPv6 address
    first in the DNS answer must not sink the download)."""
    targets: list[str | None] = list(addresses) if addresses else [None]
    for index, address in enumerate(targets):
        target = url if address is None else url.copy_with(host=address)
        # Built apart from the shared client: its default headers, cookies and auth (a fal
        # key, say) must never ride along to whatever host a user's link names.
        request = httpx.Request("GET", target, headers=headers, extensions=extensions)
        try:
            return await http.send(request, stream=True, follow_redirects=False, auth=None)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.ConnectError:
            if index + 1 < len(targets):
                continue
            raise MediaError(f"I couldn't reach {host} to download that file.") from None
        except httpx.HTTPError:
            raise MediaError(f"I couldn't reach {host} to download that file.") from None
    raise MediaError(f"I couldn't reach {host} to download that file.")


def _check_status(status: int, host: str) -> None:
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise MediaError(f"{host} refused to give me that file (HTTP {status}); it may need a login.")
    if status in (404, 410):
        raise MediaError(f"That file is gone from {host} (HTTP {status}); links to uploads may expire.")
    raise MediaError(f"{host} answered HTTP {status} instead of the file.")


async def _stream_to(response: httpx.Response, dest: Path, max_bytes: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    received = 0
    fh: IO[bytes]
    with dest.open("wb") as fh:
        try:
            # Decoded bytes, counted after decoding: a gzip bomb hits the cap like any file.
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise MediaError(f"That file is bigger than the {format_size(max_bytes)} limit.")
                fh.write(chunk)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError:
            raise MediaError("The download broke off before the file was complete.") from None


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def local_path(url: str) -> Path | None:
    """The filesystem path an attachment URL names (a path or file:// URL), else None."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if "://" in url:
        return None
    return Path(url).expanduser()


async def fetch_input(
    att: Attachment, dest_dir: Path, http: httpx.AsyncClient, settings: MediaSettings, *,
    extra_allowed_hosts: Sequence[str] = (), allow_local: bool = False,
) -> LocalMedia:
    """Download (or, for the console, copy) an attachment, then sniff, probe and check it."""
    max_bytes = settings.max_input_bytes
    if att.size is not None and att.size > max_bytes:
        raise MediaError(f"That file is {format_size(att.size)}; the limit is {format_size(max_bytes)}.")
    await asyncio.to_thread(dest_dir.mkdir, parents=True, exist_ok=True)
    dest = dest_dir / f"input-{uuid.uuid4().hex[:12]}"
    local = local_path(att.url)
    try:
        if local is not None:
            if not allow_local:
                raise MediaError("I can only fetch http:// or https:// links.")
            await asyncio.to_thread(_copy_local, local, dest, max_bytes)
            source = local.name
        else:
            await download(att.url, dest, http, settings, max_bytes=max_bytes,
                           credential=att.credential, extra_allowed_hosts=extra_allowed_hosts)
            source = safe_source(att.url)
        info = await asyncio.to_thread(_probe, dest, settings, filename=att.filename)
        final = dest.with_suffix(_EXTENSION[info.format])
        dest.rename(final)
    except BaseException:
        _unlink(dest)
        raise
    return LocalMedia(path=final, info=info, source=source, filename=att.filename)


def _copy_local(src: Path, dest: Path, max_bytes: int) -> None:
    if not src.is_file():
        raise MediaError(f"There is no file at {src.name}.")
    size = src.stat().st_size
    if size > max_bytes:
        raise MediaError(f"That file is {format_size(size)}; the limit is {format_size(max_bytes)}.")
    shutil.copyfile(src, dest)


# ---------------------------------------------------------------- fitting outputs


@dataclass
class FitResult:
    path: Path | None
    info: MediaInfo | None
    reencoded: bool
    reason: str | None


X264_PRESET = "veryfast"
MIN_AUDIO_BPS = 32_000
DEFAULT_AUDIO_BPS = 128_000
# Below this many bits per pixel H.264 turns to mush; a smaller picture looks better.
BPP_FLOOR = 0.05
# At the smallest picture we still accept a little less before giving up.
BPP_HARD_FLOOR = 0.03
MIN_SHORT_SIDE = 144
RATE_HEADROOM = 0.98
# x264 starts with its VBV buffer 90% full: that much can be spent above the rate.
VBV_INIT = 0.9


@dataclass(frozen=True)
class FitPlan:
    width: int
    height: int
    video_bps: int
    audio: Literal["copy", "encode", "none"]
    audio_bps: int
    buffer_seconds: float = 1.0


@dataclass(frozen=True)
class _Source:
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool
    audio_codec: str | None
    audio_bytes: int
    packets: int


def _read_source(src: Path) -> _Source:
    try:
        with _open_input(src) as container:
            if not container.streams.video:
                raise MediaError("That result has no picture track.")
            vs = container.streams.video[0]
            if vs.codec_context is None:
                raise MediaError("That result's picture uses a codec I can't decode.")
            audio = _audio_stream(container)
            duration = 0.0
            if container.duration:
                duration = container.duration / av.time_base
            elif vs.duration and vs.time_base:
                duration = float(vs.duration * vs.time_base)
            audio_bytes = 0
            packets = 0
            if audio is not None:
                # Summing packet sizes tells exactly what copying the sound would cost.
                for packet in container.demux(audio):
                    audio_bytes += packet.size
                    packets += 1
            fps = _rate(vs) or 25.0
            if duration <= 0:
                duration = _demuxed_duration(container, vs) or (vs.frames or 1) / fps
            return _Source(
                width=vs.codec_context.width, height=vs.codec_context.height, fps=fps,
                duration=duration, has_audio=audio is not None,
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_bytes=audio_bytes, packets=packets + (vs.frames or int(duration * fps)),
            )
    except (av.error.FFmpegError, ValueError):
        raise MediaError("That result is not a video I can read.") from None


def _demuxed_duration(container: av.container.InputContainer, vs: VideoStream) -> float:
    """Where the last picture ends, for containers (GIF) whose header gives no duration."""
    container.seek(0)
    tb = vs.time_base or Fraction(1, 100)
    end = 0
    for packet in container.demux(vs):
        if packet.pts is not None:
            end = max(end, packet.pts + (packet.duration or 0))
    return float(end * tb)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def plan_fit(source: _Source, limit_bytes: int) -> FitPlan | str:
    """Bitrates and picture size that should land under `limit_bytes`, or why none can."""
    # Measured: the moov index costs ~15 bytes per packet plus under 1 KB; allow more.
    overhead = 2048 + 20 * source.packets + limit_bytes // 100
    budget = limit_bytes - overhead
    audio: Literal["copy", "encode", "none"] = "none"
    audio_bytes = 0
    audio_bps = 0
    if source.has_audio:
        copy_ok = source.audio_codec in ("aac", "mp3")
        if copy_ok and source.audio_bytes <= budget * 0.15:
            audio, audio_bytes = "copy", source.audio_bytes
        else:
            audio_bps = int(min(DEFAULT_AUDIO_BPS, budget * 8 * 0.1 / source.duration))
            if audio_bps < MIN_AUDIO_BPS:
                audio_bps = MIN_AUDIO_BPS
            audio, audio_bytes = "encode", int(audio_bps * source.duration / 8 * 1.03)
    video_bytes = budget - audio_bytes
    # With maxrate = bitrate, the VBV bounds the whole file at rate x (duration + initial
    # buffer), so one pass lands under the limit instead of overshooting a short clip the
    # way plain ABR does (measured: +12% on 4 s of noise).
    buffer_seconds = min(1.0, max(0.25, source.duration / 5))
    seconds = source.duration + VBV_INIT * buffer_seconds
    video_bps = int(video_bytes * 8 / seconds * RATE_HEADROOM)
    width, height = _even(source.width), _even(source.height)
    cannot = (f"At {format_size(limit_bytes)} this {source.duration:.3g}-second video would be too "
              "blurry to watch, so here is a still with the link instead.")
    if video_bps <= 0:
        return cannot
    bpp = video_bps / (width * height * source.fps)
    if bpp < BPP_FLOOR:
        scale = math.sqrt(bpp / BPP_FLOOR)
        short = min(width, height)
        scale = max(scale, MIN_SHORT_SIDE / short) if short > MIN_SHORT_SIDE else 1.0
        width, height = _even(width * scale), _even(height * scale)
        if video_bps / (width * height * source.fps) < BPP_HARD_FLOOR:
            return cannot
    return FitPlan(width=width, height=height, video_bps=video_bps, audio=audio,
                   audio_bps=audio_bps, buffer_seconds=buffer_seconds)


def _transcode(src: Path, dest: Path, plan: FitPlan) -> None:
    with _open_input(src) as inp, av.open(str(dest), "w", format="mp4",
                                           options={"movflags": "+faststart"}) as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or vin.guessed_rate
        if not rate:
            rate = Fraction(25)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = plan.width, plan.height, "yuv420p"
        # Keeping the source's time base carries its timestamps (and A/V sync) over as they are.
        time_base = vin.time_base or Fraction(1, 90000)
        vout.time_base = time_base
        vout.codec_context.time_base = time_base
        vout.bit_rate = plan.video_bps
        vout.thread_count = 0
        vout.options = {
            "preset": X264_PRESET,
            "maxrate": str(plan.video_bps),
            "bufsize": str(int(plan.video_bps * plan.buffer_seconds)),
        }
        ain = _audio_stream(inp) if plan.audio != "none" else None
        aout: AudioStream | None = None
        resampler: AudioResampler | None = None
        if ain is not None and plan.audio == "copy":
            aout = out.add_stream_from_template(ain)
        elif ain is not None:
            aout = out.add_stream("aac", rate=48000)
            aout.bit_rate = plan.audio_bps
            aout.layout = "stereo"
            resampler = AudioResampler(format="fltp", layout="stereo", rate=48000)
        streams: list[VideoStream | AudioStream] = [vin]
        if ain is not None:
            streams.append(ain)
        same_picture = (vin.codec_context.width, vin.codec_context.height) == (plan.width,
                                                                              plan.height)
        for packet in inp.demux(*streams):
            if packet.stream is vin:
                for frame in packet.decode():
                    assert isinstance(frame, VideoFrame)
                    if not (same_picture and frame.format.name == "yuv420p"):
                        pts, tb = frame.pts, frame.time_base
                        frame = frame.reformat(width=plan.width, height=plan.height,
                                               format="yuv420p")
                        frame.pts, frame.time_base = pts, tb
                    # A decoded keyframe would otherwise force a keyframe in the output too.
                    frame.pict_type = PictureType.NONE
                    out.mux(vout.encode(frame))
            elif aout is not None and resampler is None:
                if packet.dts is None:
                    continue
                packet.stream = aout
                out.mux(packet)
            elif aout is not None and resampler is not None:
                for aframe in packet.decode():
                    for resampled in resampler.resample(aframe):  # type: ignore[arg-type]
                        out.mux(aout.encode(resampled))
        out.mux(vout.encode(None))
        if aout is not None and resampler is not None:
            for resampled in resampler.resample(None):
                out.mux(aout.encode(resampled))
            out.mux(aout.encode(None))


def fit_video(src: Path, dest_dir: Path, limit_bytes: int) -> FitResult:
    """`src` under `limit_bytes`: unchanged when it fits, else re-encoded (H.264 + AAC).
    Never returns a file above the limit; path None means it cannot fit (see `reason`)."""
    size = src.stat().st_size
    if size <= limit_bytes:
        return FitResult(path=src, info=probe_output(src), reencoded=False, reason=None)
    source = _read_source(src)
    plan = plan_fit(source, limit_bytes)
    if isinstance(plan, str):
        return FitResult(path=None, info=None, reencoded=False, reason=plan)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{src.stem}-fit-{uuid.uuid4().hex[:8]}.mp4"
    try:
        for attempt in range(2):
            started = time.perf_counter()
            _transcode(src, dest, plan)
            if not dest.exists():  # not one frame decoded, so nothing was ever written
                raise MediaError("The finished video is damaged, so I couldn't re-encode it.")
            got = dest.stat().st_size
            log.info("fit attempt %d: %dx%d %d bps -> %d bytes (limit %d) in %.2fs", attempt + 1,
                     plan.width, plan.height, plan.video_bps, got, limit_bytes,
                     time.perf_counter() - started)
            if got <= limit_bytes:
                return FitResult(path=dest, info=probe_output(dest), reencoded=True, reason=None)
            if attempt == 0:
                retry = _lower(plan, source, got, limit_bytes)
                if isinstance(retry, str):
                    break
                plan = retry
    except (av.error.FFmpegError, ValueError):
        _unlink(dest)
        raise MediaError("The finished video is damaged, so I couldn't re-encode it.") from None
    except BaseException:
        _unlink(dest)
        raise
    _unlink(dest)
    return FitResult(path=None, info=None, reencoded=True,
                     reason=f"Even re-encoded, this video would not fit in {format_size(limit_bytes)}, "
                            "so here is a still with the link instead.")


def _lower(plan: FitPlan, source: _Source, got: int, limit_bytes: int) -> FitPlan | str:
    """The plan shrunk by how far the first try overshot, plus a margin."""
    fixed = 2048 + 20 * source.packets
    audio = source.audio_bytes if plan.audio == "copy" else plan.audio_bps * source.duration / 8
    spent_video = max(1.0, got - fixed - audio)
    allowed_video = limit_bytes - fixed - audio - limit_bytes // 100
    factor = allowed_video / spent_video * 0.92
    if factor <= 0:
        return "cannot"
    video_bps = int(plan.video_bps * min(factor, 0.95))
    if video_bps / (plan.width * plan.height * source.fps) < BPP_HARD_FLOOR:
        return "cannot"
    return FitPlan(width=plan.width, height=plan.height, video_bps=video_bps, audio=plan.audio,
                   audio_bps=plan.audio_bps, buffer_seconds=plan.buffer_seconds)


# ---------------------------------------------------------------- frames


def _open_video(src: Path) -> tuple[av.container.InputContainer, VideoStream]:
    try:
        container = _open_input(src)
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
        end_seconds: float | None = None
        if container.duration:
            end_seconds = container.duration / av.time_base
        elif vs.duration:
            end_seconds = float(vs.duration * tb)
        target = end_seconds if seconds is None else seconds
        chosen: VideoFrame | None = None
        if target is not None and target > 0:
            # Jump to the keyframe before the target instead of decoding everything before it.
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(start + int(target / tb), stream=vs, backward=True,
                               any_frame=False)
            chosen = _scan(container, vs, None if seconds is None else seconds, tb)
        if chosen is None:
            try:
                container.seek(start, stream=vs, backward=True, any_frame=False)
            except av.error.FFmpegError:
                raise MediaError("That video has no frames I can decode.") from None
            chosen = _scan(container, vs, None if seconds is None else seconds, tb)
        if chosen is None:
            raise MediaError("That video has no frames I can decode.")
        return chosen


def _scan(container: av.container.InputContainer, vs: VideoStream, seconds: float | None,
          tb: Fraction) -> VideoFrame | None:
    last: VideoFrame | None = None
    try:
        for frame in container.decode(vs):
            if seconds is not None and frame.pts is not None and float(frame.pts * tb) >= seconds:
                return frame
            last = frame
    except av.error.FFmpegError:
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
    middle = (info.duration or 0.0) / 2
    frame = _frame_at(src, middle)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{src.stem}-poster-{uuid.uuid4().hex[:8]}.jpg"
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    image.save(dest, "JPEG", quality=88)
    return dest


def media_kind(fmt: str) -> MediaKind:
    return "image" if fmt in IMAGE_FORMATS else "video"


# ---------------------------------------------------------------- temporary files

ROOT_NAME = "ltx-bot"
_held_locks: dict[Path, int] = {}
_held_guard = threading.Lock()  # work_dir runs on the event loop and in worker threads


def temp_root(settings: MediaSettings) -> Path:
    base = Path(settings.tmp_dir) if settings.tmp_dir else Path(tempfile.gettempdir())
    return base / ROOT_NAME


def work_dir(settings: MediaSettings) -> Path:
    """This process's scratch directory. It holds an flock for the process's lifetime, so a
    restart (or another bot process sharing the root) can tell leftovers from live work."""
    root = temp_root(settings)
    with _held_guard:
        for path in _held_locks:
            if path.parent == root and path.is_dir():
                return path
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"p{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held_locks[path] = fd
        return path


def release_work_dir(settings: MediaSettings) -> None:
    """At a clean shutdown: drop this process's lock and its scratch directory, so the next
    start has nothing stale to sweep. (After a crash, `cleanup_stale` does it instead.)"""
    root = temp_root(settings)
    with _held_guard:
        for path in [p for p in _held_locks if p.parent == root]:
            os.close(_held_locks.pop(path))
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(settings: MediaSettings) -> Iterator[Path]:
    """A fresh directory inside `work_dir` for one job, removed afterwards, success or not."""
    path = work_dir(settings) / uuid.uuid4().hex[:12]
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cleanup_stale(settings: MediaSettings) -> int:
    """Remove what dead processes left under the temp root. Returns how many entries went.
    A directory whose lock can be taken has no live owner; loose files are stale once older
    than this process."""
    root = temp_root(settings)
    if not root.is_dir():
        return 0
    born = _process_start()
    removed = 0
    for entry in root.iterdir():
        if entry in _held_locks:
            continue
        if entry.is_dir() and not entry.is_symlink():
            lock = entry / ".lock"
            if lock.exists():
                try:
                    fd = os.open(lock, os.O_RDWR)
                except OSError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue  # a live process owns it
                shutil.rmtree(entry, ignore_errors=True)
                os.close(fd)
                removed += 1
                continue
        try:
            if entry.lstat().st_mtime >= born:
                continue
        except OSError:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            _unlink(entry)
        removed += 1
    return removed


_IMPORTED_AT = time.time()


def _process_start() -> float:
    """When this process started (Linux /proc), else when this module was imported."""
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT
