"""The LTX endpoints on fal: input/output models, defaults, ranges, prices, lookups.

The endpoint docs in `shared/seeds/` are the spec. Input models list every
field the docs list, with the docs' defaults, ranges and enums. Where the docs
give no range, a field carries only the obviously-true bounds (a count can't be
negative); the grammar applies the bot's own limits on top (see `OptionSpec`).

One module per model family (`ltx_video`, `ltx13b`, `extend`, `ltx2`, `ltx2_19b`,
`ltx23_22b`, `ltx23`) holds its input models and its `ENDPOINTS`. Adding an
endpoint is a new `Endpoint` value in its family's module (a new module for a new
family, listed in `lookup.ENDPOINTS`): its input model, which attachments it takes
(images, videos, audio), where their URLs go, how each user option maps onto its
fields (and option values onto field values), its frame or duration rule, its price
(per video, megapixel, second, or second by resolution), its license tag and
output model. No control flow changes. Everything is re-exported here:
`from bot.catalog import X`.
"""

from bot.catalog.base import (
    LICENSE_WORDS,
    DurationRule,
    Endpoint,
    FalModel,
    FalOutputModel,
    File,
    FrameRule,
    License,
    MediaLayout,
    MediaSpec,
    Price,
    Purpose,
    VideoFile,
    VideoOnlyOutput,
    VideoOutput,
    VideoSeedOutput,
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
    billed_seconds,
    estimate,
    output_fps,
    output_geometry,
    price_for,
    settle_usd,
    usd_to_credits,
)

__all__ = [
    "ENDPOINTS",
    "LICENSE_WORDS",
    "LTX09_NEGATIVE",
    "LTX097_NEGATIVE",
    "LTX2_NEGATIVE",
    "RESOLUTION_HEIGHT",
    "VIDEO_SIZES",
    "CameraLora",
    "DurationRule",
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
    "License",
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
    "VideoOnlyOutput",
    "VideoOutput",
    "VideoSeedOutput",
    "VideoSizeName",
    "all_names",
    "auto_size",
    "billed_seconds",
    "by_endpoint_id",
    "by_name",
    "estimate",
    "listing",
    "output_fps",
    "output_geometry",
    "price_for",
    "settle_usd",
    "suggest",
    "usd_to_credits",
]
