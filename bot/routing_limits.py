"""What every routing step shares: the draft request, and the refusals that name the limits.

A step refuses in the user's words: which flag, the model's range for it, and which
other models take an option this one does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot import catalog, framing
from bot.catalog import Endpoint
from bot.errors import UnsupportedOption, UsageError
from bot.grammar import OPTION_BY_NAME, format_number
from bot.model import MediaRef, MediaSlot


@dataclass
class Draft:
    """The fal input while the steps of `build_request` fill it in, and what it is made from."""

    endpoint: Endpoint
    options: Mapping[str, Any]
    media: Sequence[MediaRef]
    payload: dict[str, Any]
    slots: list[MediaSlot] = field(default_factory=list)
    source_aspect: float | None = None  # the first input's width/height, once it is probed
    notes: list[str] = field(default_factory=list)  # what was changed, said in the reply


def media_counts(media: Sequence[MediaRef]) -> tuple[int, int]:
    """(images, videos)."""
    return (sum(1 for m in media if m.kind == "image"), sum(1 for m in media if m.kind == "video"))


def audio_count(media: Sequence[MediaRef]) -> int:
    return sum(1 for m in media if m.kind == "audio")


def describe_counts(images: int, videos: int, audios: int = 0) -> str:
    parts = [f"{n} {noun}{'s' if n != 1 else ''}"
             for n, noun in ((images, "image"), (videos, "video"), (audios, "audio file")) if n]
    return " and ".join(parts) if parts else "no attachments"


def supports(endpoint: Endpoint, option: str) -> bool:
    if option == "seconds":
        return endpoint.frames is not None or endpoint.duration is not None
    if option == "frames":
        return endpoint.frames is not None
    if option == "fps":
        if endpoint.frames is not None:
            return endpoint.frames.fps_field is not None
        return "fps" in endpoint.input_model.model_fields
    if option == "from":
        return "from" in endpoint.options or "start_frame" in endpoint.options
    return option in endpoint.options


def flag(option: str) -> str:
    return f"--{OPTION_BY_NAME[option].flags[0]}"


def check_model_range(endpoint: Endpoint, option: str, field_name: str, value: float) -> None:
    lo, hi = framing.field_bounds(endpoint, field_name)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            rng = f"between {format_number(lo)} and {format_number(hi)}"
        elif lo is not None:
            rng = f"at least {format_number(lo)}"
        else:
            rng = f"at most {format_number(hi or 0)}"
        raise UsageError(f"{flag(option)} must be {rng} for {endpoint.title}; got {format_number(value)}.")


def unsupported(endpoint: Endpoint, option: str, media: Sequence[MediaRef] = ()) -> UnsupportedOption:
    return UnsupportedOption(
        f"{endpoint.title} does not support {flag(option)}.{who_takes(endpoint, option, media)}"
    )


def who_takes(endpoint: Endpoint, option: str, media: Sequence[MediaRef]) -> str:
    """Which models take `option`: those that could run with what the user attached, or
    else every one that takes it and what it needs (--camera on a prompt alone: ltx-2,
    with an image), so a refusal always says where the option works."""
    images, videos = media_counts(media)
    audios = audio_count(media)
    takers = [e for e in catalog.ENDPOINTS if e is not endpoint and supports(e, option)]
    runnable = [e.key for e in takers if e.media.accepts(images, videos, audios)]
    if len(runnable) > 4:
        runnable = [*runnable[:4], "others (see models)"]
    if runnable:
        return f" Use --model {' or '.join(runnable)} for that."
    if len(takers) == 1:
        return f" Only {takers[0].key} takes it, with {takers[0].media.describe()}."
    if takers:
        return " " + ", ".join(f"{e.key} (with {e.media.describe()})" for e in takers[:4]) + " take it."
    return ""


def explain_validation(endpoint: Endpoint, exc: ValidationError) -> str:
    reverse = {v: k for k, v in endpoint.options.items()}
    parts = []
    for err in exc.errors():
        if not err["loc"]:
            # A rule between fields (a model validator): its message names the combination.
            parts.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        field_name = ".".join(str(p) for p in err["loc"])
        option = reverse.get(str(err["loc"][0]))
        label = flag(option) if option else field_name
        parts.append(f"{label}: {err['msg']}")
    # A union field (a size or a size name) fails once per arm with the same words.
    return f"{endpoint.title} refused this request: " + "; ".join(dict.fromkeys(parts)) + "."
