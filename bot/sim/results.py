"""A simulated job's result: its inputs read, a real MP4 rendered, and the output JSON
the endpoint's model validates, as fal would send it.

What the inputs ask for is what the video shows (see `render.py`): each conditioning
image at its `start_frame_num` (`images[]`), a conditioning video's frames from its
`start_frame_num` on (`videos[]`), a start and an end image at the first and last
frame (`image_url` + `end_image_url`), and a clip to extend from its frame
`video.start_frame_num` on, continued after its last frame.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import av
from PIL import Image

from bot.catalog import VideoOnlyOutput, output_fps, output_geometry
from bot.sim.files import FileStore
from bot.sim.jobs import SimJob
from bot.sim.render import RenderSpec, load_frames, load_picture, render_video, scaled_size
from bot.sim.render_edits import render_edit

Anchors = list[tuple[int, Image.Image]]


def _input_media_urls(payload: Mapping[str, Any]) -> list[str]:
    """Every media URL in an input, the main one first (LTX inputs name them *_url)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(value, str) and key.endswith("_url") and key != "end_image_url":
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)
    return found


def _source_picture(payload: Mapping[str, Any], files: FileStore) -> Image.Image | None:
    """The first input picture we can read locally (anything else gets a procedural scene)."""
    for url in _input_media_urls(payload):
        data = files.read_input(url)
        picture = load_picture(data) if data is not None else None
        if picture is not None:
            return picture
    return None


def _picture_at(anchors: Anchors, frame: int, url: Any, files: FileStore) -> None:
    data = files.read_input(url) if isinstance(url, str) else None
    picture = load_picture(data) if data is not None else None
    if picture is not None:
        anchors.append((frame, picture))


def _clip_at(anchors: Anchors, frame: int, url: Any, skip: int, room: int,
             size: tuple[int, int], files: FileStore) -> None:
    """The clip's frames from its frame `skip` on, placed from output frame `frame` on."""
    data = files.read_input(url) if isinstance(url, str) else None
    if data is not None:
        clip = load_frames(data, skip, room - frame, size)
        anchors.extend((frame + i, picture) for i, picture in enumerate(clip))


def conditioning(payload: Mapping[str, Any], files: FileStore, frames: int,
                 size: tuple[int, int]) -> Anchors:
    """The output frames the inputs pin to a picture (the readable ones); video frames
    come made to `size`."""
    anchors: Anchors = []
    for item in payload.get("images") or []:
        _picture_at(anchors, int(item.get("start_frame_num", 0)), item.get("image_url"), files)
    for item in payload.get("videos") or []:
        _clip_at(anchors, int(item.get("start_frame_num", 0)), item.get("video_url"), 0,
                 frames, size, files)
    extended = payload.get("video")
    if isinstance(extended, Mapping):
        _clip_at(anchors, 0, extended.get("video_url"), int(extended.get("start_frame_num", 0)),
                 frames, size, files)
    if payload.get("end_image_url"):
        _picture_at(anchors, 0, payload.get("image_url"), files)
        _picture_at(anchors, frames - 1, payload.get("end_image_url"), files)
    return anchors


def audio_seconds(payload: Mapping[str, Any], files: FileStore) -> float | None:
    """The length of the input audio (`audio_url`) when the simulator can read it: a clip
    that follows its audio is that long, as the bot's estimate assumes."""
    url = payload.get("audio_url")
    data = files.read_input(url) if isinstance(url, str) else None
    if not data:
        return None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if container.duration:
                return float(container.duration / av.time_base)
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, IndexError, ValueError):
        return None
    return None


def render_result(job: SimJob, files: FileStore, scale: float) -> dict[str, Any]:
    """Runs in a worker thread: reads inputs, writes the MP4, returns the output JSON."""
    edited = render_edit(job, files, scale)  # retake, extend, restyle, audio: see render_edits
    if edited is not None:
        return edited
    endpoint, payload = job.endpoint, job.payload
    source = _source_picture(payload, files)
    # `auto` follows the input's shape, as the bot's estimate assumes.
    aspect = source.width / source.height if source is not None and source.height else None
    width, height, frames = output_geometry(endpoint, payload, aspect,
                                            audio_seconds(payload, files))
    fps = output_fps(endpoint, payload)
    out_w, out_h = scaled_size(width, height, scale)
    prompt = str(payload.get("prompt", ""))
    spec = RenderSpec(width=out_w, height=out_h, frames=frames, fps=fps, seed=job.seed,
                      prompt=prompt, source=source,
                      audio=endpoint.audio and bool(payload.get("generate_audio", True)),
                      reverse=bool(payload.get("reverse_video", False)),
                      anchors=tuple(conditioning(payload, files, frames, (out_w, out_h))))
    file_id, dest = files.new_file("video", ".mp4")
    name = f"{job.id}.mp4"
    render_video(spec, dest)
    files.add(file_id, dest, "video/mp4")
    # Megapixel-priced models bill what was asked for: report that size, so
    # settling on the simulator charges what fal would (the pixels are scaled down).
    billed = endpoint.price.usd_per_megapixel is not None
    output: dict[str, Any] = {
        "video": {
            "url": files.url(file_id, name),
            "content_type": "video/mp4",
            "file_name": name,
            "file_size": dest.stat().st_size,
            "width": width if billed else out_w,
            "height": height if billed else out_h,
            "fps": fps,
            "duration": round(frames / fps, 4),
            "num_frames": frames,
        },
    }
    # LTX-2.3 Pro/Fast and its extend/retake/audio endpoints return only the video.
    if not issubclass(endpoint.output_model, VideoOnlyOutput):
        output |= {"seed": job.seed, "prompt": prompt}
    endpoint.output_model.model_validate(output)
    return output
