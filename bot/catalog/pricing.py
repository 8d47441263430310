"""Estimates and real costs: the output geometry a request will have, and what fal charges for it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.catalog.base import Endpoint, Price, VideoOutput

# Standard fal size names -> pixels, for estimates and for --ar on LTX-2.
VIDEO_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
RESOLUTION_HEIGHT = {"480p": 480, "720p": 720}


@dataclass(frozen=True)
class Estimate:
    """What a request should cost before it runs, and the output it was priced for."""

    usd: float
    credits: int
    width: int
    height: int
    frames: int


def usd_to_credits(usd: float, credits_per_usd: float) -> int:
    # Round up so an estimate never under-reserves; the epsilon absorbs float noise
    # (0.2016 * 100 must be 21 credits, not 21.000000000000004 -> 22).
    return max(0, math.ceil(usd * credits_per_usd - 1e-9))


def auto_size(aspect: float, nominal: tuple[int, int]) -> tuple[int, int]:
    """What `video_size: auto` makes of an input with this width/height ratio: the nominal
    pixel area in the input's shape, on multiples of 32 (16:9 -> 1280x704)."""
    area = nominal[0] * nominal[1]
    width = math.sqrt(area * aspect)
    return max(32, round(width / 32) * 32), max(32, round(width / aspect / 32) * 32)


def output_geometry(
    endpoint: Endpoint, payload: Mapping[str, Any], input_aspect: float | None = None
) -> tuple[int, int, int]:
    """Best estimate of (width, height, frames) a request will produce, before it runs.

    `input_aspect` (the prepared image's width/height) refines `auto` sizes, which
    follow the input's shape."""
    width, height = endpoint.nominal_size
    if endpoint.frames is not None:
        frames = int(payload.get(endpoint.frames.field, endpoint.frames.default))
    else:
        frames = endpoint.fixed_frames or 121
    size = payload.get("video_size")
    if (size is None or size == "auto") and input_aspect and "video_size" in endpoint.input_model.model_fields:
        width, height = auto_size(input_aspect, endpoint.nominal_size)
    if isinstance(size, Mapping):
        width, height = int(size["width"]), int(size["height"])
    elif isinstance(size, str) and size in VIDEO_SIZES:
        width, height = VIDEO_SIZES[size]
    resolution = payload.get("resolution")
    if isinstance(resolution, str) and resolution in RESOLUTION_HEIGHT:
        short = RESOLUTION_HEIGHT[resolution]
        long = round(short * 16 / 9)
        aspect = payload.get("aspect_ratio", "16:9")
        if aspect == "9:16":
            width, height = short, long
        elif aspect == "1:1":
            width, height = short, short
        else:
            width, height = long, short
    return width, height, frames


def price_for(endpoint: Endpoint, overrides: Mapping[str, Any] | None = None) -> Price:
    """The endpoint's price with the operator's `[prices.<key>]` override applied."""
    if not overrides or endpoint.key not in overrides:
        return endpoint.price
    override = overrides[endpoint.key]
    per_video = getattr(override, "usd_per_video", None)
    per_mp = getattr(override, "usd_per_megapixel", None)
    if per_mp is not None:
        return Price(usd_per_megapixel=per_mp)
    if per_video is not None:
        return Price(usd_per_video=per_video)
    return endpoint.price


def estimate(
    endpoint: Endpoint,
    payload: Mapping[str, Any],
    credits_per_usd: float,
    price_overrides: Mapping[str, Any] | None = None,
    input_aspect: float | None = None,
) -> Estimate:
    width, height, frames = output_geometry(endpoint, payload, input_aspect)
    usd = price_for(endpoint, price_overrides).usd(width, height, frames)
    return Estimate(usd=usd, credits=usd_to_credits(usd, credits_per_usd), width=width,
                    height=height, frames=frames)


def settle_usd(
    endpoint: Endpoint,
    output: VideoOutput,
    payload: Mapping[str, Any],
    price_overrides: Mapping[str, Any] | None = None,
) -> float:
    """The real cost once the output is known (LTX-2 bills what it actually generated)."""
    width, height, frames = output_geometry(endpoint, payload)
    video = output.video
    if video.width and video.height:
        width, height = video.width, video.height
    if video.num_frames:
        frames = video.num_frames
    return price_for(endpoint, price_overrides).usd(width, height, frames)

