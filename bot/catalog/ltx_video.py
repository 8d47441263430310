"""LTX Video 0.9 (preview): text-to-video and image-to-video, fixed 121 frames at 24 fps."""

from __future__ import annotations

from pydantic import Field

from bot.catalog.base import Endpoint, FalModel, MediaLayout, MediaSpec, Price

LTX09_NEGATIVE = (
    "low quality, worst quality, deformed, distorted, disfigured, motion smear, motion artifacts, "
    "fused fingers, bad anatomy, weird hand, ugly"
)


class TextToVideoInput(FalModel):
    """fal-ai/ltx-video"""

    prompt: str = Field(min_length=1, description="The prompt to generate the video from.")
    negative_prompt: str = Field(LTX09_NEGATIVE, description="The negative prompt.")
    seed: int | None = Field(None, ge=0, description="The seed to use for random number generation.")
    num_inference_steps: int = Field(30, ge=1, description="The number of inference steps to take.")
    guidance_scale: float = Field(3.0, ge=0, description="The guidance scale to use.")


class ImageToVideoInput(TextToVideoInput):
    """fal-ai/ltx-video/image-to-video (the docs ask for a 768x512 image)."""

    image_url: str = Field(min_length=1, description="The URL of the image to generate the video from.")


_COMMON_09 = {"negative": "negative_prompt", "seed": "seed", "steps": "num_inference_steps",
              "guidance": "guidance_scale"}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        key="ltx-video",
        endpoint_id="fal-ai/ltx-video",
        title="LTX Video 0.9 text-to-video",
        purpose="text",
        input_model=TextToVideoInput,
        price=Price(usd_per_video=0.02),
        media=MediaSpec(),
        options=_COMMON_09,
        aliases=("ltx", "ltx-t2v", "t2v"),
        nominal_size=(768, 512),
        fixed_frames=121,
        fixed_fps=24.0,
        license="research",
        summary="old LTX 0.9 preview: text to a silent 5 s clip",
        notes="preview model; fal states no price, the default here is the operator's assumption",
    ),
    Endpoint(
        key="ltx-video-i2v",
        endpoint_id="fal-ai/ltx-video/image-to-video",
        title="LTX Video 0.9 image-to-video",
        purpose="image",
        input_model=ImageToVideoInput,
        price=Price(usd_per_video=0.02),
        media=MediaSpec(images_min=1, images_max=1),
        options=_COMMON_09,
        layout=MediaLayout(image_fields=("image_url",)),
        aliases=("ltx-i2v", "i2v"),
        nominal_size=(768, 512),
        fixed_frames=121,
        fixed_fps=24.0,
        license="research",
        summary="old LTX 0.9 preview: one image to a silent 5 s clip",
        notes="wants a 768x512 image; inputs are fitted to that",
        image_size=(768, 512),
    ),
)
