"""The framing step of routing: --ar and --resolution onto an endpoint's size fields.

Models frame a clip in one of two ways: an `aspect_ratio` plus a `resolution`
chosen from short lists (the 0.9.7 models), or a `video_size` that is a pixel
size, one of fal's size names, or `auto` (LTX-2). Where the user gives no --ar,
the clip follows the shape of its input (the first image or video, once it is
probed) wherever the model would otherwise impose its own default: extending a
9:16 clip makes 9:16, and `--resolution 720p` on a portrait image is portrait.
What each field accepts is read from the endpoint's input model, so a new
endpoint with other sizes needs no change here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.catalog import Endpoint
from bot.errors import UsageError

# --ar on LTX-2, whose `video_size` takes fal's size names rather than ratios.
LTX2_ASPECT_SIZES = {"16:9": "landscape_16_9", "9:16": "portrait_16_9", "1:1": "square_hd",
                     "4:3": "landscape_4_3", "3:4": "portrait_4_3", "auto": "auto"}
# --ar as a width/height ratio.
RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4}
HEIGHTS = {"480p": 480, "720p": 720, "1080p": 1080}
_NO_LIMIT = 1 << 16


def apply(endpoint: Endpoint, options: Mapping[str, Any], payload: dict[str, Any],
          source_aspect: float | None) -> None:
    """Fill the endpoint's size fields from --ar and --resolution (and the input's shape)."""
    aspect = options.get("aspect")
    if endpoint.options.get("aspect") == "video_size":
        if "resolution" in options:
            payload["video_size"] = video_size(endpoint, str(options["resolution"]), aspect,
                                               source_aspect)
        elif aspect:
            payload["video_size"] = LTX2_ASPECT_SIZES[aspect]
        return
    if aspect is None and "aspect" in endpoint.options:
        aspect = follow_source(endpoint, source_aspect)
    if aspect is not None:
        allowed = literal_choices(endpoint, "aspect_ratio")
        if aspect not in allowed:
            raise UsageError(f"{endpoint.title} takes --ar {', '.join(allowed)}; got {aspect}.")
        payload["aspect_ratio"] = aspect
    if "resolution" in options:
        allowed = literal_choices(endpoint, "resolution")
        res = str(options["resolution"]).lower()
        if res not in allowed:
            raise UsageError(
                f"{endpoint.title} takes --resolution {', '.join(allowed)}; got {options['resolution']}."
            )
        payload["resolution"] = res


def follow_source(endpoint: Endpoint, source_aspect: float | None) -> str | None:
    """The allowed ratio nearest the input's shape, where the model would otherwise impose
    its default (extend makes 16:9 of a 9:16 clip); None where it follows the input itself
    (`auto`) or the shape is not known yet."""
    info = endpoint.input_model.model_fields.get("aspect_ratio")
    if source_aspect is None or source_aspect <= 0 or info is None or info.default == "auto":
        return None
    choices = [c for c in literal_choices(endpoint, "aspect_ratio") if c in RATIOS]
    # The model's default first, so a square clip keeps it.
    choices.sort(key=lambda c: c != info.default)
    target = math.log(source_aspect)
    return min(choices, key=lambda c: abs(math.log(RATIOS[c]) - target), default=None)


def size_forms(endpoint: Endpoint) -> tuple[tuple[str, ...], tuple[int, int], tuple[int, int]]:
    """What a `video_size` field takes: its size names, and the (min, max) width and
    height of its pixel form, read from the input model."""
    annotation = endpoint.input_model.model_fields["video_size"].annotation
    names: tuple[str, ...] = ()
    width = height = (1, _NO_LIMIT)
    for arm in get_args(annotation):
        if get_origin(arm) is Literal:
            names = tuple(str(a) for a in get_args(arm))
        elif isinstance(arm, type) and issubclass(arm, BaseModel):
            width, height = (_int_bounds(arm.model_fields[side]) for side in ("width", "height"))
    return names, width, height


def video_size(endpoint: Endpoint, resolution: str, aspect: str | None,
               source_aspect: float | None) -> str | dict[str, int]:
    """--resolution for a `video_size` field: a size name, WIDTHxHEIGHT, or 480p/720p/1080p
    in the shape of --ar, else of the input, else 16:9. One sentence says every form."""
    names, (w_lo, w_hi), (h_lo, h_hi) = size_forms(endpoint)
    text = resolution.lower().replace(" ", "")
    named = text.replace("-", "_")
    shown = ", ".join(n for n in names if n != "auto")
    refusal = (
        f"--resolution on {endpoint.title} takes 480p, 720p, 1080p, WIDTHxHEIGHT from "
        f"{w_lo}x{h_lo} to {w_hi}x{h_hi} (e.g. 1280x720)"
        + (f", or a size name: {shown}" if shown else "") + f"; got {resolution!r}."
    )
    if named in names:
        if aspect is not None and LTX2_ASPECT_SIZES.get(aspect) != named:
            raise UsageError(
                f"--resolution {named} already sets the shape, so --ar {aspect} cannot apply: "
                f"leave out one of them, or give --resolution 720p with --ar {aspect}."
            )
        return named
    w, x, h = text.partition("x")
    if x and w.isdigit() and h.isdigit():
        if not (w_lo <= int(w) <= w_hi and h_lo <= int(h) <= h_hi):
            raise UsageError(refusal)
        return {"width": int(w), "height": int(h)}
    if text not in HEIGHTS:
        raise UsageError(refusal)
    short = HEIGHTS[text]
    ratio = RATIOS.get(aspect or "") or source_aspect or 16 / 9
    # Keep the short side exact and round the long one to a multiple of 32, which LTX
    # prefers; never past what the model takes (a very tall image is cropped a little).
    long = int(round(short * max(ratio, 1 / ratio) / 32) * 32)
    if ratio >= 1:
        return {"width": min(long, w_hi), "height": short}
    return {"width": short, "height": min(long, h_hi)}


# ---------------------------------------------------------------- what a field takes


def literal_choices(endpoint: Endpoint, field_name: str) -> tuple[str, ...]:
    annotation = endpoint.input_model.model_fields[field_name].annotation
    return tuple(getattr(annotation, "__args__", ()))


def field_bounds(endpoint: Endpoint, field_name: str) -> tuple[float | None, float | None]:
    info = endpoint.input_model.model_fields.get(field_name)
    if info is None:
        return None, None
    return metadata_bounds(info)


def metadata_bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    """(lower, upper) bounds of a pydantic field, None where it has none."""
    lo: float | None = None
    hi: float | None = None
    for meta in info.metadata:
        if isinstance(meta, Ge):
            lo = float(meta.ge)  # type: ignore[arg-type]
        elif isinstance(meta, Gt):
            lo = float(meta.gt)  # type: ignore[arg-type]
        elif isinstance(meta, Le):
            hi = float(meta.le)  # type: ignore[arg-type]
        elif isinstance(meta, Lt):
            hi = float(meta.lt)  # type: ignore[arg-type]
    return lo, hi


def _int_bounds(info: FieldInfo) -> tuple[int, int]:
    lo, hi = metadata_bounds(info)
    return int(lo if lo is not None else 1), int(hi if hi is not None else _NO_LIMIT)
