"""What a file's headers declare, read without decoding anything.

Probing checks these first: a decompression bomb is refused by its declared size
before a byte of it is decoded, and a file cut short is told apart from a damaged
one by the lengths its containers promise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

Size = tuple[int, int]


def _png_size(head: bytes) -> Size | None:
    if head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _gif_size(head: bytes) -> Size | None:
    if len(head) < 10:
        return None
    return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")


def _webp_size(head: bytes) -> Size | None:
    if len(head) < 30:
        return None
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


_SIZE_FROM_HEAD: dict[str, Callable[[bytes], Size | None]] = {
    "png": _png_size, "gif": _gif_size, "webp": _webp_size,
}


def image_header_size(path: Path, fmt: str) -> Size | None:
    """Width and height as the file's header declares them, read without decoding anything
    (None when the header is too damaged to say)."""
    with path.open("rb") as fh:
        if fmt == "jpeg":
            return _jpeg_size(fh)
        from_head = _SIZE_FROM_HEAD.get(fmt)
        return from_head(fh.read(64)) if from_head is not None else None


# Start-of-frame markers that are not: DHT, JPG (reserved), DAC.
_NOT_FRAMES = (0xC4, 0xC8, 0xCC)
# Markers without a length: TEM and the restart markers.
_BARE_MARKERS = (0x01, *range(0xD0, 0xD8))


def _jpeg_size(fh: IO[bytes]) -> Size | None:
    # Walk the marker segments to the first start-of-frame; EXIF blocks can be 64 KB long.
    fh.seek(2)
    for _ in range(1000):
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte: the marker starts one byte later
            fh.seek(-1, os.SEEK_CUR)
            continue
        if kind in _BARE_MARKERS:
            continue
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        if 0xC0 <= kind <= 0xCF and kind not in _NOT_FRAMES:
            data = fh.read(5)
            return None if len(data) < 5 else (int.from_bytes(data[3:5], "big"),
                                               int.from_bytes(data[1:3], "big"))
        fh.seek(int.from_bytes(length_bytes, "big") - 2, os.SEEK_CUR)
    return None


def riff_cut_short(path: Path, size: int) -> bool:
    """True when a RIFF file (WebP) states a length beyond what is on disk."""
    with path.open("rb") as fh:
        riff = fh.read(8)
    return len(riff) == 8 and int.from_bytes(riff[4:8], "little") + 8 > size


IsoStructure = Literal["ok", "truncated", "no-index"]


def iso_structure(path: Path, size: int) -> IsoStructure:
    """Walk the top-level boxes of an MP4/MOV: a box running past the end means a cut file."""
    seen_moov = False
    offset = 0
    with path.open("rb") as fh:
        while offset < size:
            fh.seek(offset)
            box = _iso_box(fh.read(16), size - offset)
            if box is None:
                return "truncated"
            box_size, box_type = box
            if box_size < 8:
                return "ok" if seen_moov else "no-index"
            seen_moov = seen_moov or box_type == b"moov"
            if offset + box_size > size:
                return "truncated"
            offset += box_size
    return "ok" if seen_moov else "no-index"


def _iso_box(header: bytes, remaining: int) -> tuple[int, bytes] | None:
    """(size, type) of the box whose header this is; None when the header itself is cut."""
    if len(header) < 8:
        return None
    box_size = int.from_bytes(header[:4], "big")
    if box_size == 1:  # a 64-bit size follows the type
        if len(header) < 16:
            return None
        box_size = int.from_bytes(header[8:16], "big")
    elif box_size == 0:  # the box runs to the end of the file
        box_size = remaining
    return box_size, header[4:8]


def _ebml_vint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, position after it) of the EBML variable-size integer at `pos`; -1 = unknown."""
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


_SEGMENT_ID = b"\x18\x53\x80\x67"


def webm_truncated(path: Path, size: int) -> bool:
    """True when the Segment element declares more bytes than the file holds."""
    with path.open("rb") as fh:
        head = fh.read(256)
    header = _ebml_vint(head, 4)
    if header is None:
        return True
    header_size, pos = header
    pos += header_size
    if head[pos : pos + 4] != _SEGMENT_ID:
        return False  # unusual layout; leave the verdict to the demuxer
    segment = _ebml_vint(head, pos + 4)
    if segment is None:
        return True
    seg_size, data_start = segment
    return seg_size >= 0 and data_start + seg_size > size
