"""LTX Video 0.9.7 13B distilled multiconditioning: keyframe images and videos on one timeline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.catalog.base import Endpoint, FalModel, FrameRule, MediaLayout, MediaSpec, Price

LTX097_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LoRAWeight(FalModel):
    path: str = Field(description="URL or path to the LoRA weights.")
    weight_name: str | None = Field(None, description="Name of the LoRA weight in a HF repository.")
    scale: float = Field(1.0, description="Scale of the LoRA weight.")


class ImageConditioningInput(FalModel):
    image_url: str = Field(min_length=1, description="URL of the image to condition on.")
    start_frame_num: int = Field(0, ge=0, description="Frame at which the image applies.")
    strength: float = Field(1.0, ge=0, le=1, description="How strongly the image conditions.")


class VideoConditioningInput(FalModel):
    video_url: str = Field(min_length=1, description="URL of the video to condition on.")
    start_frame_num: int = Field(0, ge=0, description="Frame at which the video applies.")
    strength: float = Field(1.0, ge=0, le=1, description="How strongly the video conditions.")


class MulticonditioningInput(FalModel):
    """fal-ai/ltx-video-13b-distilled/multiconditioning"""

    prompt: str = Field(min_length=1, description="Text prompt to guide generation")
    negative_prompt: str = Field(LTX097_NEGATIVE, description="Negative prompt for generation")
    loras: list[LoRAWeight] = Field(default_factory=list, description="LoRA weights to use.")
    resolution: Literal["480p", "720p"] = Field("720p", description="Resolution of the video.")
    aspect_ratio: Literal["9:16", "1:1", "16:9", "auto"] = Field("auto", description="Aspect ratio.")
    seed: int | None = Field(None, ge=0, description="Random seed for generation")
    number_of_frames: int = Field(121, ge=1, description="The number of frames in the video.")
    first_pass_number_of_steps: int = Field(8, ge=1, description="Steps in the first pass.")
    first_pass_skip_final_steps: int = Field(1, ge=0, description="Steps skipped at the end of pass 1.")
    second_pass_number_of_steps: int = Field(8, ge=1, description="Steps in the second pass.")
    second_pass_skip_initial_steps: int = Field(5, ge=0, description="Steps skipped at the start of pass 2.")
    frame_rate: int = Field(30, ge=1, description="The frame rate of the video.")
    expand_prompt: bool = Field(False, description="Expand the prompt with a language model.")
    reverse_video: bool = Field(False, description="Whether to reverse the video.")
    enable_safety_checker: bool = Field(True, description="Whether to enable the safety checker.")
    constant_rate_factor: int = Field(35, ge=0, le=51, description="CRF to compress input media with.")
    images: list[ImageConditioningInput] = Field(default_factory=list, description="Image conditions.")
    videos: list[VideoConditioningInput] = Field(default_factory=list, description="Video conditions.")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        key="ltx-13b",
        endpoint_id="fal-ai/ltx-video-13b-distilled/multiconditioning",
        title="LTX Video 0.9.7 13B distilled, keyframes and video conditioning",
        purpose="keyframes",
        input_model=MulticonditioningInput,
        price=Price(usd_per_video=0.04),
        media=MediaSpec(images_min=0, images_max=8, videos_min=0, videos_max=2),
        options={
            "negative": "negative_prompt", "seed": "seed", "aspect": "aspect_ratio",
            "resolution": "resolution", "fps": "frame_rate", "strength": "strength",
            "positions": "start_frame_num", "expand": "expand_prompt", "reverse": "reverse_video",
            "steps": "first_pass_number_of_steps", "crf": "constant_rate_factor",
        },
        layout=MediaLayout(image_list="images", video_list="videos"),
        aliases=("keyframes", "multiconditioning", "13b", "ltx-multi"),
        frames=FrameRule(field="number_of_frames", minimum=9, maximum=257, default=121,
                         fps_field="frame_rate", default_fps=30.0, fps_min=1, fps_max=60),
        nominal_size=(1280, 720),
        license="commercial",
        summary="keyframes: images (and clips) placed on one timeline",
    ),
)
