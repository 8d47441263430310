"""The routing steps about the inputs: where each URL goes, the section of a clip to redo
(retake), the frame to extend from, an audio file's length, and the keyframe timeline."""

from __future__ import annotations

from typing import Any

from bot.errors import MediaError, UsageError
from bot.framing import field_bounds
from bot.grammar import format_number
from bot.jsonpath import set_path
from bot.model import MediaKind, MediaSlot
from bot.routing_limits import Draft, check_model_range, unsupported

# Seconds a probed clip may fall short of the range asked for (rounding of its length).
_TOLERANCE = 0.05


def media_fields(draft: Draft) -> None:
    """Fill the endpoint's URL fields in order, images (an --end image last), videos and
    audio each in turn."""
    layout = draft.endpoint.layout
    kinds: tuple[tuple[MediaKind, tuple[str, ...]], ...] = (
        ("image", layout.image_fields), ("video", layout.video_fields), ("audio", layout.audio_fields))
    for kind, paths in kinds:
        indexes = [i for i, m in enumerate(draft.media) if m.kind == kind]
        indexes.sort(key=lambda i: draft.media[i].role == "end")
        if kind == "image" and any(draft.media[i].role == "end" for i in indexes):
            if len(paths) < 2 or not paths[-1].split(".")[-1].startswith("end_"):
                raise MediaError(f"{draft.endpoint.title} takes no end image (--end).")
            if len(indexes) == 1:  # only an end image: it goes to the end field
                paths = paths[-1:]
        for dotted, index in zip(paths, indexes, strict=False):
            path = tuple(dotted.split("."))
            set_path(draft.payload, path, draft.media[index].url)
            draft.slots.append(MediaSlot(path=path, media_index=index))


def strength(draft: Draft) -> None:
    if "strength" not in draft.options:
        return
    endpoint = draft.endpoint
    if "strength" not in endpoint.options:
        raise unsupported(endpoint, "strength", draft.media)
    field_name = endpoint.options["strength"]
    if field_name != "strength":  # keyframe lists carry it per item: see keyframes
        check_model_range(endpoint, "strength", field_name, float(draft.options["strength"]))
        draft.payload[field_name] = draft.options["strength"]


def start_frame(draft: Draft) -> None:
    """--from-frame (and --from, on a model that extends from a frame number)."""
    options, endpoint = draft.options, draft.endpoint
    given = options.get("start_frame")
    if given is None and "from" in options and "start_frame" in endpoint.options:
        value = float(options["from"])
        if not value.is_integer():
            raise UsageError(f"On {endpoint.title}, --from is a frame number (a whole number, "
                             f"e.g. --from 24); got {format_number(value)}.")
        given = int(value)
    if given is None:
        return
    video_fields = endpoint.layout.video_fields
    if not video_fields or "start_frame" not in endpoint.options:
        raise unsupported(endpoint, "start_frame", draft.media)
    # The frame number sits next to the video's URL (extend: video.start_frame_num).
    parent = tuple(video_fields[0].split("."))[:-1]
    set_path(draft.payload, (*parent, endpoint.options["start_frame"]), given)


def section(draft: Draft) -> None:
    """Retake: --from and --to, in seconds of the clip, become `start_time` and `duration`,
    within the model's limits and the clip's length (when it is known)."""
    options, endpoint = draft.options, draft.endpoint
    if "from" not in endpoint.options:
        if "to" in options or ("from" in options and "start_frame" not in endpoint.options):
            raise unsupported(endpoint, "to" if "to" in options else "from", draft.media)
        return
    fields = endpoint.input_model.model_fields
    start_field, length_field = endpoint.options["from"], endpoint.options["to"]
    start = float(options.get("from", 0.0))
    clip = next((m.duration for m in draft.media if m.kind == "video" and m.duration), None)
    default_end = start + float(fields[length_field].default)
    end = float(options.get("to", min(default_end, clip) if clip else default_end))
    (s_lo, s_hi), (d_lo, d_hi) = (_bounds(draft, start_field), _bounds(draft, length_field))
    limits = (f"{endpoint.title} redoes {format_number(d_lo)} to {format_number(d_hi)} s of a "
              f"clip, starting within its first {format_number(s_hi)} s")
    if end <= start:
        raise UsageError(f"--to must be after --from (both in seconds of the clip); got --from "
                         f"{format_number(start)} --to {format_number(end)}.")
    if clip is not None and end > clip + _TOLERANCE:
        raise UsageError(f"The clip is {clip:.1f} s long, so --from {format_number(start)} --to "
                         f"{format_number(end)} runs past its end. {limits}.")
    if not (s_lo <= start <= s_hi and d_lo <= end - start <= d_hi):
        raise UsageError(f"--from {format_number(start)} --to {format_number(end)} is a "
                         f"{format_number(end - start)} s section: {limits}.")
    draft.payload[start_field] = start
    draft.payload[length_field] = round(end - start, 3)


def _bounds(draft: Draft, field_name: str) -> tuple[float, float]:
    lo, hi = field_bounds(draft.endpoint, field_name)
    return (lo or 0.0, hi if hi is not None else float("inf"))


def audio_length(draft: Draft) -> None:
    """An audio file's length within what the model takes, checked before any cost."""
    limits = draft.endpoint.audio_seconds
    if limits is None:
        return
    for ref in draft.media:
        if ref.kind == "audio" and ref.duration is not None and not (
                limits[0] - _TOLERANCE <= ref.duration <= limits[1] + _TOLERANCE):
            raise MediaError(
                f"{draft.endpoint.title} takes {format_number(limits[0])} to "
                f"{format_number(limits[1])} s of audio; this file is {ref.duration:.1f} s long."
                " Trim it and send it again."
            )


def keyframes(draft: Draft) -> None:
    """Endpoints with conditioning lists take every input at a frame of the timeline."""
    endpoint, layout = draft.endpoint, draft.endpoint.layout
    if not (layout.image_list or layout.video_list):
        if "positions" in draft.options:
            raise unsupported(endpoint, "positions", draft.media)
        return
    rule = endpoint.frames
    total = int(draft.payload.get(rule.field, rule.default)) if rule else 121
    positions = _positions(draft.options.get("positions"), len(draft.media), total)
    weight = float(draft.options.get("strength", 1.0))
    items: dict[str, list[dict[str, Any]]] = {}
    for index, (ref, pos) in enumerate(zip(draft.media, positions, strict=True)):
        list_field = layout.image_list if ref.kind == "image" else layout.video_list
        if list_field is None or ref.kind == "audio":
            raise MediaError(f"{endpoint.title} cannot take a {ref.kind} here.")
        bucket = items.setdefault(list_field, [])
        draft.slots.append(MediaSlot(path=(list_field, len(bucket), f"{ref.kind}_url"),
                                     media_index=index))
        bucket.append({f"{ref.kind}_url": ref.url, "start_frame_num": pos, "strength": weight})
    draft.payload.update(items)


def _positions(given: list[int] | None, count: int, total: int) -> list[int]:
    if given is None:
        positions = default_positions(count, total)
    elif len(given) != count:
        raise UsageError(
            f"--at lists {len(given)} position{'s' if len(given) != 1 else ''} but there "
            f"{'is' if count == 1 else 'are'} {count} image/video input"
            f"{'s' if count != 1 else ''}; give one frame number per input, in order."
        )
    else:
        positions = given
    for pos in positions:
        if pos >= total:
            raise UsageError(
                f"Keyframe position {pos} is past the end of the clip ({total} frames, "
                f"last frame {total - 1})."
            )
    return positions


def default_positions(count: int, frames: int) -> list[int]:
    """Keyframes spread evenly over the clip, on multiples of 8 (LTX's latent stride)."""
    if count <= 1:
        return [0] * count
    last = frames - 1
    return [int(round(i * last / (count - 1) / 8) * 8) if i < count - 1 else (last // 8) * 8
            for i in range(count)]
