"""The shapes every catalog entry is made of: fal's base models, outputs, and `Endpoint`.

Each model family module (`ltx_video`, `ltx13b`, `extend`, `ltx2`) builds its
input models from `FalModel` and lists its endpoints as `Endpoint` values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Purpose = Literal["text", "image", "keyframes", "extend"]


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
    """How many images and videos an endpoint accepts."""

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
    """fal's price: a flat amount per video, or per megapixel of the output."""

    usd_per_video: float | None = None
    usd_per_megapixel: float | None = None  # of width x height x frames, rounded up

    def usd(self, width: int, height: int, frames: int) -> float:
        if self.usd_per_megapixel is not None:
            megapixels = math.ceil(width * height * frames / 1_000_000)
            return round(megapixels * self.usd_per_megapixel, 6)
        return float(self.usd_per_video or 0.0)


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

    @property
    def app_id(self) -> str:
        """`owner/app`: status, result and cancel URLs use only these two parts."""
        return "/".join(self.endpoint_id.split("/")[:2])

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, self.endpoint_id, *self.aliases)

