"""What a file is: judged from its first bytes, or guessed from a platform's hints.

`sniff` decides: an input is what its bytes say, never what its name or claimed type
says. Before a download, though, routing and messages need a guess (image or video?)
from what the platform tells about an attachment: `kind_from_hint` is the one guesser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple, overload
from urllib.parse import urlsplit

from bot.errors import MediaError
from bot.model import MediaKind
from bot.ports import AttachmentKind

ACCEPTED = ("PNG, JPEG, WebP or GIF images and MP4, WebM or MOV videos, "
            "and MP3, WAV, M4A/AAC, Ogg/Opus or FLAC audio")
SNIFF_BYTES = 4096


class Format(NamedTuple):
    """One accepted format: what it is, how its files end, and its name in messages."""

    kind: MediaKind
    extension: str  # what a file of this format is saved as
    label: str  # its name in messages: "That MP4 video is damaged"


FORMATS: dict[str, Format] = {
    "png": Format("image", ".png", "PNG image"),
    "jpeg": Format("image", ".jpg", "JPEG image"),
    "webp": Format("image", ".webp", "WebP image"),
    "gif": Format("image", ".gif", "GIF image"),
    "mp4": Format("video", ".mp4", "MP4 video"),
    "webm": Format("video", ".webm", "WebM video"),
    "mov": Format("video", ".mov", "MOV video"),
    "mp3": Format("audio", ".mp3", "MP3 audio file"),
    "wav": Format("audio", ".wav", "WAV audio file"),
    "m4a": Format("audio", ".m4a", "M4A audio file"),
    "aac": Format("audio", ".aac", "AAC audio file"),
    "ogg": Format("audio", ".ogg", "Ogg audio file"),
    "flac": Format("audio", ".flac", "FLAC audio file"),
}
IMAGE_FORMATS = tuple(name for name, row in FORMATS.items() if row.kind == "image")
AUDIO_FORMATS = tuple(name for name, row in FORMATS.items() if row.kind == "audio")

# Name endings (and file types as platforms name them) of media we take.
_KIND_BY_EXTENSION: dict[str, MediaKind] = {
    **dict.fromkeys(("png", "jpg", "jpeg", "webp", "gif"), "image"),
    **dict.fromkeys(("mp4", "webm", "mov", "m4v"), "video"),
    **dict.fromkeys(("mp3", "wav", "m4a", "aac", "ogg", "oga", "opus", "flac"), "audio"),
}
_KIND_BY_MIME: dict[str, MediaKind] = {"image": "image", "video": "video", "audio": "audio"}

# (accepted format or None, what the bytes are in words)
Verdict = tuple[str | None, str]

_UNKNOWN: Verdict = (None, "a file of a type I don't recognise")

_ACCEPTED_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "a PNG image"),
    (b"\xff\xd8\xff", "jpeg", "a JPEG image"),
    (b"GIF87a", "gif", "a GIF image"),
    (b"GIF89a", "gif", "a GIF image"),
    (b"fLaC", "flac", "a FLAC audio file"),
)

_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
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
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"{\\rtf", "an RTF document"),
)

_RIFF_KINDS: dict[bytes, Verdict] = {
    b"WEBP": ("webp", "a WebP image"),
    b"WAVE": ("wav", "a WAV audio file"),
    b"AVI ": (None, "an AVI video"),
}

# ISO base media files (after `ftyp`) by brand; any other brand is taken as MP4.
_ISO_BRANDS: dict[bytes, Verdict] = {
    **dict.fromkeys((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                     b"mif1", b"msf1"), (None, "a HEIC image")),
    b"avif": (None, "an AVIF image"),
    b"avis": (None, "an AVIF image"),
    b"M4A ": ("m4a", "an M4A audio file"),
    b"M4B ": ("m4a", "an M4A audio file"),
    b"M4P ": (None, "a copy-protected M4A audio file"),
    b"qt  ": ("mov", "a MOV video"),
}
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_EBML = b"\x1a\x45\xdf\xa3"
_HTML = (b"<!doctype html", b"<html", b"<head", b"<body")


def _accepted_magic(head: bytes) -> Verdict | None:
    for magic, fmt, words in _ACCEPTED_MAGIC:
        if head.startswith(magic):
            return fmt, words
    return None


def _riff(head: bytes) -> Verdict | None:
    if head[:4] != b"RIFF" or len(head) < 12:
        return None
    return _RIFF_KINDS.get(head[8:12], (None, "a RIFF file"))


def _iso(head: bytes) -> Verdict | None:
    if head[4:8] != b"ftyp" or len(head) < 12:
        return None
    return _ISO_BRANDS.get(head[8:12], ("mp4", "an MP4 video"))


def _quicktime(head: bytes) -> Verdict | None:
    # QuickTime files older than the ftyp box start straight with an atom.
    return ("mov", "a MOV video") if head[4:8] in _QUICKTIME_ATOMS else None


def _ebml(head: bytes) -> Verdict | None:
    if not head.startswith(_EBML):
        return None
    return ("webm", "a WebM video") if b"webm" in head[:64] else (None, "an MKV video")


def _other_magic(head: bytes) -> Verdict | None:
    for magic, words in _OTHER_MAGIC:
        if head.startswith(magic):
            return None, words
    return None


# The first page of an Ogg stream names its codec: sound we take, or something else.
_OGG_CODECS: tuple[tuple[bytes, Verdict], ...] = (
    (b"OpusHead", ("ogg", "an Ogg Opus audio file")),
    (b"\x01vorbis", ("ogg", "an Ogg Vorbis audio file")),
    (b"\x7fFLAC", ("ogg", "an Ogg FLAC audio file")),
    (b"\x80theora", (None, "an Ogg video")),
)


def _ogg(head: bytes) -> Verdict | None:
    if not head.startswith(b"OggS"):
        return None
    for marker, verdict in _OGG_CODECS:
        if marker in head[:256]:
            return verdict
    return None, "an Ogg file of a kind I don't take"


def _mpeg_audio(head: bytes) -> Verdict | None:
    """A bare MPEG audio frame: MP3 (layers I-III) or AAC in ADTS frames (layer 0)."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:
        return "aac", "an AAC audio file"
    return ("mp3", "an MP3 audio file") if head[1] & 0x06 else None


def _id3(head: bytes) -> Verdict | None:
    """An ID3 tag leads most MP3 files (and a few AAC ones): judge what follows it."""
    if not head.startswith(b"ID3") or len(head) < 10:
        return None
    size = 10 + sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(head[6:10]))
    after = head[size:]
    # A tag longer than the bytes sniffed hides what follows: the demuxer will tell.
    return (_mpeg_audio(after) if after else None) or ("mp3", "an MP3 audio file")


# In order: the accepted formats' own signatures win over looser matches further down.
_CHECKS: tuple[Callable[[bytes], Verdict | None], ...] = (
    _accepted_magic, _riff, _iso, _quicktime, _ebml, _ogg, _id3, _other_magic, _mpeg_audio,
)


def _text(head: bytes) -> Verdict:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_HTML):
        # A file host answers a missing token with its login page: say so plainly.
        return None, "a web page (HTML), not a file"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return None, "an SVG image"
    if text.startswith((b"{", b"[")):
        return None, "a JSON or text file"
    return (None, "a text file") if _printable(head) else _UNKNOWN


def _printable(head: bytes) -> bool:
    # The read may cut the last UTF-8 character in half: leave the tail out.
    try:
        decoded = head[: max(0, len(head) - 4)].decode("utf-8") if len(head) > 4 else head.decode()
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in decoded)


def sniff_bytes(head: bytes) -> Verdict:
    """(accepted format or None, what the bytes are in words) from a file's first bytes."""
    if not head:
        return None, "an empty file"
    for check in _CHECKS:
        verdict = check(head)
        if verdict is not None:
            return verdict
    return _text(head)


def sniff(path: Path, *, filename: str = "") -> str:
    """The accepted format of the file at `path`, or a MediaError saying what it really is."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    fmt, words = sniff_bytes(head)
    if fmt is not None:
        return fmt
    if not head:
        raise MediaError(f"That file is empty (0 bytes). I accept {ACCEPTED}.")
    suffix = PurePosixPath(filename.lower()).suffix
    claimed = ""
    if suffix.lstrip(".") in _KIND_BY_EXTENSION:
        claimed = f" (its name ends in {suffix}, but the bytes say otherwise)"
    raise MediaError(f"That file is {words}{claimed}. I accept {ACCEPTED}.")


def kind_of_file(path: Path) -> MediaKind:
    """Image, video or audio, by the bytes of a local file; a MediaError says what else it is."""
    return FORMATS[sniff(path)].kind


# ---------------------------------------------------------------- hints before a download

@overload
def kind_from_hint(content_type: str | None = None, name: str = "", *,
                   filetype: str | None = None) -> AttachmentKind: ...


@overload
def kind_from_hint(content_type: str | None = None, name: str = "", *,
                   filetype: str | None = None, default: MediaKind) -> MediaKind: ...


def kind_from_hint(content_type: str | None = None, name: str = "", *,
                   filetype: str | None = None,
                   default: AttachmentKind = "unknown") -> AttachmentKind:
    """Image or video as a platform's hints say, before any byte is downloaded.

    The first that speaks wins: the content type (`image/...`, `video/...`), then a file
    type the platform names (`filetype`: "png", "mov"), then the ending of `name` (a file
    name, a path or a URL, whose query is ignored). `default` when none says anything.
    Only a guess for routing and messages: `sniff` judges the bytes once they are here.
    """
    major, slash, _ = (content_type or "").strip().lower().partition("/")
    kind = _KIND_BY_MIME.get(major) if slash else None
    if kind is None:
        kind = _KIND_BY_EXTENSION.get((filetype or "").strip().lower().lstrip("."))
    if kind is None:
        kind = _KIND_BY_EXTENSION.get(_extension(name))
    return default if kind is None else kind


def _extension(name: str) -> str:
    path = urlsplit(name).path if "://" in name else name
    return PurePosixPath(path.lower()).suffix.lstrip(".")
