"""What a file's headers declare, read without decoding anything.

Probing checks these first: a decompression bomb is refused by its declared size
before a byte of it is decoded, and a file cut short is told apart from a damaged
one by the lengths its containers promise.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

Size = tuple[int, int]

# How many parts a file may have before its picture (PNG: in all), far more than real
# files have. Pillow reads such parts one at a time in Python: millions of empty ones
# (a 48 MB PNG of empty chunks took Pillow 25 s; 12 MB of JPEG comments, 8 s) are an
# attack on the CPU, refused before Pillow sees them.
JPEG_PARTS = 1000  # segments, fill and stray bytes before the first scan
GIF_PARTS = 20_000  # extensions, their data blocks and stray bytes before the first frame
PNG_PARTS = 100_000  # chunks (an encoder writing 8 KB IDAT chunks makes 6,400 in 50 MB)


class TooManyParts(Exception):
    """A file made of more parts than `limit` (see JPEG_PARTS and its siblings)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} parts")
        self.limit = limit


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header declares, and what decoding it will hold in memory.

    `bytes_per_pixel` is the decoded picture as Pillow holds it (1 for grey or palette,
    2 for 16-bit grey, 4 for anything with colour or alpha). `fixed_bytes_per_pixel` is
    held at full size however small the picture is decoded: a progressive (or multi-scan)
    JPEG keeps every DCT coefficient of every component, and Pillow's WebP decoder keeps
    two RGBA canvases plus a copy of the frame. `scalable`: JPEG decodes at 1/2, 1/4 or 1/8
    of its size (Pillow's draft mode) at a fraction of the cost."""

    width: int
    height: int
    bytes_per_pixel: int = 4
    fixed_bytes_per_pixel: float = 0.0
    scalable: bool = False

    @property
    def size(self) -> Size:
        return self.width, self.height


def _png_header(head: bytes) -> ImageHeader | None:
    if head[12:16] != b"IHDR" or len(head) < 26:
        return None
    depth, color_type = head[24], head[25]
    grey_or_palette = color_type in (0, 3)
    bpp = (2 if depth == 16 else 1) if grey_or_palette else 4
    return ImageHeader(int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), bpp)


def _gif_header(fh: IO[bytes]) -> ImageHeader | None:
    head = fh.read(13)
    if len(head) < 13:
        return None
    # The logical screen; Pillow grows the picture to a first frame that overhangs it,
    # which is why the opened picture is checked again.
    header = ImageHeader(int.from_bytes(head[6:8], "little"),
                         int.from_bytes(head[8:10], "little"), 1)
    if head[10] & 0x80:  # the global colour table
        fh.seek(3 * (2 << (head[10] & 7)), os.SEEK_CUR)
    parts = 0
    while (kind := fh.read(1)) not in (b"", b",", b";"):
        # An extension (or a stray byte, which Pillow skips too) before the first frame.
        parts += 1
        if kind == b"!":
            fh.read(1)  # its label
            while (size := fh.read(1)) not in (b"", b"\x00"):
                parts += 1
                fh.seek(size[0], os.SEEK_CUR)
                if parts > GIF_PARTS:
                    break
        if parts > GIF_PARTS:
            raise TooManyParts(GIF_PARTS)
    return header


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


def _webp_header(head: bytes) -> ImageHeader | None:
    size = _webp_size(head)
    # Pillow decodes every WebP through libwebp's animation decoder: two RGBA canvases in
    # the decoder, the frame handed over as bytes, then the picture itself (measured:
    # 16 bytes a pixel).
    return None if size is None else ImageHeader(*size, bytes_per_pixel=4,
                                                 fixed_bytes_per_pixel=12.0)


_HEADER_FROM_HEAD: dict[str, Callable[[bytes], ImageHeader | None]] = {
    "png": _png_header, "webp": _webp_header,
}


def image_header(path: Path, fmt: str) -> ImageHeader | None:
    """What the file's header declares, read without decoding anything (None when the
    header is too damaged to say). Raises TooManyParts for a JPEG or GIF made of more
    parts before its picture than any real one."""
    with path.open("rb") as fh:
        if fmt == "jpeg":
            return _jpeg_header(fh)
        if fmt == "gif":
            return _gif_header(fh)
        from_head = _HEADER_FROM_HEAD.get(fmt)
        return from_head(fh.read(64)) if from_head is not None else None


def image_header_size(path: Path, fmt: str) -> Size | None:
    """Width and height as the file's header declares them (None when it can't say)."""
    header = image_header(path, fmt)
    return None if header is None else header.size


# Start-of-frame markers that are not: DHT, JPG (reserved), DAC.
_NOT_FRAMES = (0xC4, 0xC8, 0xCC)
# Progressive start-of-frame markers (Huffman and arithmetic, plain and differential).
_PROGRESSIVE = (0xC2, 0xC6, 0xCA, 0xCE)
# Markers without a length: TEM and the restart markers.
_BARE_MARKERS = (0x01, *range(0xD0, 0xD8))
_SOS = 0xDA


@dataclass
class _JpegFrame:
    width: int
    height: int
    progressive: bool
    sampling: list[tuple[int, int]]  # (horizontal, vertical) per component


def _jpeg_segments(fh: IO[bytes]) -> Iterator[tuple[int, IO[bytes], int]]:
    """(marker, file at its payload, payload length) for each segment up to the first scan;
    TooManyParts past JPEG_PARTS segments, fill and stray bytes."""
    fh.seek(2)
    for _ in range(JPEG_PARTS):
        marker = fh.read(2)
        if len(marker) < 2:
            return
        kind = marker[1]
        if marker[0] != 0xFF or kind == 0xFF:
            # A stray byte (skipped, as libjpeg does) or a fill byte: the marker starts
            # one byte later.
            fh.seek(-1, os.SEEK_CUR)
            continue
        if kind in _BARE_MARKERS:
            continue
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return
        length = int.from_bytes(length_bytes, "big") - 2
        start = fh.tell()
        yield kind, fh, length
        if kind == _SOS:
            return
        fh.seek(start + length)
    raise TooManyParts(JPEG_PARTS)


def _jpeg_frame(data: bytes, kind: int) -> _JpegFrame | None:
    if len(data) < 6:
        return None
    count = data[5]
    sampling = [(data[7 + 3 * i] >> 4, data[7 + 3 * i] & 0x0F) for i in range(count)
                if 8 + 3 * i <= len(data)]
    if not sampling or any(h == 0 or v == 0 for h, v in sampling):
        return None
    return _JpegFrame(int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big"),
                      kind in _PROGRESSIVE, sampling)


def _jpeg_header(fh: IO[bytes]) -> ImageHeader | None:
    # Walk the marker segments to the first scan; EXIF blocks can be 64 KB long.
    frame: _JpegFrame | None = None
    multi_scan = False
    for kind, segment, length in _jpeg_segments(fh):
        if frame is None and 0xC0 <= kind <= 0xCF and kind not in _NOT_FRAMES:
            frame = _jpeg_frame(segment.read(min(length, 6 + 3 * 255)), kind)
            if frame is None:
                return None
        elif kind == _SOS and frame is not None:
            # A first scan without every component means more scans: libjpeg then
            # buffers the whole image's coefficients, as for a progressive file.
            scan = segment.read(1)
            multi_scan = len(scan) == 1 and scan[0] < len(frame.sampling)
    if frame is None:
        return None
    coefficients = 0.0
    if frame.progressive or multi_scan:
        h_max = max(h for h, _ in frame.sampling)
        v_max = max(v for _, v in frame.sampling)
        # 64 two-byte coefficients per 8x8 block: 2 bytes a pixel of each component.
        coefficients = sum(2.0 * h * v / (h_max * v_max) for h, v in frame.sampling)
    return ImageHeader(frame.width, frame.height, 1 if len(frame.sampling) == 1 else 4,
                       coefficients, scalable=True)


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


# ---------------------------------------------------------------- PNG data, without decoding

PngData = Literal["ok", "truncated", "damaged"]
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))
_PIECE = 1 << 16


def _png_raw_bytes(width: int, height: int, depth: int, color_type: int, interlaced: bool) -> int:
    """Bytes the image data inflates to: a filter byte and the packed samples per row."""
    bits = _PNG_CHANNELS.get(color_type, 4) * depth
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns, rows = -(-max(0, width - x0) // dx), -(-max(0, height - y0) // dy)
        if columns and rows:
            total += rows * (1 + (columns * bits + 7) // 8)
    return total


@dataclass
class _Inflation:
    """IDAT data inflated piece by piece and thrown away: only its amount is kept."""

    expected: int
    produced: int = 0
    inflater: zlib._Decompress = field(default_factory=zlib.decompressobj)

    def feed(self, data: bytes) -> None:
        # Once the picture is complete, later data would never be decoded: don't inflate
        # it either (a tiny PNG may carry gigabytes' worth).
        while data and self.produced < self.expected and not self.inflater.eof:
            self.produced += len(self.inflater.decompress(data, _PIECE))
            data = self.inflater.unconsumed_tail


def png_data(path: Path) -> PngData:
    """Whether a PNG's chunks are whole with matching checksums and its image data inflates
    to the full picture, in constant memory: the proof that it decodes, without holding
    the decoded picture. Ancillary chunks' checksums are not held against it, as libpng
    doesn't either. Raises TooManyParts past PNG_PARTS chunks."""
    with path.open("rb") as fh:
        head = fh.read(33)
        if len(head) < 33 or head[12:16] != b"IHDR":
            return "truncated" if len(head) < 33 else "damaged"
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        inflation = _Inflation(_png_raw_bytes(width, height, head[24], head[25], head[28] == 1))
        fh.seek(8)
        try:
            verdict = _png_chunks(fh, inflation)
        except zlib.error:
            return "damaged"
    if verdict != "ok":
        return verdict
    if inflation.produced < inflation.expected:
        return "damaged" if inflation.inflater.eof else "truncated"
    return "ok"


def _png_chunks(fh: IO[bytes], inflation: _Inflation) -> PngData:
    for _ in range(PNG_PARTS):
        head = fh.read(8)
        if len(head) < 8:
            return "truncated"  # no IEND: the file ends early
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if length >= 1 << 31:
            return "damaged"
        crc, remaining = zlib.crc32(kind), length
        while remaining:
            piece = fh.read(min(remaining, _PIECE))
            if not piece:
                return "truncated"
            remaining -= len(piece)
            crc = zlib.crc32(piece, crc)
            if kind == b"IDAT":
                inflation.feed(piece)
        stored = fh.read(4)
        if len(stored) < 4:
            return "truncated"
        critical = kind[0:1].isupper()
        if critical and int.from_bytes(stored, "big") != crc:
            return "damaged"
        if kind == b"IEND":
            return "ok"
    raise TooManyParts(PNG_PARTS)
