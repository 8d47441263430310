"""A `Command` plus its media -> a `GenerationRequest`: the endpoint and its validated fal input.

`build_request` runs in small steps, each of which reads the user's options
and fills its part of the fal input: the clip's length, the options that map
one-to-one onto a field, the framing (aspect and resolution), where the
attachments' URLs go, and the keyframe timeline. Each step says itself, in the
user's words, when the chosen model does not take what was asked.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import ValidationError

from bot import catalog
from bot.catalog import Endpoint, FrameRule
from bot.config import Settings
from bot.errors import MediaError, UnsupportedOption, UsageError
from bot.grammar import MAX_SEED, OPTION_BY_NAME, Command, format_number
from bot.jsonpath import set_path
from bot.model import GenerationRequest, MediaRef, MediaSlot

# --ar on LTX-2, whose `video_size` takes fal's size names rather than ratios.
LTX2_ASPECT_SIZES = {"16:9": "landscape_16_9", "9:16": "portrait_16_9", "1:1": "square_hd",
                     "4:3": "landscape_4_3", "3:4": "portrait_4_3", "auto": "auto"}
# Options that pick or shape the request rather than map onto one model field.
ROUTING_OPTIONS = frozenset({"model", "extend", "image", "video"})
# Options that map onto one input field of the same meaning on every model that takes them.
DIRECT_OPTIONS = frozenset({
    "negative", "seed", "steps", "guidance", "audio", "camera", "camera_scale", "end_strength",
    "expand", "multiscale", "acceleration", "quality", "reverse", "crf",
})
# Options whose own step says when a model does not take them (with a better hint).
_OWN_STEP = frozenset({"seconds", "frames", "fps", "positions", "strength"})


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


# ---------------------------------------------------------------- choosing the endpoint


def media_counts(media: Sequence[MediaRef]) -> tuple[int, int]:
    """(images, videos)."""
    images = sum(1 for m in media if m.kind == "image")
    return images, len(media) - images


def choose_endpoint(command: Command, media: Sequence[MediaRef], settings: Settings) -> Endpoint:
    endpoint = _route(command, media, settings)
    images, videos = media_counts(media)
    # Whatever picked the model (the user or the routing table), it must take these inputs.
    if not endpoint.media.accepts(images, videos):
        raise MediaError(
            f"{endpoint.title} takes {endpoint.media.describe()}, but you gave "
            f"{_describe_counts(images, videos)}."
        )
    return endpoint


def _route(command: Command, media: Sequence[MediaRef], settings: Settings) -> Endpoint:
    model = command.options.get("model")
    if model:
        return _named_model(str(model))
    images, videos = media_counts(media)
    models = settings.models
    if command.name == "extend" or command.options.get("extend"):
        if videos != 1 or images:
            raise MediaError(
                "Extend needs exactly one video (and no images): attach a clip or reply to a "
                f"message that has one. You gave {_describe_counts(images, videos)}."
            )
        return catalog.by_name(models.extend)
    if command.name == "keyframes":
        if images + videos == 0:
            raise MediaError(
                "Keyframes need images (or a video) to steer the clip: attach two or more "
                "images, e.g. /keyframes --image a.png --image b.png a flower opens."
            )
        return catalog.by_name(models.keyframes)
    if images == 0 and videos == 0:
        return _text_model(command, settings)
    if images == 1 and videos == 0:
        return catalog.by_name(models.image)
    return catalog.by_name(models.keyframes)


def _named_model(model: str) -> Endpoint:
    try:
        return catalog.by_name(model)
    except catalog.UnknownModel:
        close = difflib.get_close_matches(model.lower(), catalog.all_names(), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UsageError(
            f"There is no model called {model!r}.{hint} Models: "
            + ", ".join(e.key for e in catalog.ENDPOINTS) + "."
        ) from None


def _text_model(command: Command, settings: Settings) -> Endpoint:
    text_model = catalog.by_name(settings.models.text)
    # The 0.9 text model has no length or framing controls. When the user asks for
    # them, the 13B model (which also runs from a prompt alone) is what they mean.
    wanted = [o for o in command.options if o not in ROUTING_OPTIONS]
    if wanted and not all(_supports(text_model, o) for o in wanted):
        fallback = catalog.by_name(settings.models.keyframes)
        if fallback.media.accepts(0, 0) and all(_supports(fallback, o) for o in wanted):
            return fallback
    return text_model


def _supports(endpoint: Endpoint, option: str) -> bool:
    if option in ("seconds", "frames"):
        return endpoint.frames is not None
    if option == "fps":
        return endpoint.frames is not None and endpoint.frames.fps_field is not None
    return option in endpoint.options


def _describe_counts(images: int, videos: int) -> str:
    if not images and not videos:
        return "no attachments"
    parts = []
    if images:
        parts.append(f"{images} image{'s' if images != 1 else ''}")
    if videos:
        parts.append(f"{videos} video{'s' if videos != 1 else ''}")
    return " and ".join(parts)


# ---------------------------------------------------------------- building the request


@dataclass
class _Draft:
    """The fal input while the steps of `build_request` fill it in, and what it is made from."""

    endpoint: Endpoint
    options: Mapping[str, Any]
    media: Sequence[MediaRef]
    payload: dict[str, Any]
    slots: list[MediaSlot] = field(default_factory=list)


def build_request(
    command: Command,
    media: Sequence[MediaRef],
    settings: Settings,
    *,
    seed_source: Callable[[], int] | None = None,
) -> GenerationRequest:
    """Route, map every option onto the chosen endpoint's fields, validate, and price it."""
    if command.name == "quote" and not command.prompt and not media:
        raise UsageError("What should I price? e.g. quote a red fox runs through snow --seconds 5")
    if not command.prompt:
        raise UsageError(
            "Please describe the video, e.g. `a red fox runs through snow at dawn --seconds 5`."
        )
    endpoint = choose_endpoint(command, media, settings)
    for name in command.options:
        if name not in ROUTING_OPTIONS | _OWN_STEP and name not in endpoint.options:
            raise _unsupported(endpoint, name, media)
    draft = _Draft(endpoint, command.options, media, {"prompt": command.prompt})
    for step in (_length, _direct_options, _framing, _media_fields, _strength, _start_frame,
                 _keyframes):
        step(draft)
    if "seed" not in draft.payload and seed_source is not None:
        draft.payload["seed"] = seed_source()
    data = validate_input(endpoint, draft.payload)
    estimate = catalog.estimate(endpoint, data, settings.quota.credits_per_usd, settings.prices)
    return GenerationRequest(endpoint=endpoint, input=data, estimate=estimate,
                             media=list(media), slots=draft.slots, prompt=command.prompt)


def validate_input(endpoint: Endpoint, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload checked against the endpoint's input model, JSON-ready, without None values."""
    try:
        model = endpoint.input_model.model_validate(payload)
    except ValidationError as exc:
        raise UsageError(_explain_validation(endpoint, exc)) from None
    return model.model_dump(mode="json", exclude_none=True)


# -- length: seconds, frames, fps


def _length(draft: _Draft) -> None:
    rule = draft.endpoint.frames
    if rule is None:
        for name in ("seconds", "frames", "fps"):
            if name in draft.options:
                raise UnsupportedOption(
                    f"{draft.endpoint.title} makes clips of a fixed length, so "
                    f"--{OPTION_BY_NAME[name].flags[0]} does not apply. LTX-2 (with an image) "
                    "and ltx-13b take --seconds and --fps."
                )
        return
    fps = _fps(draft, rule)
    frames = _frames(draft, rule, fps)
    if frames is not None:
        draft.payload[rule.field] = frames


def _fps(draft: _Draft, rule: FrameRule) -> float:
    endpoint = draft.endpoint
    fps = float(draft.options.get("fps", rule.default_fps))
    if rule.fps_field:
        _check_model_range(endpoint, "fps", rule.fps_field, fps)
        if endpoint.input_model.model_fields[rule.fps_field].annotation is int:
            if not fps.is_integer():
                raise UsageError(
                    f"{endpoint.title} takes a whole --fps, e.g. --fps 24; got {format_number(fps)}."
                )
            draft.payload[rule.fps_field] = int(fps)
        else:
            draft.payload[rule.fps_field] = fps
    return fps


def _frames(draft: _Draft, rule: FrameRule, fps: float) -> int | None:
    options = draft.options
    if "frames" in options and "seconds" in options:
        raise UsageError("Give either --seconds or --frames, not both.")
    if "frames" in options:
        frames = rule.snap(int(options["frames"]))
        asked = f"--frames {options['frames']}"
    elif "seconds" in options:
        frames = rule.frames_for_seconds(float(options["seconds"]), fps)
        asked = f"--seconds {format_number(float(options['seconds']))}"
    else:
        return None
    if not rule.minimum <= frames <= rule.maximum:
        lo_s, hi_s = (rule.minimum - 1) / fps, (rule.maximum - 1) / fps
        raise UsageError(
            f"{asked} is out of range for {draft.endpoint.title}: at {format_number(fps)} fps it "
            f"makes {rule.minimum} to {rule.maximum} frames ({lo_s:.1f} s to {hi_s:.1f} s)."
        )
    return frames


# -- options that map one-to-one


def _direct_options(draft: _Draft) -> None:
    options, endpoint = draft.options, draft.endpoint
    for name in (o for o in options if o in DIRECT_OPTIONS):
        field_name = endpoint.options[name]
        value = options[name]
        if isinstance(value, int | float) and not isinstance(value, bool):
            _check_model_range(endpoint, name, field_name, float(value))
        draft.payload[field_name] = value
    if "camera_scale" in options and options.get("camera", "none") == "none":
        raise UsageError("--camera-scale needs a camera move too, e.g. --camera dolly_in --camera-scale 0.7.")
    if "end_strength" in options and media_counts(draft.media)[0] < 2:
        raise UsageError("--end-strength needs an end image: attach a second image.")


# -- framing: aspect and resolution


def _framing(draft: _Draft) -> None:
    options, endpoint = draft.options, draft.endpoint
    aspect = options.get("aspect")
    if endpoint.options.get("aspect") == "video_size":
        if "resolution" in options:
            draft.payload["video_size"] = _resolution_size(str(options["resolution"]), aspect or "16:9")
        elif aspect:
            draft.payload["video_size"] = LTX2_ASPECT_SIZES[aspect]
        return
    if aspect is not None:
        allowed = _literal_choices(endpoint, "aspect_ratio")
        if aspect not in allowed:
            raise UsageError(f"{endpoint.title} takes --ar {', '.join(allowed)}; got {aspect}.")
        draft.payload["aspect_ratio"] = aspect
    if "resolution" in options:
        allowed = _literal_choices(endpoint, "resolution")
        res = str(options["resolution"]).lower()
        if res not in allowed:
            raise UsageError(
                f"{endpoint.title} takes --resolution {', '.join(allowed)}; got {options['resolution']}."
            )
        draft.payload["resolution"] = res


def _resolution_size(resolution: str, aspect: str) -> dict[str, int]:
    text = resolution.lower().replace(" ", "")
    refusal = (f"--resolution takes 480p, 720p, 1080p or WIDTHxHEIGHT like 1280x720; "
               f"got {resolution!r}.")
    if "x" in text:
        w, _, h = text.partition("x")
        if w.isdigit() and h.isdigit():
            return {"width": int(w), "height": int(h)}
        raise UsageError(refusal)
    heights = {"480p": 480, "720p": 720, "1080p": 1080}
    if text not in heights:
        raise UsageError(refusal)
    short = heights[text]
    ratios = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4)}
    rw, rh = ratios.get(aspect, (16, 9))
    # Keep the short side exact and round the long one to a multiple of 32, which LTX prefers.
    if rw >= rh:
        return {"width": int(round(short * rw / rh / 32) * 32), "height": short}
    return {"width": short, "height": int(round(short * rh / rw / 32) * 32)}


# -- where the attachments go


def _media_fields(draft: _Draft) -> None:
    """Fill the endpoint's URL fields in order, images and videos each in turn."""
    layout = draft.endpoint.layout
    for kind, paths in (("image", layout.image_fields), ("video", layout.video_fields)):
        indexes = [i for i, m in enumerate(draft.media) if m.kind == kind]
        for dotted, index in zip(paths, indexes, strict=False):
            path = tuple(dotted.split("."))
            set_path(draft.payload, path, draft.media[index].url)
            draft.slots.append(MediaSlot(path=path, media_index=index))


def _strength(draft: _Draft) -> None:
    if "strength" not in draft.options:
        return
    endpoint = draft.endpoint
    if "strength" not in endpoint.options:
        raise _unsupported(endpoint, "strength", draft.media)
    field_name = endpoint.options["strength"]
    if field_name != "strength":  # keyframe lists carry it per item: see _keyframes
        _check_model_range(endpoint, "strength", field_name, float(draft.options["strength"]))
        draft.payload[field_name] = draft.options["strength"]


def _start_frame(draft: _Draft) -> None:
    if "start_frame" not in draft.options:
        return
    video_fields = draft.endpoint.layout.video_fields
    if not video_fields:
        raise _unsupported(draft.endpoint, "start_frame", draft.media)
    # The frame number sits next to the video's URL (extend: video.start_frame_num).
    parent = tuple(video_fields[0].split("."))[:-1]
    set_path(draft.payload, (*parent, draft.endpoint.options["start_frame"]),
             draft.options["start_frame"])


def _keyframes(draft: _Draft) -> None:
    """Endpoints with conditioning lists take every input at a frame of the timeline."""
    endpoint, layout = draft.endpoint, draft.endpoint.layout
    if not (layout.image_list or layout.video_list):
        if "positions" in draft.options:
            raise _unsupported(endpoint, "positions", draft.media)
        return
    rule = endpoint.frames
    total = int(draft.payload.get(rule.field, rule.default)) if rule else 121
    positions = _positions(draft.options.get("positions"), len(draft.media), total)
    strength = float(draft.options.get("strength", 1.0))
    items: dict[str, list[dict[str, Any]]] = {}
    for index, (ref, pos) in enumerate(zip(draft.media, positions, strict=True)):
        list_field = layout.image_list if ref.kind == "image" else layout.video_list
        if list_field is None:
            raise MediaError(f"{endpoint.title} cannot take a {ref.kind} here.")
        bucket = items.setdefault(list_field, [])
        draft.slots.append(MediaSlot(path=(list_field, len(bucket), f"{ref.kind}_url"),
                                     media_index=index))
        bucket.append({f"{ref.kind}_url": ref.url, "start_frame_num": pos, "strength": strength})
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


# ---------------------------------------------------------------- the model's own limits


def _field_bounds(endpoint: Endpoint, field_name: str) -> tuple[float | None, float | None]:
    info = endpoint.input_model.model_fields.get(field_name)
    lo: float | None = None
    hi: float | None = None
    if info is None:
        return lo, hi
    for meta in info.metadata:
        if isinstance(meta, Ge):
            lo = float(meta.ge)  # type: ignore[arg-type]
        elif isinstance(meta, Gt):
            lo = float(meta.gt)  # type: ignore[arg-type]
        elif isinstance(meta, Le):
            hi = float(meta.le)  # type: ignore[arg-type]
        elif isinstance(meta, Lt):
            hi = float(meta.lt)  # type: ignore[arg-type]
    return lo, hi


def _check_model_range(endpoint: Endpoint, option: str, field_name: str, value: float) -> None:
    lo, hi = _field_bounds(endpoint, field_name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        flag = OPTION_BY_NAME[option].flags[0]
        if lo is not None and hi is not None:
            rng = f"between {format_number(lo)} and {format_number(hi)}"
        elif lo is not None:
            rng = f"at least {format_number(lo)}"
        else:
            rng = f"at most {format_number(hi or 0)}"
        raise UsageError(f"--{flag} must be {rng} for {endpoint.title}; got {format_number(value)}.")


def _literal_choices(endpoint: Endpoint, field_name: str) -> tuple[str, ...]:
    annotation = endpoint.input_model.model_fields[field_name].annotation
    return tuple(getattr(annotation, "__args__", ()))


def _unsupported(
    endpoint: Endpoint, option: str, media: Sequence[MediaRef] = ()
) -> UnsupportedOption:
    flag = OPTION_BY_NAME[option].flags[0]
    images, videos = media_counts(media)
    # Only suggest models that could run with what the user attached.
    others = [e.key for e in catalog.ENDPOINTS
              if e is not endpoint and _supports(e, option) and e.media.accepts(images, videos)]
    hint = f" Use --model {' or '.join(others)} for that." if others else ""
    return UnsupportedOption(f"{endpoint.title} does not support --{flag}.{hint}")


def _explain_validation(endpoint: Endpoint, exc: ValidationError) -> str:
    reverse = {v: k for k, v in endpoint.options.items()}
    parts = []
    for err in exc.errors():
        field_name = ".".join(str(p) for p in err["loc"])
        option = reverse.get(str(err["loc"][0])) if err["loc"] else None
        label = f"--{OPTION_BY_NAME[option].flags[0]}" if option else field_name
        parts.append(f"{label}: {err['msg']}")
    return f"{endpoint.title} refused this request: " + "; ".join(parts) + "."
