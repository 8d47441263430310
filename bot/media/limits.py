"""The limits an input picture is held to, and what decoding one will cost in memory.

A file's header is read before a byte of its picture is decoded; these limits are
checked against it, in this order, each refusal naming its limit:

1. each side at most `max_side` pixels (a 1 x 39,000,000 strip is 39 megapixels, under a
   pixel limit, and still costs a gigabyte to resize);
2. the long side at most `max_aspect` times the short one;
3. at most `max_pixels` pixels;
4. the memory the decode and its one working copy will take, at most `max_memory`:
   5 bytes a pixel of `max_pixels` (an RGBA picture at the pixel limit, plus room to
   reduce it). Formats whose decoders hold more than the picture (progressive JPEG,
   WebP) meet this limit before the pixel limit.

The same checks run again on what Pillow opened (a GIF's first frame may overhang its
declared screen), still before decoding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.config import MediaSettings
from bot.errors import MediaError
from bot.media.headers import ImageHeader
from bot.media.sizes import format_size

# Decoded picture plus one working copy, per pixel of the pixel limit.
MEMORY_BYTES_PER_PIXEL = 5
# Bytes a pixel of the RGB working copy (Pillow keeps RGB in 4).
RGB_BYTES = 4
_DEFAULTS = MediaSettings()


@dataclass(frozen=True)
class ImageLimits:
    """The limits one probe or preparation is held to (see the module docstring)."""

    max_pixels: int = _DEFAULTS.max_image_pixels
    max_side: int = _DEFAULTS.max_image_side
    max_aspect: float = _DEFAULTS.max_image_aspect

    @classmethod
    def of(cls, settings: MediaSettings) -> ImageLimits:
        return cls(settings.max_image_pixels, settings.max_image_side, settings.max_image_aspect)

    @property
    def max_memory(self) -> int:
        return MEMORY_BYTES_PER_PIXEL * self.max_pixels

    def check_size(self, width: int, height: int, what: str = "image") -> None:
        """Sides, shape and pixels, in that order; a MediaError names the limit broken."""
        if width <= 0 or height <= 0:
            raise MediaError(f"That {what} has no picture size, so I can't use it.")
        if max(width, height) > self.max_side:
            raise MediaError(f"That {what} is {width}x{height} pixels; the limit is "
                             f"{self.max_side} pixels on each side.")
        ratio = max(width, height) / min(width, height)
        if ratio > self.max_aspect:
            shown = f"{ratio:.0f}" if ratio >= 100 else f"{ratio:.1f}".removesuffix(".0")
            raise MediaError(f"That {what} is {width}x{height} pixels, one side {shown} times the "
                             f"other; the limit is {self.max_aspect:g} times.")
        if width * height > self.max_pixels:
            raise MediaError(
                f"That {what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
                f"the limit is {self.max_pixels / 1e6:g} megapixels."
            )

    def check_memory(self, needed: int, header: ImageHeader, label: str) -> None:
        """Refuse a decode whose estimate (`needed` bytes) is over `max_memory`."""
        if needed > self.max_memory:
            limit = format_size(self.max_memory)
            shown = format_size(needed)
            about = f"over {limit}" if shown == limit else f"about {shown}"
            raise MediaError(
                f"That {label} is too costly to open safely: {header.width}x{header.height} "
                f"pixels would take {about} of memory; the limit is {limit}."
            )


def decode_bytes(header: ImageHeader, scale: int = 1) -> int:
    """Memory that decoding the picture at 1/`scale` of its size holds (scale: JPEG only)."""
    scale = scale if header.scalable else 1
    width, height = math.ceil(header.width / scale), math.ceil(header.height / scale)
    fixed = header.fixed_bytes_per_pixel * header.width * header.height
    return width * height * header.bytes_per_pixel + math.ceil(fixed)


def working_bytes(width: int, height: int) -> int:
    """Memory of an RGB working copy of `width`x`height`."""
    return width * height * RGB_BYTES
