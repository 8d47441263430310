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
RESOLUTION_HEIGHT = {"480p": 480, "720p": 720, "1080p": 1080, "1440p": 1440, "2160p": 2160}


@dataclass(frozen=True)
class Estimate:
    """What a request should cost before it runs, and the output it was priced for."""

    usd: float
    credits: int
    width: int
    height: int
    frames: int
    seconds: float = 0.0  # what a per-second price was charged for (0: not per second)


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
    endpoint: Endpoint, payload: Mapping[str, Any], input_aspect: float | None = None,
    media_seconds: float | None = None,
) -> tuple[int, int, int]:
    """Best estimate of (width, height, frames) a request will produce, before it runs.

    `input_aspect` (the prepared image's width/height) refines `auto` sizes, which
    follow the input's shape; `media_seconds` (the input audio's length) is the length
    of a clip that follows its audio."""
    width, height = endpoint.nominal_size
    frames = _frames(endpoint, payload, media_seconds)
    size = payload.get("video_size")
    if (size is None or size == "auto") and input_aspect and "video_size" in endpoint.input_model.model_fields:
        width, height = auto_size(input_aspect, endpoint.nominal_size)
    if isinstance(size, Mapping):
        width, height = int(size["width"]), int(size["height"])
    elif isinstance(size, str) and size in VIDEO_SIZES:
        width, height = VIDEO_SIZES[size]
    resolution = payload.get("resolution", _default(endpoint, "resolution"))
    if isinstance(resolution, str) and resolution in RESOLUTION_HEIGHT:
        short = RESOLUTION_HEIGHT[resolution]
        long = round(short * 16 / 9)
        aspect = payload.get("aspect_ratio", _default(endpoint, "aspect_ratio") or "16:9")
        if aspect == "auto" and input_aspect:
            aspect = "9:16" if input_aspect < 1 else "16:9"
        if aspect == "9:16":
            width, height = short, long
        elif aspect == "1:1":
            width, height = short, short
        else:
            width, height = long, short
    return width, height, frames


def output_fps(endpoint: Endpoint, payload: Mapping[str, Any]) -> float:
    """The frame rate the output will have."""
    if endpoint.frames is not None and endpoint.frames.fps_field:
        return float(payload.get(endpoint.frames.fps_field, endpoint.frames.default_fps))
    if "fps" in endpoint.input_model.model_fields:
        return float(payload.get("fps", _default(endpoint, "fps") or 25.0))
    if endpoint.duration is not None:
        return endpoint.duration.fps
    return float(endpoint.fixed_fps or 25.0)


def _frames(endpoint: Endpoint, payload: Mapping[str, Any], media_seconds: float | None) -> int:
    if endpoint.frames is not None:
        return int(payload.get(endpoint.frames.field, endpoint.frames.default))
    if endpoint.duration is not None:
        seconds = float(payload.get(endpoint.duration.field, endpoint.duration.default))
        return max(1, round(seconds * output_fps(endpoint, payload)))
    if endpoint.audio_seconds is not None and media_seconds:
        return max(1, round(media_seconds * output_fps(endpoint, payload)))
    return endpoint.fixed_frames or 121


def _default(endpoint: Endpoint, field_name: str) -> Any:
    info = endpoint.input_model.model_fields.get(field_name)
    return None if info is None else info.default


def billed_seconds(endpoint: Endpoint, payload: Mapping[str, Any],
                   media_seconds: float | None = None) -> float:
    """The seconds a per-second price is charged for: the requested `duration` (extend: the
    added part, retake: the redone section), else the input audio's length (audio-to-video:
    the clip follows its audio)."""
    if "duration" in endpoint.input_model.model_fields:
        return float(payload.get("duration", _default(endpoint, "duration")))
    if media_seconds:
        return float(media_seconds)
    if endpoint.audio_seconds is not None:
        return endpoint.audio_seconds[1]  # unknown yet: the longest the model takes
    _, _, frames = output_geometry(endpoint, payload)
    return frames / output_fps(endpoint, payload)


def price_for(endpoint: Endpoint, overrides: Mapping[str, Any] | None = None) -> Price:
    """The endpoint's price with the operator's `[prices.<key>]` override applied."""
    if not overrides or endpoint.key not in overrides:
        return endpoint.price
    override = overrides[endpoint.key]
    per_mp = getattr(override, "usd_per_megapixel", None)
    tiers = getattr(override, "usd_per_second_by_resolution", None)
    per_second = getattr(override, "usd_per_second", None)
    per_video = getattr(override, "usd_per_video", None)
    if per_mp is not None:
        return Price(usd_per_megapixel=per_mp)
    if tiers:
        return Price(usd_per_second_by_resolution=dict(tiers))
    if per_second is not None:
        return Price(usd_per_second=per_second)
    if per_video is not None:
        return Price(usd_per_video=per_video)
    return endpoint.price


def _charge(price: Price, endpoint: Endpoint, payload: Mapping[str, Any], width: int,
            height: int, frames: int, seconds: float) -> float:
    resolution = payload.get("resolution", _default(endpoint, "resolution"))
    return price.usd(width, height, frames, seconds=seconds,
                     resolution=resolution if isinstance(resolution, str) else None)


def estimate(
    endpoint: Endpoint,
    payload: Mapping[str, Any],
    credits_per_usd: float,
    price_overrides: Mapping[str, Any] | None = None,
    input_aspect: float | None = None,
    media_seconds: float | None = None,
) -> Estimate:
    width, height, frames = output_geometry(endpoint, payload, input_aspect, media_seconds)
    price = price_for(endpoint, price_overrides)
    seconds = billed_seconds(endpoint, payload, media_seconds) if price.per_second else 0.0
    usd = _charge(price, endpoint, payload, width, height, frames, seconds)
    return Estimate(usd=usd, credits=usd_to_credits(usd, credits_per_usd), width=width,
                    height=height, frames=frames, seconds=seconds)


def settle_usd(
    endpoint: Endpoint,
    output: VideoOutput,
    payload: Mapping[str, Any],
    price_overrides: Mapping[str, Any] | None = None,
) -> float:
    """The real cost once the output is known: per megapixel on what was generated (its
    size and frames), per second on the requested duration, or for a clip that follows
    its audio, on the output's length."""
    width, height, frames = output_geometry(endpoint, payload)
    video = output.video
    if video.width and video.height:
        width, height = video.width, video.height
    if video.num_frames:
        frames = video.num_frames
    price = price_for(endpoint, price_overrides)
    seconds = 0.0
    if price.per_second:
        made = video.duration or (video.num_frames / video.fps if video.num_frames and video.fps
                                  else None)
        seconds = billed_seconds(endpoint, payload, made)
    return _charge(price, endpoint, payload, width, height, frames, seconds)
