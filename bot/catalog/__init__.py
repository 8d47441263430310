"""The LTX endpoints on fal: input/output models, defaults, ranges, prices, lookups.

The endpoint docs in `shared/seeds/` are the spec. Input models list every
field the docs list, with the docs' defaults, ranges and enums. Where the docs
give no range, a field carries only the obviously-true bounds (a count can't be
negative); the grammar applies the bot's own limits on top (see `OptionSpec`).

One module per model family (`ltx_video`, `ltx13b`, `extend`, `ltx2`) holds its
input models and its `ENDPOINTS`. Adding an endpoint (say an LTX-2.3 one) is a
new `Endpoint` value in its family's module (a new module for a new family,
listed in `lookup.ENDPOINTS`): its input model, which attachments it takes, how
each user option maps onto its fields, its frame rule and its price. No control
flow changes. Everything is re-exported here: `from bot.catalog import X`.
"""

from bot.catalog.base import (
    Endpoint,
    FalModel,
    FalOutputModel,
    File,
    FrameRule,
    MediaLayout,
    MediaSpec,
    Price,
    Purpose,
    VideoFile,
    VideoOutput,
)
from bot.catalog.extend import ExtendInput, ExtendVideoConditioning
from bot.catalog.lookup import (
    ENDPOINTS,
    UnknownModel,
    all_names,
    by_endpoint_id,
    by_name,
    listing,
    suggest,
)
from bot.catalog.ltx2 import (
    LTX2_NEGATIVE,
    CameraLora,
    ImageSize,
    Ltx2ImageToVideoInput,
    VideoSizeName,
)
from bot.catalog.ltx13b import (
    LTX097_NEGATIVE,
    ImageConditioningInput,
    LoRAWeight,
    MulticonditioningInput,
    VideoConditioningInput,
)
from bot.catalog.ltx_video import LTX09_NEGATIVE, ImageToVideoInput, TextToVideoInput
from bot.catalog.pricing import (
    RESOLUTION_HEIGHT,
    VIDEO_SIZES,
    Estimate,
    auto_size,
    estimate,
    output_geometry,
    price_for,
    settle_usd,
    usd_to_credits,
)

__all__ = [
    "ENDPOINTS",
    "LTX09_NEGATIVE",
    "LTX097_NEGATIVE",
    "LTX2_NEGATIVE",
    "RESOLUTION_HEIGHT",
    "VIDEO_SIZES",
    "CameraLora",
    "Endpoint",
    "Estimate",
    "ExtendInput",
    "ExtendVideoConditioning",
    "FalModel",
    "FalOutputModel",
    "File",
    "FrameRule",
    "ImageConditioningInput",
    "ImageSize",
    "ImageToVideoInput",
    "LoRAWeight",
    "Ltx2ImageToVideoInput",
    "MediaLayout",
    "MediaSpec",
    "MulticonditioningInput",
    "Price",
    "Purpose",
    "TextToVideoInput",
    "UnknownModel",
    "VideoConditioningInput",
    "VideoFile",
    "VideoOutput",
    "VideoSizeName",
    "all_names",
    "auto_size",
    "by_endpoint_id",
    "by_name",
    "estimate",
    "listing",
    "output_geometry",
    "price_for",
    "settle_usd",
    "suggest",
    "usd_to_credits",
]
