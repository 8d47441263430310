"""LTX-2 19B image-to-video, and the fields every LTX-2 19B input shares (`Ltx2Common`).

The other 19B endpoints (text, extend, video-to-video, audio) are in `ltx2_19b`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.catalog.base import (
    Endpoint,
    FalModel,
    FrameRule,
    MediaLayout,
    MediaSpec,
    Price,
)

LTX2_NEGATIVE = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive "
    "noise, grainy texture, poor lighting, flickering, motion blur, distorted proportions, "
    "unnatural skin tones, deformed facial features, asymmetrical face, missing facial features, "
    "extra limbs, disfigured hands, wrong hand count, artifacts around text, inconsistent "
    "perspective, camera shake, incorrect depth of field, background too sharp, background "
    "clutter, distracting reflections, harsh shadows, inconsistent lighting direction, color "
    "banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny valley effect, "
    "incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, mismatched "
    "lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio,incorrect dialogue, added dialogue, repetitive speech, jittery movement, "
    "awkward pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, "
    "flat lighting, inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)


class ImageSize(FalModel):
    width: int = Field(ge=64, le=2048, description="Width of the generated video in pixels.")
    height: int = Field(ge=64, le=2048, description="Height of the generated video in pixels.")


VideoSizeName = Literal[
    "auto",
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
]
CameraLora = Literal[
    "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static", "none"
]


VideoOutputType = Literal["X264 (.mp4)", "VP9 (.webm)", "PRORES4444 (.mov)", "GIF (.gif)"]
VideoQuality = Literal["low", "medium", "high", "maximum"]
VideoWriteMode = Literal["fast", "balanced", "small"]
Acceleration = Literal["none", "regular", "high", "full"]


class Ltx2Encoding(FalModel):
    """The fields every LTX-2 19B and LTX-2.3 22B input has: prompt, seed, filters, encoding."""

    prompt: str = Field(min_length=1, description="The prompt used for the generation.")
    seed: int | None = Field(None, ge=0, description="The seed for the random number generator.")
    enable_prompt_expansion: bool = Field(True, description="Whether to enable prompt expansion.")
    enable_safety_checker: bool = Field(True, description="Whether to enable the safety checker.")
    video_output_type: VideoOutputType = Field(
        "X264 (.mp4)", description="The output type of the generated video.")
    video_quality: VideoQuality = Field("high", description="The quality of the generated video.")
    video_write_mode: VideoWriteMode = Field(
        "balanced", description="The write mode of the generated video.")
    sync_mode: bool = Field(False, description="Return media as a data URI.")


class Ltx2Common(Ltx2Encoding):
    """The fields every LTX-2 19B input shares (fal's defaults and ranges)."""

    num_frames: int = Field(121, ge=9, le=481, description="The number of frames to generate.")
    video_size: ImageSize | VideoSizeName = Field("auto", description="The size of the video.")
    use_multiscale: bool = Field(True, description="Generate small first, then refine.")
    fps: float = Field(25.0, ge=1, le=60, description="The frames per second of the video.")
    guidance_scale: float = Field(3.0, ge=1, le=10, description="The guidance scale to use.")
    num_inference_steps: int = Field(40, ge=8, le=50, description="The number of inference steps.")
    acceleration: Acceleration = Field("regular", description="The acceleration level to use.")
    camera_lora: CameraLora = Field("none", description="Camera movement LoRA.")
    camera_lora_scale: float = Field(1.0, ge=0, le=1, description="Scale of the camera LoRA.")
    negative_prompt: str = Field(LTX2_NEGATIVE, description="The negative prompt.")


class Ltx2ImageToVideoInput(Ltx2Common):
    """fal-ai/ltx-2-19b/image-to-video"""

    image_url: str = Field(min_length=1, description="The URL of the image to generate from.")
    end_image_url: str | None = Field(None, description="The image to use as the end of the video.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")
    interpolation_direction: Literal["forward", "backward"] = Field(
        "forward", description="Forward goes from the start image to the end image, backward "
        "from the end image to the start image."
    )
    image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the start image.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the end image.")


# User options every LTX-2 19B endpoint maps the same way.
LTX2_OPTIONS = {
    "negative": "negative_prompt", "seed": "seed", "steps": "num_inference_steps",
    "guidance": "guidance_scale", "fps": "fps", "aspect": "video_size",
    "resolution": "video_size", "camera": "camera_lora", "camera_scale": "camera_lora_scale",
    "expand": "enable_prompt_expansion", "multiscale": "use_multiscale",
    "acceleration": "acceleration", "quality": "video_quality",
}
LTX2_FRAMES = FrameRule(field="num_frames", minimum=9, maximum=481, default=121, fps_field="fps",
                        default_fps=25.0, fps_min=1, fps_max=60)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        key="ltx-2",
        endpoint_id="fal-ai/ltx-2-19b/image-to-video",
        title="LTX-2 19B image-to-video with audio",
        purpose="image",
        input_model=Ltx2ImageToVideoInput,
        price=Price(usd_per_megapixel=0.0018),
        media=MediaSpec(images_min=1, images_max=2),
        options={**LTX2_OPTIONS, "audio": "generate_audio", "strength": "image_strength",
                 "end_strength": "end_image_strength"},
        layout=MediaLayout(image_fields=("image_url", "end_image_url")),
        aliases=("ltx2", "ltx-2-19b", "19b"),
        frames=LTX2_FRAMES,
        nominal_size=(1280, 720),
        audio=True,
        license="commercial",
        summary="one image (and an optional end image) to video with sound",
    ),
)
