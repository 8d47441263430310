"""The LTX endpoints on fal: input/output models, defaults, ranges, prices, routing.

The endpoint docs in `shared/seeds/` are the spec. Input models list every
field the docs list, with the docs' defaults, ranges and enums. Where the docs
give no range, a field carries only the obviously-true bounds (a count can't be
negative); the grammar applies the bot's own limits on top (see `Option`).

Adding an endpoint (say an ltx-2.3 one) is a new `Endpoint` in `ENDPOINTS`:
its input model, which attachments it takes, how each user option maps onto
its fields, its frame rule and its price. No control flow changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Purpose = Literal["text", "image", "keyframes", "extend"]

LTX09_NEGATIVE = (
    "low quality, worst quality, deformed, distorted, disfigured, motion smear, motion artifacts, "
    "fused fingers, bad anatomy, weird hand, ugly"
)
LTX097_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"
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


class FalModel(BaseModel):
    # Inputs refuse unknown fields so a typo never silently does nothing.
    model_config = ConfigDict(extra="forbid")


class FalOutputModel(BaseModel):
    # Outputs tolerate new fields: fal adds metadata over time.
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- outputs


class File(FalOutputModel):
    url: str = Field(description="The URL where the file can be downloaded from.")
    content_type: str | None = Field(None, description="The mime type of the file.")
    file_name: str | None = Field(None, description="The name of the file.")
    file_size: int | None = Field(None, description="The size of the file in bytes.")
    file_data: str | None = Field(None, description="File data")


class VideoFile(File):
    width: int | None = Field(None, description="Width of the video in pixels.")
    height: int | None = Field(None, description="Height of the video in pixels.")
    fps: float | None = Field(None, description="Frames per second of the video.")
    duration: float | None = Field(None, description="Length of the video in seconds.")
    num_frames: int | None = Field(None, description="Number of frames in the video.")


class VideoOutput(FalOutputModel):
    video: VideoFile = Field(description="The generated video.")
    seed: int | None = Field(None, description="The seed used for random number generation.")
    prompt: str | None = Field(None, description="The prompt used for generation.")


# ---------------------------------------------------------------- inputs: 0.9 preview


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


# ---------------------------------------------------------------- inputs: 13B distilled


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


# ---------------------------------------------------------------- inputs: v0.9.7 extend


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


# ---------------------------------------------------------------- inputs: LTX-2 19B


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


class Ltx2ImageToVideoInput(FalModel):
    """fal-ai/ltx-2-19b/image-to-video"""

    prompt: str = Field(min_length=1, description="The prompt used for the generation.")
    image_url: str = Field(min_length=1, description="The URL of the image to generate from.")
    end_image_url: str | None = Field(None, description="The image to use as the end of the video.")
    num_frames: int = Field(121, ge=9, le=481, description="The number of frames to generate.")
    video_size: ImageSize | VideoSizeName = Field("auto", description="The size of the video.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")
    use_multiscale: bool = Field(True, description="Generate small first, then refine.")
    fps: float = Field(25.0, ge=1, le=60, description="The frames per second of the video.")
    guidance_scale: float = Field(3.0, ge=1, le=10, description="The guidance scale to use.")
    num_inference_steps: int = Field(40, ge=8, le=50, description="The number of inference steps.")
    acceleration: Literal["none", "regular", "high", "full"] = Field(
        "regular", description="The acceleration level to use."
    )
    camera_lora: CameraLora = Field("none", description="Camera movement LoRA.")
    camera_lora_scale: float = Field(1.0, ge=0, le=1, description="Scale of the camera LoRA.")
    negative_prompt: str = Field(LTX2_NEGATIVE, description="The negative prompt.")
    seed: int | None = Field(None, ge=0, description="The seed for the random number generator.")
    enable_prompt_expansion: bool = Field(True, description="Whether to enable prompt expansion.")
    enable_safety_checker: bool = Field(True, description="Whether to enable the safety checker.")
    video_output_type: Literal["X264 (.mp4)", "VP9 (.webm)", "PRORES4444 (.mov)", "GIF (.gif)"] = (
        Field("X264 (.mp4)", description="The output type of the generated video.")
    )
    video_quality: Literal["low", "medium", "high", "maximum"] = Field(
        "high", description="The quality of the generated video."
    )
    video_write_mode: Literal["fast", "balanced", "small"] = Field(
        "balanced", description="The write mode of the generated video."
    )
    sync_mode: bool = Field(False, description="Return media as a data URI.")
    interpolation_direction: Literal["forward", "backward"] = Field(
        "forward", description="Forward goes from the start image to the end image, backward "
        "from the end image to the start image."
    )
    image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the start image.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the end image.")


# ---------------------------------------------------------------- catalog entries


@dataclass(frozen=True)
class FrameRule:
    """How a model counts frames: `seconds` convert with the fps and snap to `step*k + 1`."""

    field: str
    minimum: int
    maximum: int
    default: int
    step: int = 8  # LTX latents are 8 frames apart: counts of the form 8k+1
    fps_field: str | None = None
    default_fps: float = 25.0
    fps_min: float = 1.0
    fps_max: float = 60.0

    def snap(self, frames: float) -> int:
        k = max(0, round((frames - 1) / self.step))
        return int(k * self.step + 1)

    def frames_for_seconds(self, seconds: float, fps: float) -> int:
        return self.snap(seconds * fps)


@dataclass(frozen=True)
class MediaSpec:
    images_min: int = 0
    images_max: int = 0
    videos_min: int = 0
    videos_max: int = 0

    def accepts(self, images: int, videos: int) -> bool:
        return (
            self.images_min <= images <= self.images_max
            and self.videos_min <= videos <= self.videos_max
        )

    def describe(self) -> str:
        def part(lo: int, hi: int, noun: str) -> str | None:
            if hi == 0:
                return None
            if lo == hi:
                return f"{lo} {noun}{'s' if lo != 1 else ''}"
            return f"{lo} to {hi} {noun}s"

        parts = [p for p in (part(self.images_min, self.images_max, "image"),
                             part(self.videos_min, self.videos_max, "video")) if p]
        return " and ".join(parts) if parts else "no attachments"


@dataclass(frozen=True)
class MediaLayout:
    """Where attachment URLs go in an endpoint's input, so routing stays data.

    `image_fields`/`video_fields` are dotted paths filled in order (LTX-2: start
    image then end image). `image_list`/`video_list` name list fields of
    conditioning items `{<kind>_url, start_frame_num, strength}` (keyframes).
    """

    image_fields: tuple[str, ...] = ()
    video_fields: tuple[str, ...] = ()
    image_list: str | None = None
    video_list: str | None = None


@dataclass(frozen=True)
class Price:
    usd_per_video: float | None = None
    usd_per_megapixel: float | None = None  # of width x height x frames, rounded up

    def usd(self, width: int, height: int, frames: int) -> float:
        if self.usd_per_megapixel is not None:
            megapixels = math.ceil(width * height * frames / 1_000_000)
            return round(megapixels * self.usd_per_megapixel, 6)
        return float(self.usd_per_video or 0.0)


@dataclass(frozen=True)
class Endpoint:
    key: str
    endpoint_id: str
    title: str
    purpose: Purpose
    input_model: type[FalModel]
    price: Price
    media: MediaSpec
    # user option name -> input field; an option not listed here is "not supported by this model"
    options: Mapping[str, str]
    layout: MediaLayout = field(default_factory=MediaLayout)
    aliases: tuple[str, ...] = ()
    frames: FrameRule | None = None
    output_model: type[FalOutputModel] = VideoOutput
    # The output size used for estimates when the input does not fix it.
    nominal_size: tuple[int, int] = (1280, 720)
    fixed_frames: int | None = None  # models without a frame option (estimates, summaries)
    fixed_fps: float | None = None
    audio: bool = False
    deprecated: bool = False
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def app_id(self) -> str:
        """`owner/app`: status, result and cancel URLs use only these two parts."""
        return "/".join(self.endpoint_id.split("/")[:2])

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, self.endpoint_id, *self.aliases)


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
        notes="wants a 768x512 image; inputs are fitted to that",
        extra={"image_size": (768, 512)},
    ),
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
    ),
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
    ),
    Endpoint(
        key="ltx-2",
        endpoint_id="fal-ai/ltx-2-19b/image-to-video",
        title="LTX-2 19B image-to-video with audio",
        purpose="image",
        input_model=Ltx2ImageToVideoInput,
        price=Price(usd_per_megapixel=0.0018),
        media=MediaSpec(images_min=1, images_max=2),
        options={
            "negative": "negative_prompt", "seed": "seed", "steps": "num_inference_steps",
            "guidance": "guidance_scale", "fps": "fps", "aspect": "video_size",
            "resolution": "video_size", "audio": "generate_audio", "camera": "camera_lora",
            "camera_scale": "camera_lora_scale", "strength": "image_strength",
            "end_strength": "end_image_strength", "expand": "enable_prompt_expansion",
            "multiscale": "use_multiscale", "acceleration": "acceleration",
            "quality": "video_quality",
        },
        layout=MediaLayout(image_fields=("image_url", "end_image_url")),
        aliases=("ltx2", "ltx-2-19b", "19b"),
        frames=FrameRule(field="num_frames", minimum=9, maximum=481, default=121, fps_field="fps",
                         default_fps=25.0, fps_min=1, fps_max=60),
        nominal_size=(1280, 720),
        audio=True,
    ),
)


class UnknownModel(LookupError):
    pass


def by_name(name: str, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> Endpoint:
    wanted = name.strip().lower()
    for endpoint in endpoints:
        if wanted in (n.lower() for n in endpoint.names):
            return endpoint
    raise UnknownModel(name)


def by_endpoint_id(endpoint_id: str, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> Endpoint:
    for endpoint in endpoints:
        if endpoint.endpoint_id == endpoint_id:
            return endpoint
    raise UnknownModel(endpoint_id)


def all_names(endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> list[str]:
    return sorted({n for e in endpoints for n in (e.key, *e.aliases)})


# ---------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
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
