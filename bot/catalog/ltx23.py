"""LTX-2.3 (fal's Pro/Fast family): text and image to video, extend, retake, audio to video.

Facts from ../shared/specs/ltx-2.3-*.md and ltx-2-retake-video.md. These endpoints take
their length in whole seconds (`duration`), are priced per second (by resolution for
text and image), return only `video` (no seed: a re-roll resubmits the same input), and
none was seen with a license tag. Prices fal did not state for an id are its closest
sibling's, marked assumed.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from bot.catalog.base import (
    DurationRule,
    Endpoint,
    FalModel,
    MediaLayout,
    MediaSpec,
    Price,
    VideoOnlyOutput,
)

Resolution = Literal["1080p", "1440p", "2160p"]
Fps = Literal[24, 25, 48, 50]
ProSeconds = Literal[6, 8, 10]
FastSeconds = Literal[6, 8, 10, 12, 14, 16, 18, 20]
RetakeMode = Literal["replace_audio", "replace_video", "replace_audio_and_video"]
FAST_LONG_RULE = (
    "LTX-2.3 Fast makes clips longer than 10 s only at 25 fps and 1080p: "
    "give --fps 25 --resolution 1080p, or 10 seconds or less"
)


class _Ltx23Video(FalModel):
    prompt: str = Field(min_length=1, max_length=5000, description="Text describing the clip.")
    duration: ProSeconds = Field(6, description="The duration of the generated video in seconds.")
    resolution: Resolution = Field("1080p", description="The resolution of the generated video.")
    aspect_ratio: Literal["16:9", "9:16"] = Field("16:9", description="The aspect ratio.")
    fps: Fps = Field(25, description="The frames per second of the generated video.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")


class _FastRule(FalModel):
    @model_validator(mode="after")
    def _long_only_at_25_fps_1080p(self) -> Self:
        duration, fps, resolution = (getattr(self, n) for n in ("duration", "fps", "resolution"))
        if duration > 10 and (fps != 25 or resolution != "1080p"):
            raise ValueError(FAST_LONG_RULE)
        return self


class Ltx23TextToVideoInput(_Ltx23Video):
    """fal-ai/ltx-2.3/text-to-video"""


class Ltx23TextToVideoFastInput(_Ltx23Video, _FastRule):
    """fal-ai/ltx-2.3/text-to-video/fast"""

    duration: FastSeconds = Field(6, description="The duration of the generated video in seconds.")  # type: ignore[assignment]


class Ltx23ImageToVideoInput(_Ltx23Video):
    """fal-ai/ltx-2.3/image-to-video"""

    image_url: str = Field(min_length=1, description="The start frame.")
    end_image_url: str | None = Field(None, description="An optional last frame.")
    aspect_ratio: Literal["auto", "16:9", "9:16"] = Field(  # type: ignore[assignment]
        "auto", description="The aspect ratio; auto follows the image.")


class Ltx23ImageToVideoFastInput(Ltx23ImageToVideoInput, _FastRule):
    """fal-ai/ltx-2.3/image-to-video/fast"""

    duration: FastSeconds = Field(6, description="The duration of the generated video in seconds.")  # type: ignore[assignment]


class Ltx23ExtendVideoInput(FalModel):
    """fal-ai/ltx-2.3/extend-video"""

    video_url: str = Field(min_length=1, description="The clip to extend.")
    prompt: str | None = Field(None, max_length=5000, description="What happens in the added part.")
    duration: float = Field(5, ge=2, le=20, description="Seconds to add.")
    mode: Literal["start", "end"] = Field("end", description="Add before (start) or after (end).")
    context: float | None = Field(None, ge=1, le=20, description="Seconds of the source used as context.")


class RetakeInput(FalModel):
    """fal-ai/ltx-2/retake-video (the LTX-2.3 one limits the prompt to 5000 characters)."""

    video_url: str = Field(min_length=1, description="The source clip.")
    prompt: str = Field(min_length=1, description="What the redone section shows and sounds like.")
    start_time: float = Field(0, ge=0, le=20, description="Where the section begins (s).")
    duration: float = Field(5, ge=2, le=20, description="Length of the section (s).")
    retake_mode: RetakeMode = Field("replace_audio_and_video", description="Which tracks are redone.")


class Ltx23RetakeVideoInput(RetakeInput):
    """fal-ai/ltx-2.3/retake-video"""

    prompt: str = Field(min_length=1, max_length=5000,
                        description="What the redone section shows and sounds like.")


class Ltx23AudioToVideoInput(FalModel):
    """fal-ai/ltx-2.3/audio-to-video: the clip is as long as the audio (2-20 s)."""

    audio_url: str = Field(min_length=1, description="The soundtrack that drives the video.")
    image_url: str | None = Field(None, description="An optional first frame.")
    prompt: str | None = Field(None, min_length=1, max_length=5000,
                               description="Required without an image.")
    guidance_scale: float | None = Field(None, ge=1, le=50,
                                         description="Prompt adherence (5 without image, 9 with).")
    aspect_ratio: Literal["auto", "16:9", "9:16"] = Field("auto", description="auto follows the image.")

    @model_validator(mode="after")
    def _prompt_or_image(self) -> Self:
        if not self.prompt and not self.image_url:
            raise ValueError("give a prompt or an image (audio-to-video needs one of them)")
        return self


_TIERS = {"1080p": 0.08, "1440p": 0.16, "2160p": 0.32}
_FAST_TIERS = {"1080p": 0.04, "1440p": 0.08, "2160p": 0.16}
_I2V_TIERS = {"1080p": 0.06, "1440p": 0.12, "2160p": 0.24}
_VIDEO_OPTIONS = {"resolution": "resolution", "aspect": "aspect_ratio", "audio": "generate_audio"}
_PRO = DurationRule(default=6, choices=(6, 8, 10))
_FAST = DurationRule(default=6, choices=(6, 8, 10, 12, 14, 16, 18, 20))
_REPLACE = {"replace": {"video": "replace_video", "audio": "replace_audio",
                        "both": "replace_audio_and_video"}}
_RETAKE = {"from": "start_time", "to": "duration", "replace": "retake_mode"}


def _video(key: str, title: str, model: type[FalModel], price: Price, rule: DurationRule,
           aliases: tuple[str, ...], summary: str, *, image: bool) -> Endpoint:
    return Endpoint(
        key=key, endpoint_id=f"fal-ai/{key}", title=title, purpose="image" if image else "text",
        input_model=model, price=price,
        media=MediaSpec(images_min=1, images_max=2) if image else MediaSpec(),
        options=_VIDEO_OPTIONS,
        layout=MediaLayout(image_fields=("image_url", "end_image_url") if image else ()),
        aliases=aliases, duration=rule, output_model=VideoOnlyOutput, nominal_size=(1920, 1080),
        audio=True, summary=summary,
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    _video("ltx-2.3/text-to-video", "LTX-2.3 Pro text-to-video", Ltx23TextToVideoInput,
           Price(usd_per_second_by_resolution=_TIERS), _PRO, ("ltx-2.3", "ltx23", "ltx-2.3-pro"),
           "LTX-2.3 Pro: text to video with sound, 6/8/10 s, up to 2160p", image=False),
    _video("ltx-2.3/text-to-video/fast", "LTX-2.3 Fast text-to-video", Ltx23TextToVideoFastInput,
           Price(usd_per_second_by_resolution=_FAST_TIERS), _FAST, ("ltx-2.3-fast", "ltx23-fast"),
           "LTX-2.3 Fast: text to video with sound, 6-20 s", image=False),
    _video("ltx-2.3/image-to-video", "LTX-2.3 Pro image-to-video", Ltx23ImageToVideoInput,
           Price(usd_per_second_by_resolution=_I2V_TIERS), _PRO, ("ltx-2.3-i2v", "ltx23-i2v"),
           "LTX-2.3 Pro: an image (and an optional end image) to video with sound", image=True),
    _video("ltx-2.3/image-to-video/fast", "LTX-2.3 Fast image-to-video",
           Ltx23ImageToVideoFastInput, Price(usd_per_second_by_resolution=_I2V_TIERS, assumed=True),
           _FAST, ("ltx-2.3-i2v-fast", "ltx23-i2v-fast"),
           "LTX-2.3 Fast: an image to video with sound, 6-20 s", image=True),
    Endpoint(
        key="ltx-2.3/extend-video",
        endpoint_id="fal-ai/ltx-2.3/extend-video",
        title="LTX-2.3 extend",
        purpose="extend",
        input_model=Ltx23ExtendVideoInput,
        price=Price(usd_per_second=0.10),
        media=MediaSpec(videos_min=1, videos_max=1),
        options={"at_start": "mode"},
        option_values={"at_start": {True: "start", False: "end"}},
        layout=MediaLayout(video_fields=("video_url",)),
        aliases=("ltx-2.3-extend", "extend-2.3"),
        duration=DurationRule(default=5, minimum=2, maximum=20),
        output_model=VideoOnlyOutput,
        nominal_size=(1920, 1080),
        audio=True,
        summary="add 2-20 s after (or before) a clip, LTX-2.3",
        notes="fal does not say whether the seconds billed are the added part or the whole clip: "
              "the added part is assumed",
    ),
    Endpoint(
        key="ltx-2.3/retake-video",
        endpoint_id="fal-ai/ltx-2.3/retake-video",
        title="LTX-2.3 retake",
        purpose="retake",
        input_model=Ltx23RetakeVideoInput,
        price=Price(usd_per_second=0.10, assumed=True),
        media=MediaSpec(videos_min=1, videos_max=1),
        options=_RETAKE,
        option_values=_REPLACE,
        layout=MediaLayout(video_fields=("video_url",)),
        aliases=("retake", "ltx-2.3-retake"),
        output_model=VideoOnlyOutput,
        nominal_size=(1920, 1080),
        fixed_fps=25.0,
        audio=True,
        summary="redo 2-20 s of a clip: its picture, its sound or both",
        notes="price not stated by fal for this id: ltx-2/retake-video's $0.10 per second of the "
              "section",
    ),
    Endpoint(
        key="ltx-2.3/audio-to-video",
        endpoint_id="fal-ai/ltx-2.3/audio-to-video",
        title="LTX-2.3 audio-to-video",
        purpose="audio",
        input_model=Ltx23AudioToVideoInput,
        price=Price(usd_per_second=0.10, assumed=True),
        media=MediaSpec(images_max=1, audios_min=1, audios_max=1),
        options={"guidance": "guidance_scale", "aspect": "aspect_ratio"},
        layout=MediaLayout(audio_fields=("audio_url",), image_fields=("image_url",)),
        aliases=("audio-to-video", "a2v", "ltx-2.3-a2v"),
        output_model=VideoOnlyOutput,
        nominal_size=(1920, 1080),
        fixed_fps=25.0,
        audio=True,
        audio_seconds=(2.0, 20.0),
        summary="2-20 s of audio (and an optional first frame) to video",
        notes="price not stated by fal for this id: ltx-2/audio-to-video's $0.10 per second",
    ),
    Endpoint(
        key="ltx-2/retake-video",
        endpoint_id="fal-ai/ltx-2/retake-video",
        title="LTX-2 retake (older)",
        purpose="retake",
        input_model=RetakeInput,
        price=Price(usd_per_second=0.10),
        media=MediaSpec(videos_min=1, videos_max=1),
        options=_RETAKE,
        option_values=_REPLACE,
        layout=MediaLayout(video_fields=("video_url",)),
        aliases=("ltx-2-retake",),
        output_model=VideoOnlyOutput,
        nominal_size=(1920, 1080),
        fixed_fps=25.0,
        audio=True,
        summary="redo a section of a clip (older LTX-2; prefer ltx-2.3/retake-video)",
        notes="dropped from fal's client types in 2026-08 and Lightricks retired LTX-2 on "
              "2026-08-15; no deprecation mark seen on fal",
    ),
)
