"""What the simulator draws for the endpoints that edit media a user brought, so a user
can see what the job did:

- retake (`*/retake-video`): the input clip, with the frames of the chosen range
  (`start_time`, `duration`, clamped to the clip) visibly redone: darkened, striped and
  captioned with the prompt; `retake_mode` says which track changes: `replace_video`
  only the picture, `replace_audio` only the sound (a new tone over the range, the
  picture untouched), `replace_audio_and_video` both;
- extend (`*/extend-video`): the whole clip plus new frames that go on from its last
  frame (`mode: end`, `extend_direction: forward`) or lead into its first (`start`,
  `backward`), with the clip's own sound kept under its frames;
- audio-to-video (`*/audio-to-video`): as long as the sound (or `num_frames` when
  `match_audio_length` is false), the input sound as its track and its waveform drawn
  across the bottom with a playhead, over the first-frame image or a scene;
- restyle (`ltx-2-19b/video-to-video`): the input clip posterized with its colours
  turned (red to green to blue), keeping the clip's sound (or `audio_url`'s).

An input the simulator cannot read locally (a URL elsewhere) gets the ordinary render
(`results.py`). Sizes are `SimOptions.scale` of the source's, as everywhere here.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import av
from PIL import Image, ImageDraw, ImageOps

from bot.catalog import Endpoint, VideoOnlyOutput, output_geometry
from bot.sim import render_sound as sound
from bot.sim.files import FileStore
from bot.sim.jobs import SimJob
from bot.sim.render import (
    RenderSpec,
    continued,
    cover,
    load_picture,
    pan_zoom_frames,
    procedural_frames,
    scaled_size,
    write_mp4,
    write_prompt,
)

log = logging.getLogger(__name__)
MAX_FRAMES = 600  # more than any of these models makes (505 at most)
RETAKE_TONE = 880.0  # the redone sound: an octave over the usual 440 Hz test tone
_STRIPES = (255, 0, 200)


@dataclass
class Clip:
    """An input video as the simulator renders from it."""

    frames: list[Image.Image]  # covering `size`
    fps: float
    pcm: bytes | None  # its sound (render_sound's PCM), None when silent
    source_size: tuple[int, int]  # as the user's file has it

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


@dataclass
class Made:
    """What an edit renders: frames, their rate, the sound, and the size fal would bill."""

    frames: list[Image.Image]
    fps: float
    pcm: bytes | None
    billed_size: tuple[int, int]


Edit = Callable[[Mapping[str, Any], FileStore, float, random.Random], Made | None]


def load_clip(data: bytes, scale: float) -> Clip | None:
    """Frames (at most MAX_FRAMES, `scale` of the source's size), rate and sound of a video."""
    frames: list[Image.Image] = []
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            source = (stream.codec_context.width, stream.codec_context.height)
            size = scaled_size(*source, scale)
            rate = stream.average_rate or stream.guessed_rate
            for frame in container.decode(video=0):
                to_image = cast(Callable[[], Image.Image], frame.to_image)
                frames.append(cover(to_image().convert("RGB"), *size))
                if len(frames) >= MAX_FRAMES:
                    break
    except Exception:
        # Not a readable video: the ordinary render takes over, as documented.
        log.debug("input is not a readable video", exc_info=True)
        return None
    if not frames:
        return None
    return Clip(frames, float(rate) if rate else 25.0, sound.decode_pcm(data), source)


def _clip_of(payload: Mapping[str, Any], files: FileStore, scale: float) -> Clip | None:
    url = payload.get("video_url")
    data = files.read_input(url) if isinstance(url, str) else None
    return load_clip(data, scale) if data is not None else None


# ---------------------------------------------------------------- retake


def _retaken(frame: Image.Image, prompt: str) -> Image.Image:
    """A frame of the redone range: unmistakably not the original (darkened, striped)."""
    out = Image.blend(frame, Image.new("RGB", frame.size, (0, 0, 0)), 0.8)
    draw = ImageDraw.Draw(out)
    w, h = out.size
    for x in range(-h, w, 12):
        draw.line([(x, h), (x + h, 0)], fill=_STRIPES, width=3)
    write_prompt(out, prompt)
    return out


def retake(payload: Mapping[str, Any], files: FileStore, scale: float,
           rng: random.Random) -> Made | None:
    clip = _clip_of(payload, files, scale)
    if clip is None:
        return None
    mode = str(payload.get("retake_mode", "replace_audio_and_video"))
    start = float(payload.get("start_time", 0.0))
    # A range running past the end is clamped to the clip, as Lightricks documents.
    end = min(clip.seconds, start + float(payload.get("duration", 5.0)))
    prompt = str(payload.get("prompt", ""))
    frames = list(clip.frames)
    if mode != "replace_audio":
        for i in range(len(frames)):
            if start <= i / clip.fps < end:
                frames[i] = _retaken(frames[i], prompt)
    pcm = clip.pcm
    if mode != "replace_video" and end > start:
        base = sound.fitted(pcm, clip.seconds)
        pcm = sound.splice(base, start, sound.tone(end - start, RETAKE_TONE))
    return Made(frames, clip.fps, pcm, clip.source_size)


# ---------------------------------------------------------------- extend


def _extension(payload: Mapping[str, Any], clip: Clip) -> tuple[int, bool, float]:
    """(frames to add, whether before the clip, fps) for either family's fields."""
    if "extend_direction" in payload or "num_frames" in payload:  # LTX-2 19B
        fps = clip.fps if payload.get("match_input_fps", True) else float(payload.get("fps", 25))
        return (int(payload.get("num_frames", 121)),
                payload.get("extend_direction") == "backward", fps)
    added = round(float(payload.get("duration", 5.0)) * clip.fps)
    return added, payload.get("mode") == "start", clip.fps


def extend(payload: Mapping[str, Any], files: FileStore, scale: float,
           rng: random.Random) -> Made | None:
    clip = _clip_of(payload, files, scale)
    if clip is None:
        return None
    added, before, fps = _extension(payload, clip)
    added = max(0, min(added, MAX_FRAMES))
    prompt = str(payload.get("prompt", ""))
    if before:
        # Leading into the first frame: far off at first, arriving at it.
        new = [continued(clip.frames[0], added - i, added, prompt) for i in range(added)]
        frames = new + clip.frames
    else:
        new = [continued(clip.frames[-1], i + 1, added, prompt) for i in range(added)]
        frames = clip.frames + new
    pcm = None
    if clip.pcm is not None or payload.get("generate_audio", True):
        fresh = sound.tone(added / fps, rng.choice((220.0, 330.0, 440.0)), 0.2)
        kept = sound.fitted(clip.pcm, clip.seconds)
        pcm = fresh + kept if before else kept + fresh
    return Made(frames, fps, pcm, clip.source_size)


# ---------------------------------------------------------------- audio to video


def _a2v_frames(payload: Mapping[str, Any], pcm: bytes, fps: float) -> int:
    if payload.get("match_audio_length", True):
        return max(1, round(sound.seconds_of(pcm) * fps))
    return int(payload.get("num_frames", 121))


def audio_to_video(payload: Mapping[str, Any], files: FileStore, scale: float,
                   rng: random.Random, endpoint: Endpoint | None = None) -> Made | None:
    url = payload.get("audio_url")
    data = files.read_input(url) if isinstance(url, str) else None
    pcm = sound.decode_pcm(data) if data is not None else None
    if pcm is None:
        return None
    image_url = payload.get("image_url")
    image_data = files.read_input(image_url) if isinstance(image_url, str) else None
    picture = load_picture(image_data) if image_data is not None else None
    fixed = endpoint.fixed_fps if endpoint is not None else None
    fps = float(payload.get("fps", fixed or 25.0))
    count = min(MAX_FRAMES, _a2v_frames(payload, pcm, fps))
    aspect = picture.width / picture.height if picture is not None else None
    if endpoint is not None:
        width, height, _ = output_geometry(endpoint, payload, aspect)
    else:
        width, height = (picture.width, picture.height) if picture is not None else (1280, 720)
    size = scaled_size(width, height, scale)
    spec = RenderSpec(width=size[0], height=size[1], frames=count, fps=fps, seed=rng.randrange(1 << 30),
                      prompt=str(payload.get("prompt", "")), source=picture)
    frames = pan_zoom_frames(spec, rng) if picture is not None else procedural_frames(spec, rng)
    track = sound.fitted(pcm, count / fps)
    levels = sound.peaks(track, size[0])
    for i, frame in enumerate(frames):
        sound.draw_waveform(frame, levels, i / max(1, count - 1))
    return Made(frames, fps, track, (width, height))


# ---------------------------------------------------------------- restyle


def restyled(frame: Image.Image) -> Image.Image:
    """The visible style change: four levels a channel, colours turned red -> green -> blue."""
    red, green, blue = ImageOps.posterize(frame, 2).split()
    return Image.merge("RGB", (blue, red, green))


def restyle(payload: Mapping[str, Any], files: FileStore, scale: float,
            rng: random.Random) -> Made | None:
    clip = _clip_of(payload, files, scale)
    if clip is None:
        return None
    fps = clip.fps if payload.get("match_input_fps", True) else float(payload.get("fps", 25))
    if payload.get("match_video_length", True):
        count = max(1, round(clip.seconds * fps))
    else:
        count = int(payload.get("num_frames", 121))
    count = min(count, MAX_FRAMES)
    # Frame i shows the source at the same moment (the clip loops when asked for more).
    frames = [restyled(clip.frames[int(i / fps * clip.fps) % len(clip.frames)])
              for i in range(count)]
    prompt = str(payload.get("prompt", ""))
    for frame in frames:
        write_prompt(frame, prompt)
    audio_url = payload.get("audio_url")
    audio_data = files.read_input(audio_url) if isinstance(audio_url, str) else None
    pcm = sound.decode_pcm(audio_data) if audio_data is not None else clip.pcm
    return Made(frames, fps, sound.fitted(pcm, count / fps) if pcm else None, clip.source_size)


# ---------------------------------------------------------------- dispatch

EDITS: dict[str, Edit] = {
    "retake-video": retake,
    "extend-video": extend,
    "video-to-video": restyle,
}


def edit_of(endpoint_id: str) -> str | None:
    """Which edit an endpoint makes, by the last part of its id; None for the others."""
    name = endpoint_id.rsplit("/", 1)[-1]
    return name if name in EDITS or name == "audio-to-video" else None


def render_edit(job: SimJob, files: FileStore, scale: float) -> dict[str, Any] | None:
    """The output JSON of an edit endpoint's job, its MP4 written; None when the job is no
    edit or its input is not readable here (the ordinary render then runs)."""
    kind = edit_of(job.endpoint.endpoint_id)
    if kind is None:
        return None
    rng = random.Random(job.seed)
    if kind == "audio-to-video":
        made = audio_to_video(job.payload, files, scale, rng, job.endpoint)
    else:
        made = EDITS[kind](job.payload, files, scale, rng)
    if made is None or not made.frames:
        return None
    return _output(job, files, made)


def _output(job: SimJob, files: FileStore, made: Made) -> dict[str, Any]:
    file_id, dest = files.new_file("video", ".mp4")
    name = f"{job.id}.mp4"
    write_mp4(made.frames, made.fps, dest, made.pcm)
    files.add(file_id, dest, "video/mp4")
    endpoint = job.endpoint
    # As in results.py: megapixel-priced models report the size they bill.
    billed = endpoint.price.usd_per_megapixel is not None
    width, height = made.billed_size if billed else made.frames[0].size
    count = len(made.frames)
    output: dict[str, Any] = {"video": {
        "url": files.url(file_id, name), "content_type": "video/mp4", "file_name": name,
        "file_size": dest.stat().st_size, "width": width, "height": height, "fps": made.fps,
        "duration": round(count / made.fps, 4), "num_frames": count,
    }}
    if not issubclass(endpoint.output_model, VideoOnlyOutput):
        output["seed"] = job.seed
        output["prompt"] = str(job.payload.get("prompt", ""))
    endpoint.output_model.model_validate(output)
    return output
