"""A `Command` plus its media -> a `GenerationRequest`: the endpoint and its validated fal input.

`choose_endpoint` picks the model: the one named with --model, else the `[models]`
role the command and its inputs call for (text, image, keyframes, extend, audio,
retake, restyle). `build_request` then runs in small steps, each of which reads the
user's options and fills its part of the fal input: the clip's length
(`routing_length`), the options that map one-to-one onto a field, the framing
(aspect and resolution), where the attachments' URLs go, the section of a retake,
and the keyframe timeline (`routing_media`). Each step says itself, in the user's
words, when the chosen model does not take what was asked; what a step changed
(a duration rounded to the model's list) goes in the request's `notes`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from bot import catalog, framing, routing_length, routing_media
from bot.catalog import Endpoint
from bot.config import Settings
from bot.errors import MediaError, UsageError
from bot.grammar import MAX_SEED, Command
from bot.model import GenerationRequest, MediaRef
from bot.ports import PlatformTraits
from bot.routing_files import refuse_file_words
from bot.routing_limits import (
    Draft,
    audio_count,
    check_model_range,
    describe_counts,
    explain_validation,
    media_counts,
    supports,
    unsupported,
)
from bot.routing_media import default_positions

__all__ = ["LTX2_ASPECT_SIZES", "build_request", "choose_endpoint", "default_positions",
           "media_counts", "random_seed", "refuse_file_words", "unsupported", "validate_input"]

# --ar on LTX-2, whose `video_size` takes fal's size names rather than ratios.
LTX2_ASPECT_SIZES = framing.LTX2_ASPECT_SIZES
# Options that pick or shape the request rather than map onto one model field.
ROUTING_OPTIONS = frozenset({"model", "extend", "image", "video", "end_image", "audio_file"})
# Options that map onto one input field of the same meaning on every model that takes them
# (through `Endpoint.option_values` where the model words the value its own way).
DIRECT_OPTIONS = frozenset({
    "negative", "seed", "steps", "guidance", "audio", "camera", "camera_scale", "end_strength",
    "expand", "multiscale", "acceleration", "quality", "reverse", "crf", "at_start", "replace",
})
# Options whose own step says when a model does not take them (with a better hint).
_OWN_STEP = frozenset({"seconds", "frames", "fps", "positions", "strength", "from", "to",
                       "start_frame"})
# The command words that name a role of their own.
_ROLE_COMMANDS = {"retake": "retake", "restyle": "restyle", "extend": "extend"}


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


# ---------------------------------------------------------------- choosing the endpoint


def choose_endpoint(
    command: Command, media: Sequence[MediaRef], settings: Settings,
    traits: PlatformTraits | None = None,
) -> Endpoint:
    endpoint = _route(command, media, settings, traits or PlatformTraits())
    if endpoint.license == "research" and not settings.models.allow_research_only:
        raise UsageError(
            f"{endpoint.key} is tagged research only on fal, and this bot is set not to run "
            "such models ([models] allow_research_only = false). Leave out --model to use the "
            "default, or see models for the others."
        )
    images, videos = media_counts(media)
    audios = audio_count(media)
    if any(m.role == "end" for m in media) and not any(
            f.rsplit(".", 1)[-1].startswith("end_") for f in endpoint.layout.image_fields):
        raise MediaError(f"{endpoint.title} takes no end image (--end).")
    # Whatever picked the model (the user or the routing table), it must take these inputs.
    if not endpoint.media.accepts(images, videos, audios):
        raise MediaError(
            f"{endpoint.title} takes {endpoint.media.describe()}, but you gave "
            f"{describe_counts(images, videos, audios)}."
        )
    return endpoint


def _route(
    command: Command, media: Sequence[MediaRef], settings: Settings, traits: PlatformTraits
) -> Endpoint:
    model = command.options.get("model")
    if model:
        return _named_model(str(model))
    images, videos = media_counts(media)
    audios = audio_count(media)
    models = settings.models
    role = _clip_role(command)
    if role is not None:
        return _clip_model(role, media, settings, traits)
    if audios:
        return catalog.by_name(models.audio)
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
    ends = sum(1 for m in media if m.role == "end")
    if videos == 0 and images - ends == 1 and ends <= 1:
        return catalog.by_name(models.image)
    return catalog.by_name(models.keyframes)


def _clip_role(command: Command) -> str | None:
    """extend, retake or restyle when the command works on one clip, else None."""
    return "extend" if command.options.get("extend") else _ROLE_COMMANDS.get(command.name)


def _clip_model(role: str, media: Sequence[MediaRef], settings: Settings,
                traits: PlatformTraits) -> Endpoint:
    """The model of a role that works on one clip (extend, retake, restyle)."""
    images, videos = media_counts(media)
    audios = audio_count(media)
    # Restyle may also take a soundtrack and a first/last frame; the others the clip alone.
    if videos != 1 or ((images or audios) and role != "restyle"):
        gave = (f" You gave {describe_counts(images, videos, audios)}."
                if images or videos or audios else "")
        raise MediaError(
            f"{role.capitalize()} needs exactly one video"
            f"{'' if role == 'restyle' else ' (and nothing else)'}: "
            f"{_give_video(traits, role)}.{gave}"
        )
    return catalog.by_name(getattr(settings.models, role))


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
    # A text model without length or framing controls (the 0.9 one): when the user asks
    # for them, the 13B model (which also runs from a prompt alone) is what they mean.
    wanted = [o for o in command.options if o not in ROUTING_OPTIONS]
    if wanted and not all(supports(text_model, o) for o in wanted):
        fallback = catalog.by_name(settings.models.keyframes)
        if fallback.media.accepts(0, 0) and all(supports(fallback, o) for o in wanted):
            return fallback
    return text_model


def _give_video(traits: PlatformTraits, role: str = "extend") -> str:
    """How a user gives a clip here: by path or job number where local files are
    accepted (a terminal has nothing to attach and no message to reply to)."""
    if traits.local_files:
        prefix = traits.command_prefix
        return (f"give one with --video PATH (a file or a link), or {role} a finished job "
                f"with {prefix}{role} #N (see {prefix}jobs)")
    return "attach a clip or reply to a message that has one"


# ---------------------------------------------------------------- building the request


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
    # A command on a clip (extend, retake, restyle) with nothing is missing its clip first:
    # routing says how to give one.
    if not command.prompt and not media and _clip_role(command) is None:
        raise UsageError(
            "Please describe the video, e.g. “a red fox runs through snow at dawn --seconds 5”."
        )
    endpoint = choose_endpoint(command, media, settings, traits)
    if not command.prompt and _needs_prompt(endpoint):
        raise UsageError(
            f"Please describe the video for {endpoint.title}, e.g. "
            "“a red fox runs through snow at dawn”."
        )
    for name in command.options:
        if name not in ROUTING_OPTIONS | _OWN_STEP and name not in endpoint.options:
            raise unsupported(endpoint, name, media)
    payload: dict[str, Any] = {"prompt": command.prompt} if command.prompt else {}
    draft = Draft(endpoint, command.options, media, payload, source_aspect=input_aspect)
    for step in (routing_length.length, _direct_options, _framing, routing_media.media_fields,
                 routing_media.strength, routing_media.start_frame, routing_media.section,
                 routing_media.audio_length, routing_media.keyframes):
        step(draft)
    if "seed" not in draft.payload and seed_source is not None and endpoint.takes_seed:
        draft.payload["seed"] = seed_source()
    data = validate_input(endpoint, draft.payload)
    seconds = _audio_seconds(media)
    estimate = catalog.estimate(endpoint, data, settings.quota.credits_per_usd, settings.prices,
                                input_aspect=input_aspect, media_seconds=seconds)
    return GenerationRequest(endpoint=endpoint, input=data, estimate=estimate,
                             media=list(media), slots=draft.slots, prompt=command.prompt,
                             notes=draft.notes, media_seconds=seconds)


def _needs_prompt(endpoint: Endpoint) -> bool:
    """Whether the model wants a prompt (extend-video does not; audio-to-video wants a
    prompt or an image, which its input model says itself)."""
    info = endpoint.input_model.model_fields.get("prompt")
    return info is not None and info.is_required()


def _audio_seconds(media: Sequence[MediaRef]) -> float | None:
    return next((m.duration for m in media if m.kind == "audio" and m.duration), None)


def validate_input(endpoint: Endpoint, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload checked against the endpoint's input model, JSON-ready, without None values."""
    try:
        model = endpoint.input_model.model_validate(payload)
    except ValidationError as exc:
        raise UsageError(explain_validation(endpoint, exc)) from None
    return model.model_dump(mode="json", exclude_none=True)


# -- options that map one-to-one


def _direct_options(draft: Draft) -> None:
    options, endpoint = draft.options, draft.endpoint
    for name in (o for o in options if o in DIRECT_OPTIONS):
        field_name = endpoint.options[name]
        value = options[name]
        if name in endpoint.option_values:
            value = endpoint.option_values[name][value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            check_model_range(endpoint, name, field_name, float(value))
        draft.payload[field_name] = value
    if "camera_scale" in options and options.get("camera", "none") == "none":
        raise UsageError("--camera-scale needs a camera move too, e.g. --camera dolly_in --camera-scale 0.7.")
    if "end_strength" in options and media_counts(draft.media)[0] < 2:
        raise UsageError("--end-strength needs an end image: attach a second image.")


def _framing(draft: Draft) -> None:
    framing.apply(draft.endpoint, draft.options, draft.payload, draft.source_aspect)

