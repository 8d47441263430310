"""The shapes every catalog entry is made of: fal's base models, outputs, and `Endpoint`.

Each model family module (`ltx_video`, `ltx13b`, `extend`, `ltx2`, `ltx2_19b`,
`ltx23`, `ltx23_22b`) builds its input models from `FalModel` and lists its
endpoints as `Endpoint` values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The routing roles (`[models]`): what kind of request an endpoint serves.
Purpose = Literal["text", "image", "keyframes", "extend", "audio", "retake", "restyle"]
# The tag fal prints under an endpoint's name. "unconfirmed": the page was not read, and a
# tag is never inferred from a sibling (see ../shared/specs/licenses.md).
License = Literal["commercial", "research", "unconfirmed"]
LICENSE_WORDS: dict[str, str] = {"commercial": "commercial use", "research": "research only",
                                 "unconfirmed": "license not confirmed"}


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


class VideoSeedOutput(VideoOutput):
    """LTX-2 19B and LTX-2.3 22B: `seed` and `prompt` are always there."""

    seed: int = Field(description="The seed used for random number generation.")
    prompt: str = Field(description="The prompt used for generation.")


class VideoOnlyOutput(VideoOutput):
    """LTX-2.3 Pro/Fast, extend, retake and audio-to-video: fal sends only `video` (the
    simulator leaves `seed` and `prompt` out for these)."""


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
class DurationRule:
    """A model that takes its length in seconds (`duration`) rather than frames: an enum of
    whole seconds (`choices`, --seconds goes to the nearest) or a range (`minimum`..`maximum`).
    The clip is made at `fps` frames a second unless the input has an fps field."""

    field: str = "duration"
    default: float = 6
    choices: tuple[int, ...] = ()
    minimum: float = 0.0
    maximum: float = 0.0
    fps: float = 25.0

    @property
    def low(self) -> float:
        return float(self.choices[0]) if self.choices else self.minimum

    @property
    def high(self) -> float:
        return float(self.choices[-1]) if self.choices else self.maximum

    def nearest(self, seconds: float) -> float:
        """The allowed length nearest `seconds` (ties go to the longer one)."""
        if not self.choices:
            return seconds
        return float(min(self.choices, key=lambda c: (abs(c - seconds), -c)))


@dataclass(frozen=True)
class MediaSpec:
    """How many images, videos and audio files an endpoint accepts."""

    images_min: int = 0
    images_max: int = 0
    videos_min: int = 0
    videos_max: int = 0
    audios_min: int = 0
    audios_max: int = 0

    def accepts(self, images: int, videos: int, audios: int = 0) -> bool:
        return (
            self.images_min <= images <= self.images_max
            and self.videos_min <= videos <= self.videos_max
            and self.audios_min <= audios <= self.audios_max
        )

    def describe(self) -> str:
        def part(lo: int, hi: int, noun: str) -> str | None:
            if hi == 0:
                return None
            if lo == hi:
                return f"{lo} {noun}{'s' if lo != 1 else ''}"
            if lo == 0 and hi == 1:
                return f"an optional {noun}"
            return f"{lo} to {hi} {noun}s"

        parts = [p for p in (part(self.images_min, self.images_max, "image"),
                             part(self.videos_min, self.videos_max, "video"),
                             part(self.audios_min, self.audios_max, "audio file")) if p]
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
    audio_fields: tuple[str, ...] = ()
    image_list: str | None = None
    video_list: str | None = None


@dataclass(frozen=True)
class Price:
    """fal's price: a flat amount per video, per megapixel of the output, per second of
    video, or per second at a rate set by the output resolution.

    `assumed`: fal's own figure for this endpoint was not found; the rate is its closest
    confirmed sibling's (docs/MODELS.md marks it)."""

    usd_per_video: float | None = None
    usd_per_megapixel: float | None = None  # of width x height x frames, rounded up
    usd_per_second: float | None = None
    usd_per_second_by_resolution: Mapping[str, float] | None = None
    assumed: bool = False

    @property
    def per_second(self) -> bool:
        return self.usd_per_second is not None or bool(self.usd_per_second_by_resolution)

    def usd(self, width: int, height: int, frames: int, *, seconds: float = 0.0,
            resolution: str | None = None) -> float:
        if self.usd_per_megapixel is not None:
            megapixels = math.ceil(width * height * frames / 1_000_000)
            return round(megapixels * self.usd_per_megapixel, 6)
        if self.usd_per_second_by_resolution:
            rates = self.usd_per_second_by_resolution
            rate = rates.get(resolution or "", rates[min(rates, key=_resolution_order)])
            return round(rate * seconds, 6)
        if self.usd_per_second is not None:
            return round(self.usd_per_second * seconds, 6)
        return float(self.usd_per_video or 0.0)

    def describe(self) -> str:
        """`$0.0018 per megapixel`, `$0.08/0.16/0.32 per second at 1080p/1440p/2160p`."""
        if self.usd_per_megapixel is not None:
            text = f"${self.usd_per_megapixel:g} per megapixel (width x height x frames)"
        elif self.usd_per_second_by_resolution:
            tiers = sorted(self.usd_per_second_by_resolution.items(),
                           key=lambda kv: _resolution_order(kv[0]))
            text = (f"${'/'.join(f'{v:g}' for _, v in tiers)} per second at "
                    f"{'/'.join(k for k, _ in tiers)}")
        elif self.usd_per_second is not None:
            text = f"${self.usd_per_second:g} per second"
        else:
            text = f"${self.usd_per_video or 0:.2f} a video"
        return text + (" (assumed)" if self.assumed else "")


def _resolution_order(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0


@dataclass(frozen=True)
class Endpoint:
    """One fal endpoint as data: what it takes, how user options map onto its input, its price.

    `key` and `aliases` are the names users give with --model; routing, the
    grammar, estimates and the simulator read only these fields, so a new
    endpoint is a new value, not new code.
    """

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
    # The exact image size the endpoint wants (inputs are fitted to it); None: any size.
    image_size: tuple[int, int] | None = None
    license: License = "unconfirmed"
    duration: DurationRule | None = None  # length in seconds (instead of `frames`)
    # Seconds of input audio the model takes (audio-to-video); its clip follows the audio.
    audio_seconds: tuple[float, float] | None = None
    summary: str = ""  # what it does, in a few words (the `models` list)
    # An option whose value becomes another on this model: {"at_start": {True: "start", ...}}.
    option_values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)

    @property
    def safety_checker(self) -> bool:
        """Whether the input has `enable_safety_checker` (the bot can switch it on)."""
        return "enable_safety_checker" in self.input_model.model_fields

    @property
    def takes_seed(self) -> bool:
        return "seed" in self.input_model.model_fields

    @property
    def app_id(self) -> str:
        """`owner/app`: status, result and cancel URLs use only these two parts."""
        return "/".join(self.endpoint_id.split("/")[:2])

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, self.endpoint_id, *self.aliases)

