"""LTX Video 0.9.7 extend: continue a clip from one of its frames (deprecated upstream)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.catalog.base import Endpoint, FalModel, MediaLayout, MediaSpec, Price
from bot.catalog.ltx13b import LTX097_NEGATIVE


class ExtendVideoConditioning(FalModel):
    video_url: str = Field(min_length=1, description="URL of the video to extend.")
    start_frame_num: int = Field(0, ge=0, description="Frame of the input the extension starts from.")


class ExtendInput(FalModel):
    """fal-ai/ltx-video-v097/extend (deprecated upstream, still served)."""

    prompt: str = Field(min_length=1, description="Text prompt to guide generation")
    negative_prompt: str = Field(LTX097_NEGATIVE, description="Negative prompt for generation")
    resolution: Literal["480p", "720p"] = Field("720p", description="Resolution of the video.")
    aspect_ratio: Literal["9:16", "16:9"] = Field("16:9", description="Aspect ratio of the video.")
    seed: int | None = Field(None, ge=0, description="Random seed for generation")
    num_inference_steps: int = Field(40, ge=1, description="Number of inference steps")
    expand_prompt: bool = Field(True, description="Expand the prompt with the model itself.")
    video: ExtendVideoConditioning = Field(description="Video to be extended.")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        key="ltx-extend",
        endpoint_id="fal-ai/ltx-video-v097/extend",
        title="LTX Video 0.9.7 extend",
        purpose="extend",
        input_model=ExtendInput,
        price=Price(usd_per_video=0.12),
        media=MediaSpec(videos_min=1, videos_max=1),
        options={
            "negative": "negative_prompt", "seed": "seed", "aspect": "aspect_ratio",
            "resolution": "resolution", "steps": "num_inference_steps", "expand": "expand_prompt",
            "start_frame": "start_frame_num",
        },
        layout=MediaLayout(video_fields=("video.video_url",)),
        aliases=("extend", "v097-extend"),
        nominal_size=(1280, 720),
        fixed_frames=121,
        fixed_fps=30.0,
        deprecated=True,
        license="commercial",
        summary="continue a clip from one of its frames (old 0.9.7 model)",
    ),
)
