"""LTX-2 19B beside image-to-video (in `ltx2`): text, extend, video-to-video (restyle), audio.

Facts from ../shared/specs/ltx-2-19b-*.md. None of these ids was seen with a license
tag (the family's image-to-video is "Commercial use", which is not carried over), and
only extend-video and video-to-video state a price: text and audio take the family's
$0.0018 per megapixel, marked assumed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.catalog.base import Endpoint, MediaLayout, MediaSpec, Price, VideoSeedOutput
from bot.catalog.ltx2 import LTX2_FRAMES, LTX2_OPTIONS, ImageSize, Ltx2Common

# LTX-2 19B text-to-video has no `auto` size: there is no input to follow.
T2VSizeName = Literal[
    "square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"
]
_PER_MP = Price(usd_per_megapixel=0.0018)
_ASSUMED_PER_MP = Price(usd_per_megapixel=0.0018, assumed=True)


class Ltx2TextToVideoInput(Ltx2Common):
    """fal-ai/ltx-2-19b/text-to-video"""

    video_size: ImageSize | T2VSizeName = Field("landscape_4_3", description="The size of the video.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")


class Ltx2ExtendVideoInput(Ltx2Common):
    """fal-ai/ltx-2-19b/extend-video"""

    video_url: str = Field(min_length=1, description="The URL of the video to extend.")
    end_image_url: str | None = Field(None, description="An image the extension should end on.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")
    match_input_fps: bool = Field(True, description="Use the source clip's fps instead of `fps`.")
    extend_direction: Literal["forward", "backward"] = Field(
        "forward", description="forward: after the end; backward: before the start.")
    num_context_frames: int = Field(25, ge=0, le=121, description="Source frames used as context.")
    video_strength: float = Field(1.0, ge=0, le=1, description="How tightly the source conditions.")
    audio_strength: float = Field(1.0, ge=0, le=1, description="How tightly the source audio conditions.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the end image.")


class Ltx2VideoToVideoInput(Ltx2Common):
    """fal-ai/ltx-2-19b/video-to-video"""

    video_url: str = Field(min_length=1, description="The source video (motion and structure).")
    audio_url: str | None = Field(None, description="Replacement audio; else the source's.")
    image_url: str | None = Field(None, description="An optional first frame.")
    end_image_url: str | None = Field(None, description="An optional last frame.")
    match_video_length: bool = Field(True, description="Frame count from the source's length.")
    generate_audio: bool = Field(True, description="Whether to generate audio for the video.")
    match_input_fps: bool = Field(True, description="Use the source clip's fps instead of `fps`.")
    preprocessor: Literal["depth", "canny", "pose", "none"] = Field(
        "none", description="Turn the source into a depth/edge/pose control video first.")
    ic_lora: Literal["match_preprocessor", "canny", "depth", "pose", "detailer", "none"] = Field(
        "match_preprocessor", description="Which In-Context LoRA conditions on the control video.")
    ic_lora_scale: float = Field(1.0, ge=0, le=1, description="IC-LoRA strength.")
    image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the first frame.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the last frame.")
    video_strength: float = Field(1.0, ge=0, le=1, description="How tightly the source conditions.")
    audio_strength: float = Field(1.0, ge=0, le=1, description="How tightly the audio conditions.")


class Ltx2AudioToVideoInput(Ltx2Common):
    """fal-ai/ltx-2-19b/audio-to-video (no generate_audio: the sound is the input's)."""

    audio_url: str = Field(min_length=1, description="The audio that drives the video.")
    image_url: str | None = Field(None, description="An optional first frame.")
    end_image_url: str | None = Field(None, description="An optional last frame.")
    match_audio_length: bool = Field(True, description="Frame count = audio length x fps.")
    video_size: ImageSize | Literal[
        "auto", "square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3",
        "landscape_16_9",
    ] = Field("landscape_4_3", description="The size of the video; auto follows the image.")
    image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the first frame.")
    end_image_strength: float = Field(1.0, ge=0, le=1, description="Strength of the last frame.")
    audio_strength: float = Field(1.0, ge=0, le=1, description="1 keeps the input audio as it is.")
    preprocess_audio: bool = Field(True, description="Clean the audio before conditioning.")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        key="ltx-2-19b/text-to-video",
        endpoint_id="fal-ai/ltx-2-19b/text-to-video",
        title="LTX-2 19B text-to-video with audio",
        purpose="text",
        input_model=Ltx2TextToVideoInput,
        price=_ASSUMED_PER_MP,
        media=MediaSpec(),
        options={**LTX2_OPTIONS, "audio": "generate_audio"},
        aliases=("ltx-2-t2v", "19b-t2v"),
        frames=LTX2_FRAMES,
        output_model=VideoSeedOutput,
        nominal_size=(1024, 768),
        audio=True,
        summary="open-weights LTX-2 19B: text to video with sound, 9-481 frames",
        notes="price not stated by fal for this id: the family's $0.0018/MP",
    ),
    Endpoint(
        key="ltx-2-19b/extend-video",
        endpoint_id="fal-ai/ltx-2-19b/extend-video",
        title="LTX-2 19B extend",
        purpose="extend",
        input_model=Ltx2ExtendVideoInput,
        price=_PER_MP,
        media=MediaSpec(images_max=1, videos_min=1, videos_max=1),
        options={**LTX2_OPTIONS, "audio": "generate_audio", "at_start": "extend_direction",
                 "end_strength": "end_image_strength"},
        layout=MediaLayout(video_fields=("video_url",), image_fields=("end_image_url",)),
        option_values={"at_start": {True: "backward", False: "forward"}},
        aliases=("ltx-2-extend", "19b-extend"),
        frames=LTX2_FRAMES,
        output_model=VideoSeedOutput,
        audio=True,
        summary="add frames after (or before) a clip, LTX-2 19B",
    ),
    Endpoint(
        key="ltx-2-19b/video-to-video",
        endpoint_id="fal-ai/ltx-2-19b/video-to-video",
        title="LTX-2 19B video-to-video (restyle)",
        purpose="restyle",
        input_model=Ltx2VideoToVideoInput,
        price=_PER_MP,
        media=MediaSpec(images_max=2, videos_min=1, videos_max=1, audios_max=1),
        options={**LTX2_OPTIONS, "audio": "generate_audio", "strength": "video_strength",
                 "end_strength": "end_image_strength"},
        layout=MediaLayout(video_fields=("video_url",), audio_fields=("audio_url",),
                           image_fields=("image_url", "end_image_url")),
        aliases=("restyle", "ltx-2-v2v", "19b-v2v"),
        frames=LTX2_FRAMES,
        output_model=VideoSeedOutput,
        audio=True,
        summary="restyle a clip: same motion, a new look (LTX-2 19B)",
    ),
    Endpoint(
        key="ltx-2-19b/audio-to-video",
        endpoint_id="fal-ai/ltx-2-19b/audio-to-video",
        title="LTX-2 19B audio-to-video",
        purpose="audio",
        input_model=Ltx2AudioToVideoInput,
        price=_ASSUMED_PER_MP,
        media=MediaSpec(images_max=2, audios_min=1, audios_max=1),
        options={**LTX2_OPTIONS, "strength": "image_strength", "end_strength": "end_image_strength"},
        layout=MediaLayout(audio_fields=("audio_url",), image_fields=("image_url", "end_image_url")),
        aliases=("ltx-2-a2v", "19b-a2v"),
        frames=LTX2_FRAMES,
        output_model=VideoSeedOutput,
        nominal_size=(1024, 768),
        audio=True,
        summary="audio (and an optional first/last frame) to video, LTX-2 19B",
        notes="price not stated by fal for this id: the family's $0.0018/MP; audio length "
              "limits not stated (the clip is at most 481 frames)",
    ),
)
