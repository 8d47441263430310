"""A `Command` plus its media -> a `GenerationRequest`: the endpoint and its validated fal input.

`build_request` runs in small steps, each of which reads the user's options
and fills its part of the fal input: the clip's length, the options that map
one-to-one onto a field, the framing (aspect and resolution), where the
attachments' URLs go, and the keyframe timeline. Each step says itself, in the
user's words, when the chosen model does not take what was asked.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot import catalog, framing, media
from bot.catalog import Endpoint, FrameRule
from bot.config import Settings
from bot.errors import MediaError, UnsupportedOption, UsageError
from bot.grammar import MAX_SEED, OPTION_BY_NAME, Command, format_number, tokenize
from bot.jsonpath import set_path
from bot.model import GenerationRequest, MediaKind, MediaRef, MediaSlot
from bot.ports import PlatformTraits

# --ar on LTX-2, whose `video_size` takes fal's size names rather than ratios.
LTX2_ASPECT_SIZES = framing.LTX2_ASPECT_SIZES
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


def choose_endpoint(
    command: Command, media: Sequence[MediaRef], settings: Settings,
    traits: PlatformTraits | None = None,
) -> Endpoint:
    endpoint = _route(command, media, settings, traits or PlatformTraits())
    images, videos = media_counts(media)
    # Whatever picked the model (the user or the routing table), it must take these inputs.
    if not endpoint.media.accepts(images, videos):
        raise MediaError(
            f"{endpoint.title} takes {endpoint.media.describe()}, but you gave "
            f"{_describe_counts(images, videos)}."
        )
    return endpoint


def _route(
    command: Command, media: Sequence[MediaRef], settings: Settings, traits: PlatformTraits
) -> Endpoint:
    model = command.options.get("model")
    if model:
        return _named_model(str(model))
    images, videos = media_counts(media)
    models = settings.models
    if command.name == "extend" or command.options.get("extend"):
        if videos != 1 or images:
            gave = f" You gave {_describe_counts(images, videos)}." if images or videos else ""
            raise MediaError(
                f"Extend needs exactly one video (and no images): {_give_video(traits)}.{gave}"
            )
        return catalog.by_name(models.extend)
    if command.name == "keyframes":
        if images + videos == 0:
            give = "give" if traits.local_files else "attach"
            raise MediaError(
                f"Keyframes need images (or a video) to steer the clip: {give} two or more "
                f"images, e.g. {traits.command_prefix}keyframes --image a.png --image b.png "
                "a flower opens."
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
        close = catalog.suggest(model)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(
            f"There is no model called {model!r}.{hint} Models (other names in brackets): "
            f"{catalog.listing()}."
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


def _give_video(traits: PlatformTraits) -> str:
    """How a user gives a clip here: by path or job number where local files are
    accepted (a terminal has nothing to attach and no message to reply to)."""
    if traits.local_files:
        prefix = traits.command_prefix
        return (f"give one with --video PATH (a file or a link), or extend a finished job "
                f"with {prefix}extend #N (see {prefix}jobs)")
    return "attach a clip or reply to a message that has one"


def _describe_counts(images: int, videos: int) -> str:
    if not images and not videos:
        return "no attachments"
    parts = []
    if images:
        parts.append(f"{images} image{'s' if images != 1 else ''}")
    if videos:
        parts.append(f"{videos} video{'s' if videos != 1 else ''}")
    return " and ".join(parts)


# ---------------------------------------------------------------- a prompt that names a file

# Punctuation that may cling to a word: "see cat.png," names cat.png.
_CLINGING = ",;:!?()[]{}<>\"'`"


def refuse_file_words(command: Command, text: str, traits: PlatformTraits, *, attached: int) -> None:
    """Refuse a prompt without media that names a file (`the cat yawns cat.png`).

    It would run a text-to-video that never sees the file, and charge for it; a refusal
    costs nothing and says how to give the file. A word the user put in quotes is meant
    as a word. `text` is the raw text the command was parsed from; `attached` counts the
    platform's attachments. Files on this machine count only where the platform takes
    local paths."""
    if attached or command.media:
        return
    quoted = {w for token, was_quoted in tokenize(text) if was_quoted for w in token.split()}
    for word in command.prompt.split():
        name = word.strip(_CLINGING).rstrip(".")
        kind = None if word in quoted else _file_kind(name, traits)
        if kind is not None:
            raise UsageError(_file_word_refusal(name, kind, traits))


def _file_kind(name: str, traits: PlatformTraits) -> MediaKind | None:
    kind = media.kind_from_hint(None, name)
    if kind != "unknown":
        return kind
    if not traits.local_files or not ("/" in name or "." in name.strip(".")):
        return None
    path = Path(name).expanduser()
    try:
        return media.kind_of_file(path) if path.is_file() else None
    except (MediaError, OSError):
        return None  # a file, but not a picture or a clip: a word like any other


def _file_word_refusal(name: str, kind: MediaKind, traits: PlatformTraits) -> str:
    article = "an" if kind == "image" else "a"
    word = "but here it is only a word of the prompt"
    if "://" in name:
        said, give = f"{name} is a link to {article} {kind}, {word}", f"give it with --{kind} {name}"
    elif traits.local_files:
        said, give = f"{name} looks like {article} {kind} file, {word}", f"give it with --{kind} {name}"
    else:
        said = f"{name} looks like the name of {article} {kind}, but nothing is attached"
        give = f"attach it (or reply to a message that has it), or give a link with --{kind} URL"
    return (f"{said}: the model would never see it. To start from it, {give}. "
            "If you meant the word, put it in quotes.")


# ---------------------------------------------------------------- building the request


@dataclass
class _Draft:
    """The fal input while the steps of `build_request` fill it in, and what it is made from."""

    endpoint: Endpoint
    options: Mapping[str, Any]
    media: Sequence[MediaRef]
    payload: dict[str, Any]
    slots: list[MediaSlot] = field(default_factory=list)
    source_aspect: float | None = None  # the first input's width/height, once it is probed


def build_request(
    command: Command,
    media: Sequence[MediaRef],
    settings: Settings,
    *,
    seed_source: Callable[[], int] | None = None,
    input_aspect: float | None = None,
    traits: PlatformTraits | None = None,
) -> GenerationRequest:
    """Route, map every option onto the chosen endpoint's fields, validate, and price it.

    `input_aspect` is the first input's width/height once it has been probed: where a
    model would impose its own shape (extend: 16:9), the request follows the input's
    unless --ar says otherwise. `traits` words refusals for the platform (how to give a
    file there)."""
    if command.name == "quote" and not command.prompt and not media:
        raise UsageError("What should I price? e.g. quote a red fox runs through snow --seconds 5")
    if not command.prompt:
        raise UsageError(
            "Please describe the video, e.g. `a red fox runs through snow at dawn --seconds 5`."
        )
    endpoint = choose_endpoint(command, media, settings, traits)
    for name in command.options:
        if name not in ROUTING_OPTIONS | _OWN_STEP and name not in endpoint.options:
            raise _unsupported(endpoint, name, media)
    draft = _Draft(endpoint, command.options, media, {"prompt": command.prompt},
                   source_aspect=input_aspect)
    for step in (_length, _direct_options, _framing, _media_fields, _strength, _start_frame,
                 _keyframes):
        step(draft)
    if "seed" not in draft.payload and seed_source is not None:
        draft.payload["seed"] = seed_source()
    data = validate_input(endpoint, draft.payload)
    estimate = catalog.estimate(endpoint, data, settings.quota.credits_per_usd, settings.prices,
                                input_aspect=input_aspect)
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
                    f"--{OPTION_BY_NAME[name].flags[0]} does not apply."
                    + _who_takes(draft.endpoint, name, draft.media)
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


# -- framing: aspect and resolution (bot.framing)


def _framing(draft: _Draft) -> None:
    framing.apply(draft.endpoint, draft.options, draft.payload, draft.source_aspect)


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


def _check_model_range(endpoint: Endpoint, option: str, field_name: str, value: float) -> None:
    lo, hi = framing.field_bounds(endpoint, field_name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        flag = OPTION_BY_NAME[option].flags[0]
        if lo is not None and hi is not None:
            rng = f"between {format_number(lo)} and {format_number(hi)}"
        elif lo is not None:
            rng = f"at least {format_number(lo)}"
        else:
            rng = f"at most {format_number(hi or 0)}"
        raise UsageError(f"--{flag} must be {rng} for {endpoint.title}; got {format_number(value)}.")


def _unsupported(
    endpoint: Endpoint, option: str, media: Sequence[MediaRef] = ()
) -> UnsupportedOption:
    flag = OPTION_BY_NAME[option].flags[0]
    return UnsupportedOption(
        f"{endpoint.title} does not support --{flag}.{_who_takes(endpoint, option, media)}"
    )


def _who_takes(endpoint: Endpoint, option: str, media: Sequence[MediaRef]) -> str:
    """Which models take `option`: those that could run with what the user attached, or
    else every one that takes it and what it needs (--camera on a prompt alone: ltx-2,
    with an image), so a refusal always says where the option works."""
    images, videos = media_counts(media)
    takers = [e for e in catalog.ENDPOINTS if e is not endpoint and _supports(e, option)]
    runnable = [e.key for e in takers if e.media.accepts(images, videos)]
    if runnable:
        return f" Use --model {' or '.join(runnable)} for that."
    if len(takers) == 1:
        return f" Only {takers[0].key} takes it, with {takers[0].media.describe()}."
    if takers:
        return " " + ", ".join(f"{e.key} (with {e.media.describe()})" for e in takers) + " take it."
    return ""


def _explain_validation(endpoint: Endpoint, exc: ValidationError) -> str:
    reverse = {v: k for k, v in endpoint.options.items()}
    parts = []
    for err in exc.errors():
        field_name = ".".join(str(p) for p in err["loc"])
        option = reverse.get(str(err["loc"][0])) if err["loc"] else None
        label = f"--{OPTION_BY_NAME[option].flags[0]}" if option else field_name
        parts.append(f"{label}: {err['msg']}")
    # A union field (a size or a size name) fails once per arm with the same words.
    return f"{endpoint.title} refused this request: " + "; ".join(dict.fromkeys(parts)) + "."
