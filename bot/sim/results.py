"""A simulated job's result: its inputs read, a real MP4 rendered, and the output JSON
the endpoint's model validates, as fal would send it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from bot.catalog import output_geometry
from bot.sim.files import FileStore
from bot.sim.jobs import SimJob
from bot.sim.render import RenderSpec, load_picture, render_video, scaled_size


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


def render_result(job: SimJob, files: FileStore, scale: float) -> dict[str, Any]:
    """Runs in a worker thread: reads inputs, writes the MP4, returns the output JSON."""
    endpoint, payload = job.endpoint, job.payload
    source = _source_picture(payload, files)
    # `auto` follows the input's shape, as the bot's estimate assumes.
    aspect = source.width / source.height if source is not None and source.height else None
    width, height, frames = output_geometry(endpoint, payload, aspect)
    if endpoint.frames is not None and endpoint.frames.fps_field:
        fps = float(payload.get(endpoint.frames.fps_field, endpoint.frames.default_fps))
    else:
        fps = float(endpoint.fixed_fps or 25.0)
    out_w, out_h = scaled_size(width, height, scale)
    prompt = str(payload.get("prompt", ""))
    spec = RenderSpec(width=out_w, height=out_h, frames=frames, fps=fps, seed=job.seed,
                      prompt=prompt, source=source,
                      audio=endpoint.audio and bool(payload.get("generate_audio", True)),
                      reverse=bool(payload.get("reverse_video", False)))
    file_id, dest = files.new_file("video", ".mp4")
    name = f"{job.id}.mp4"
    render_video(spec, dest)
    files.add(file_id, dest, "video/mp4")
    # Megapixel-priced models bill what was asked for: report that size, so
    # settling on the simulator charges what fal would (the pixels are scaled down).
    billed = endpoint.price.usd_per_megapixel is not None
    output = {
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
        "seed": job.seed,
        "prompt": prompt,
    }
    endpoint.output_model.model_validate(output)
    return output
