"""Opening an input picture with Pillow, checked before any decoding, and the probe's
proof that it decodes.

`open_image` checks the header's declared size and the decode's memory estimate
(`bot.media.limits`) before Pillow opens the file (opening a WebP already allocates
its canvases), then checks again what Pillow opened, still before decoding. Only the
first frame of an animation is ever decoded.

`prove_decodes` is the probe's check, as cheap as each format allows: a PNG's chunks
and image data are verified in constant memory without decoding (and before Pillow
reads a chunk); a JPEG is decoded
at 1/8 of its size (every byte still passes the entropy decoder); a GIF's first frame
and a WebP are decoded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from bot.errors import MediaError
from bot.media.headers import ImageHeader, TooManyParts, image_header, png_data
from bot.media.limits import ImageLimits, decode_bytes
from bot.media.sniff import FORMATS

PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
# What Pillow raises on bytes it cannot make sense of.
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)
# A JPEG's smallest decode (libjpeg scales by 1/8 at most).
SMALLEST_SCALE = 8
# Memory a decode will need, given what will be decoded.
Estimate = Callable[[ImageHeader], int]


def truncated(fmt: str) -> MediaError:
    return MediaError(
        f"That {FORMATS[fmt].label} is incomplete: the file ends early (an interrupted upload?). "
        "Please send it again."
    )


def corrupt(fmt: str) -> MediaError:
    return MediaError(f"That {FORMATS[fmt].label} is damaged: I couldn't decode it.")


@contextlib.contextmanager
def pillow_errors(fmt: str) -> Iterator[None]:
    """Pillow's failures, in words: cut files apart from damaged ones."""
    try:
        yield
    except Image.DecompressionBombError:
        # Pillow's own guard, far above our limits: reached only if those were raised.
        raise MediaError("That image has far too many pixels to open safely.") from None
    except MediaError:
        raise
    except _PILLOW_ERRORS as exc:
        text = str(exc).lower()
        if "truncated" in text or isinstance(exc, EOFError) or "end of file" in text:
            raise truncated(fmt) from None
        raise corrupt(fmt) from None


def _pillow_view(im: Image.Image, declared: ImageHeader | None) -> ImageHeader:
    """The header as Pillow opened it: its size and mode, the declared fixed costs (for a
    JPEG whose header we could not read, as if it were progressive: the worst case)."""
    bpp = 1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4
    if declared is not None:
        return ImageHeader(im.width, im.height, bpp, declared.fixed_bytes_per_pixel,
                           declared.scalable)
    if im.format != "JPEG":
        return ImageHeader(im.width, im.height, bpp)
    sampling = [(max(1, h), max(1, v)) for _, h, v, _ in getattr(im, "layer", None) or []]
    sampling = sampling or [(1, 1)] * 3
    h_max, v_max = max(h for h, _ in sampling), max(v for _, v in sampling)
    coefficients = sum(2.0 * h * v / (h_max * v_max) for h, v in sampling)
    return ImageHeader(im.width, im.height, bpp, coefficients, scalable=True)


def _too_many_parts(fmt: str, exc: TooManyParts) -> MediaError:
    return MediaError(f"That {FORMATS[fmt].label} is made of more than {exc.limit} parts, far "
                      "more than any real image has, so I won't open it.")


def declared_header(path: Path, fmt: str, limits: ImageLimits | None,
                    needed: Estimate) -> ImageHeader | None:
    """The header the file declares, checked against `limits` (None: our own files)."""
    try:
        declared = image_header(path, fmt)
    except TooManyParts as exc:
        raise _too_many_parts(fmt, exc) from None
    if limits is not None and declared is not None:
        check(declared, limits, needed, fmt)
    return declared


def check(header: ImageHeader, limits: ImageLimits, needed: Estimate, fmt: str) -> None:
    limits.check_size(header.width, header.height)
    limits.check_memory(needed(header), header, FORMATS[fmt].label)


@contextlib.contextmanager
def open_image(path: Path, fmt: str, limits: ImageLimits | None,
               needed: Estimate) -> Iterator[tuple[Image.Image, ImageHeader]]:
    """The picture opened by Pillow as the sniffed format only, nothing decoded yet, with
    its header as Pillow sees it. `limits` None: our own files, held to none."""
    declared = declared_header(path, fmt, limits, needed)
    fh: BinaryIO
    # Our own file object: the decoded picture outlives it (closing a Pillow image would
    # free the picture too), and no later frame is ever read from it.
    with path.open("rb") as fh:
        with pillow_errors(fmt):
            # No warnings.catch_warnings() here: it swaps process-wide state and this runs
            # in worker threads. Our limits refuse bombs long before Pillow would warn.
            im = Image.open(fh, formats=[PIL_FORMAT[fmt]])
        view = _pillow_view(im, declared)
        if limits is not None:
            check(view, limits, needed, fmt)
        yield im, view


def prove_decodes(path: Path, fmt: str, limits: ImageLimits | None,
                  preparing: Estimate | None = None) -> tuple[int, int]:
    """(width, height) of an input picture once it is shown to decode; MediaError if not.
    `preparing`: what preparing it will need, so that a picture that would be refused
    then is refused now, before the probe's own decode."""

    def needed(header: ImageHeader) -> int:
        own = 0 if fmt == "png" else decode_bytes(header, SMALLEST_SCALE)
        return max(own, preparing(header) if preparing is not None else 0)

    if fmt == "png":
        # Every chunk is checked before Pillow reads any: it reads them one at a time.
        declared_header(path, fmt, limits, needed)
        try:
            verdict = png_data(path)
        except TooManyParts as exc:
            raise _too_many_parts(fmt, exc) from None
        if verdict != "ok":
            raise truncated(fmt) if verdict == "truncated" else corrupt(fmt)
        with open_image(path, fmt, limits, needed) as (im, _view):
            return im.size

    with open_image(path, fmt, limits, needed) as (im, view):
        with pillow_errors(fmt):
            if view.scalable:
                # Pillow picks the scale from whole-number ratios: round the size down.
                im.draft("RGB", (max(1, im.width // SMALLEST_SCALE),
                                 max(1, im.height // SMALLEST_SCALE)))
            im.load()  # the first frame only
        return view.size
