"""Images for the models: upright RGB at a size the endpoint takes, from one decode.

The first frame is decoded once, at a reduced scale where the format allows (JPEG),
and the part of it that the final crop keeps is turned into RGB and reduced by a whole
factor a band of rows at a time: the decoded picture is the only full-size one ever in
memory. EXIF turning, the crop and the final resize then work on the reduced copy.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageOps

from bot.errors import MediaError
from bot.media.decode import open_image, pillow_errors
from bot.media.headers import ImageHeader
from bot.media.limits import ImageLimits, decode_bytes, working_bytes
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


# Where memory allows, the reduced copy keeps at least this many times the final size on
# each side, so the final resize sees fine detail (Pillow's own `reducing_gap` advice).
REDUCING_GAP = 2.0
# Rows are turned into RGB and reduced this many bytes at a time.
_BAND_BYTES = 4 * 1024 * 1024
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Plan:
    """The final size an image is prepared to, decided from its upright size."""

    size: tuple[int, int] | None
    aspect: str | None
    multiple_of: int
    max_side: int

    def final_size(self, width: int, height: int) -> tuple[int, int]:
        return self.size or target_size(width, height, aspect=self.aspect,
                                        multiple_of=self.multiple_of, max_side=self.max_side)

    def sideways_finals(self, width: int, height: int) -> list[tuple[int, int]]:
        """The final size in the stored picture's orientation, for either way up (EXIF
        may turn it) until the picture's own EXIF says which."""
        upright = self.final_size(width, height)
        turned = self.final_size(height, width)
        return [upright, (turned[1], turned[0])]

    def work_bound(self, size: tuple[int, int]) -> int:
        """Memory of the smallest working copy this plan allows (under twice the final
        size on each side), whichever way up the picture is."""
        return max(working_bytes(2 * fw, 2 * fh) for fw, fh in self.sideways_finals(*size))

    def needed(self, header: ImageHeader) -> int:
        """Memory estimate, before any decoding, of the leanest decode this plan allows
        plus the smallest working copy."""
        scale = min(_draft_scales(header.size, final)[-1]
                    for final in self.sideways_finals(*header.size))
        return decode_bytes(header, scale) + self.work_bound(header.size)


def _cover_box(size: tuple[int, int], final: tuple[int, int]) -> Box:
    """The centred box of `final`'s shape that `ImageOps.fit` will keep, in whole pixels
    (rounded outwards: the final fit trims the rest)."""
    width, height = size
    if width * final[1] > height * final[0]:
        crop_w, crop_h = height * final[0] / final[1], float(height)
    else:
        crop_w, crop_h = float(width), width * final[1] / final[0]
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return (max(0, math.floor(left)), max(0, math.floor(top)),
            min(width, math.ceil(left + crop_w)), min(height, math.ceil(top + crop_h)))


def _ratio(size: tuple[int, int], final: tuple[int, int]) -> float:
    """How many times bigger than `final` the part of the picture that is kept is."""
    left, _top, right, _bottom = _cover_box(size, final)
    return (right - left) / final[0]


def _draft_scales(size: tuple[int, int], final: tuple[int, int]) -> list[int]:
    """JPEG decode scales (1, 2, 4 or 8), best first: from the one that keeps
    REDUCING_GAP times the final size to the leanest that keeps the final size (a scaled
    decode filters as it shrinks, so it loses little)."""
    ratio = _ratio(size, final)
    best = next(s for s in (8, 4, 2, 1) if s <= max(1.0, ratio / REDUCING_GAP))
    leanest = next(s for s in (8, 4, 2, 1) if s <= max(1.0, ratio))
    return [s for s in (1, 2, 4, 8) if best <= s <= leanest]


def _draft_scale(view: ImageHeader, final: tuple[int, int], plan: _Plan,
                 limits: ImageLimits) -> int:
    """The best JPEG decode scale whose decode fits the memory limit with a working copy."""
    scales = _draft_scales(view.size, final)
    work = plan.work_bound(view.size)
    return next((s for s in scales if decode_bytes(view, s) + work <= limits.max_memory),
                scales[-1])


def _orientation(im: Image.Image) -> int:
    value = im.getexif().get(0x0112, 1)
    return value if isinstance(value, int) else 1


def _source_final(plan: _Plan, upright: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The final size in the stored picture's orientation."""
    if orientation in (5, 6, 7, 8):
        final = plan.final_size(upright[1], upright[0])
        return final[1], final[0]
    return plan.final_size(*upright)


def _reduction(box: Box, final: tuple[int, int], decoded: int, limits: ImageLimits) -> int:
    """The smallest whole factor that keeps REDUCING_GAP times the final size and whose
    working copy fits the memory limit with the decoded picture (at worst, the factor
    that keeps just the final size: the estimate checked before decoding allowed that)."""
    left, top, right, bottom = box
    ratio = (right - left) / final[0]
    most = max(1, int(ratio))
    for k in range(max(1, int(ratio / REDUCING_GAP)), most):
        work = working_bytes(math.ceil((right - left) / k), math.ceil((bottom - top) / k))
        if decoded + work <= limits.max_memory:
            return k
    return most


def _reduce_to_rgb(im: Image.Image, box: Box, k: int) -> Image.Image:
    """The `box` of `im` in RGB, reduced `k` times, made a band of rows at a time: never a
    second full-size picture."""
    if k == 1 and im.mode == "RGB" and box == (0, 0, *im.size):
        return im
    left, top, right, bottom = box
    out = Image.new("RGB", (math.ceil((right - left) / k), math.ceil((bottom - top) / k)))
    # Bands start on multiples of k, so each reduces exactly as the whole would.
    rows = k * max(1, _BAND_BYTES // (4 * (right - left) * k))
    for y in range(top, bottom, rows):
        band = _to_rgb(im.crop((left, y, right, min(bottom, y + rows))))
        out.paste(band.reduce(k) if k > 1 else band, (0, (y - top) // k))
    return out


def _decode_reduced(src: Path, fmt: str, limits: ImageLimits,
                    plan: _Plan) -> tuple[Image.Image, tuple[int, int]]:
    """(the picture's first frame, upright RGB, reduced where it is much bigger than
    needed; the final size). One decode; JPEGs decode straight at a reduced scale."""
    with open_image(src, fmt, limits, plan.needed) as (im, view), pillow_errors(fmt):
        if view.scalable:
            # A JPEG's EXIF is read with its header: no decoding needed to know its turn.
            turn = _orientation(im)
            final = _source_final(plan, _upright(view.size, turn), turn)
            scale = _draft_scale(view, final, plan, limits)
            # Pillow picks the scale from whole-number ratios: round the size down.
            im.draft("RGB", (max(1, view.width // scale), max(1, view.height // scale)))
        im.load()  # the first frame only
        turn = _orientation(im)
        scale = round(view.width / im.width)
        upright = _upright(view.size, turn)
        final = _source_final(plan, upright, turn)
        box = _cover_box(im.size, final)
        k = _reduction(box, final, decode_bytes(view, scale), limits)
        small = _reduce_to_rgb(im, box, k)
    # Past here the full-size picture is gone: only the reduced copy is turned and fitted.
    method = _TRANSPOSE.get(turn)
    return (small.transpose(method) if method is not None else small), plan.final_size(*upright)


def _upright(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def preparation_needed(header: ImageHeader) -> int:
    """Memory that preparing a picture to the usual size (own shape, 1280 pixels at most)
    needs: the probe refuses by it, so a picture is not decoded only to be refused."""
    return _Plan(None, None, 32, 1280).needed(header)


def prepare_image(
    src: Path, dest_dir: Path, *, size: tuple[int, int] | None = None, multiple_of: int = 32,
    aspect: str | None = None, max_side: int = 1280, limits: ImageLimits | None = None,
) -> Path:
    """An upright RGB image of the size the endpoint wants, written into `dest_dir`, from
    one decode of the first frame checked against `limits` (see `bot.media.limits`).

    With an exact `size` (0.9 image-to-video wants 768x512) the image is cover-cropped:
    the model animates whatever is in the frame, so padding bars would become part of
    the scene (and be animated); losing a sliver of the edges is the smaller harm.
    """
    fmt = sniff(src)
    if fmt not in IMAGE_FORMATS:
        raise MediaError(f"That {FORMATS[fmt].label} is not an image.")
    plan = _Plan(size, aspect, multiple_of, max_side)
    rgb, final = _decode_reduced(src, fmt, limits or ImageLimits(), plan)
    out = ImageOps.fit(rgb, final, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
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
