"""Images for the models: upright RGB at a size the endpoint takes."""

from __future__ import annotations

import uuid
from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageOps

from bot.errors import MediaError
from bot.media.probe import check_declared_size, open_image
from bot.media.sniff import FORMATS, IMAGE_FORMATS, sniff


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


def _upright_rgb(src: Path, fmt: str, max_pixels: int, want: tuple[int, int]) -> Image.Image:
    """The first frame, turned as its EXIF says, in RGB."""
    check_declared_size(src, fmt, max_pixels)
    with open_image(src, fmt, max_pixels) as opened:
        if fmt == "jpeg":
            # Decode JPEGs at a reduced scale when the result is much smaller: faster,
            # less memory, same quality after the final resize.
            opened.draft("RGB", (want[0] * 2, want[1] * 2))
        opened.seek(0)  # GIF/WebP: the first frame
        return _to_rgb(ImageOps.exif_transpose(opened))


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
        raise MediaError(f"That {FORMATS[fmt].label} is not an image.")
    rgb = _upright_rgb(src, fmt, max_pixels, size or (max_side, max_side))
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
