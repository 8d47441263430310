"""Free text and structured options -> a `Command`; a `Command` plus media -> a `GenerationRequest`.

Free text is what people type in Slack or a Discord mention:
`a red fox runs through snow --ar 9:16 --seconds 5 --seed 42 --model ltx-2`.
Flags may stand anywhere, as `--flag value` or `--flag=value`, values may be
quoted, and what is left is the prompt. Structured options (Discord slash
command options) go through the very same converters, so both forms produce
the same `Command` and the same errors.

Everything that is wrong with the input raises a `UserError` subclass whose
text tells the person what to change; nothing else escapes `parse` (a
hypothesis test fuzzes this).
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from annotated_types import Ge, Gt, Le, Lt
from pydantic import ValidationError

from bot import catalog
from bot.catalog import Endpoint
from bot.config import Settings
from bot.errors import MediaError, UnsupportedOption, UsageError
from bot.model import GenerationRequest, MediaKind, MediaRef, MediaSlot

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
BOOL_WORDS = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False,
              "1": True, "0": False}
ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "auto")
LTX2_ASPECT_SIZES = {"16:9": "landscape_16_9", "9:16": "portrait_16_9", "1:1": "square_hd",
                     "4:3": "landscape_4_3", "3:4": "portrait_4_3", "auto": "auto"}


@dataclass(frozen=True)
class OptionSpec:
    name: str  # canonical name used in Command.options and in catalog Endpoint.options
    flags: tuple[str, ...]  # without the leading dashes
    kind: str  # "int", "float", "str", "bool", "enum", "ints", "media"
    help: str
    example: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # bot-level bounds that hold for every model
    maximum: float | None = None
    media_kind: MediaKind | None = None
    repeatable: bool = False


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("model", ("model", "m"), "str", "which model to use", "ltx-2"),
    OptionSpec("seconds", ("seconds", "duration", "secs", "sec", "length"), "float",
               "video length in seconds", "5", minimum=0.1, maximum=60),
    OptionSpec("frames", ("frames", "num-frames"), "int",
               "frame count (snapped to LTX's 8k+1 counts, e.g. 100 -> 97)", "121",
               minimum=1, maximum=2000),
    OptionSpec("fps", ("fps", "frame-rate"), "float", "frames per second", "25",
               minimum=1, maximum=60),
    OptionSpec("resolution", ("resolution", "res", "size"), "str",
               "480p, 720p, 1080p or WIDTHxHEIGHT", "720p"),
    OptionSpec("aspect", ("ar", "aspect", "aspect-ratio"), "enum", "aspect ratio", "16:9",
               choices=ASPECTS),
    OptionSpec("seed", ("seed",), "int", "random seed, for repeatable results", "42",
               minimum=0, maximum=MAX_SEED),
    OptionSpec("steps", ("steps", "num-steps"), "int", "inference steps (quality vs speed)", "30",
               minimum=1, maximum=100),
    OptionSpec("guidance", ("guidance", "cfg", "guidance-scale"), "float",
               "how literally to follow the prompt", "3", minimum=0, maximum=20),
    OptionSpec("negative", ("negative", "neg", "negative-prompt", "no"), "str",
               "what to avoid", '"blurry, text"'),
    OptionSpec("audio", ("audio", "sound"), "bool", "generate an audio track (LTX-2)", "on"),
    OptionSpec("camera", ("camera", "cam", "camera-motion"), "enum", "camera move (LTX-2)",
               "dolly_in", choices=tuple(get_args(catalog.CameraLora))),
    OptionSpec("camera_scale", ("camera-scale", "cam-scale"), "float",
               "strength of the camera move", "0.8", minimum=0, maximum=1),
    OptionSpec("strength", ("strength", "image-strength"), "float",
               "how strongly the image(s) condition the video", "0.9", minimum=0, maximum=1),
    OptionSpec("end_strength", ("end-strength", "end-image-strength"), "float",
               "strength of the end image (LTX-2)", "1", minimum=0, maximum=1),
    OptionSpec("start_frame", ("from", "from-frame", "start-frame"), "int",
               "frame of the input video to extend from", "24", minimum=0, maximum=100_000),
    OptionSpec("positions", ("at", "positions", "keyframes-at"), "ints",
               "frame numbers of the keyframes, comma separated", "0,60,120"),
    OptionSpec("extend", ("extend",), "bool", "extend the attached video"),
    OptionSpec("expand", ("expand", "expand-prompt"), "bool", "let the model expand the prompt", "on"),
    OptionSpec("multiscale", ("multiscale",), "bool", "multi-scale generation (LTX-2)", "on"),
    OptionSpec("acceleration", ("accel", "acceleration"), "enum", "speed-up level (LTX-2)",
               "high", choices=("none", "regular", "high", "full")),
    OptionSpec("quality", ("quality",), "enum", "output quality (LTX-2)", "high",
               choices=("low", "medium", "high", "maximum")),
    OptionSpec("reverse", ("reverse",), "bool", "reverse the video (keyframes model)"),
    OptionSpec("crf", ("crf",), "int", "input compression (keyframes model)", "35",
               minimum=0, maximum=51),
    OptionSpec("image", ("image", "img", "i"), "media", "an image file or URL", "cat.png",
               media_kind="image", repeatable=True),
    OptionSpec("video", ("video", "v", "clip"), "media", "a video file or URL", "clip.mp4",
               media_kind="video", repeatable=True),
)
OPTION_BY_NAME = {o.name: o for o in OPTIONS}
OPTION_BY_FLAG = {flag: o for o in OPTIONS for flag in o.flags}
# Options that pick or shape the request rather than map onto one model field.
ROUTING_OPTIONS = {"model", "extend", "image", "video"}


@dataclass
class Command:
    name: str
    prompt: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    media: list[MediaRef] = field(default_factory=list)  # refs given as --image/--video


# ---------------------------------------------------------------- tokenizing

_DASHES = ("\u2014", "\u2013", "\u2212")  # em dash, en dash, minus: phones turn "--" into these
_QUOTES = {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"}


def _normalize(text: str) -> str:
    for fancy, plain in _QUOTES.items():
        text = text.replace(fancy, plain)
    return text


def tokenize(text: str) -> list[tuple[str, bool]]:
    """Split on whitespace; a quote that opens a token (or follows `=`) runs to its match.

    Returns (token, was_quoted). Apostrophes inside words stay literal, so
    "the cat's tail" needs no escaping, unlike shlex.
    """
    text = _normalize(text)
    tokens: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        buf: list[str] = []
        quoted = False
        while i < n and not text[i].isspace():
            ch = text[i]
            at_value_start = not buf or buf[-1] == "="
            if ch in "\"'" and at_value_start:
                end = text.find(ch, i + 1)
                if end == -1:
                    if ch == "'":  # a lone apostrophe is just a character
                        buf.append(ch)
                        i += 1
                        continue
                    raise UsageError(
                        'A quote (") is not closed. Close it, or remove it if you meant a literal quote.'
                    )
                # Only a quote that opens the token makes it a literal word; a quoted
                # value after "=" (--negative="a, b") still belongs to its flag.
                quoted = quoted or not buf
                buf.append(text[i + 1 : end])
                i = end + 1
                continue
            buf.append(ch)
            i += 1
        tokens.append(("".join(buf), quoted))
    return tokens


def _flag_name(token: str) -> str | None:
    """'--seed' -> 'seed', '—seed' -> 'seed', '-m' -> 'm'; None when not a flag."""
    for dash in _DASHES:
        if token.startswith(dash) and len(token) > 1:
            token = "--" + token[1:]
    if token.startswith("--") and len(token) > 2:
        return token[2:].lower()
    if token.startswith("-") and len(token) == 2 and token[1].isalpha():
        return token[1:].lower()
    return None


def _unknown_flag(name: str) -> UsageError:
    close = difflib.get_close_matches(name, OPTION_BY_FLAG.keys(), n=1, cutoff=0.6)
    hint = f" Did you mean --{close[0]}?" if close else " Type help to see every flag."
    return UsageError(f"I don't know the flag --{name}.{hint}")


# ---------------------------------------------------------------- values


def _fmt(number: float) -> str:
    # Whole numbers as integers (no "4.29497e+09"), others with enough digits to act on.
    return str(int(number)) if float(number).is_integer() else f"{number:.6g}"


def convert(spec: OptionSpec, raw: Any) -> Any:
    """Turn a raw value (text from a message, or a typed slash-command option) into its type."""
    label = f"--{spec.flags[0]}"
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in BOOL_WORDS:
            return BOOL_WORDS[word]
        raise UsageError(f"{label} takes on or off, not {str(raw)!r}.")
    if spec.kind in ("int", "float"):
        if isinstance(raw, bool):
            raise UsageError(f"{label} needs a number, e.g. {label} {spec.example}.")
        text = str(raw).strip().lower()
        if spec.name == "seconds" and text.endswith("s"):
            text = text[:-1]
        try:
            value: float = float(text)
        except ValueError:
            raise UsageError(f"{label} needs a number, e.g. {label} {spec.example}; got {str(raw)!r}.") from None
        if not math.isfinite(value):
            raise UsageError(f"{label} needs a finite number, e.g. {label} {spec.example}.")
        if spec.kind == "int":
            if value != int(value):
                raise UsageError(f"{label} needs a whole number, e.g. {label} {spec.example}.")
            value = int(value)
        if (spec.minimum is not None and value < spec.minimum) or (
            spec.maximum is not None and value > spec.maximum
        ):
            raise UsageError(
                f"{label} must be between {_fmt(spec.minimum or 0)} and {_fmt(spec.maximum or 0)}; "
                f"got {_fmt(value)}."
            )
        return value
    if spec.kind == "enum":
        word = str(raw).strip().lower().replace("-", "_") if spec.name != "aspect" else str(raw).strip()
        if spec.name == "aspect":
            word = word.replace("x", ":").replace("/", ":")
        if word in spec.choices:
            return word
        raise UsageError(f"{label} must be one of {', '.join(spec.choices)}; got {str(raw)!r}.")
    if spec.kind == "ints":
        items = raw if isinstance(raw, list | tuple) else str(raw).replace(";", ",").split(",")
        try:
            numbers = [int(str(item).strip()) for item in items if str(item).strip()]
        except ValueError:
            raise UsageError(f"{label} takes frame numbers separated by commas, e.g. {label} {spec.example}.") from None
        if not numbers or any(n < 0 for n in numbers):
            raise UsageError(f"{label} takes frame numbers of 0 or more, e.g. {label} {spec.example}.")
        return numbers
    text = str(raw).strip()
    if not text:
        raise UsageError(f"{label} needs a value, e.g. {label} {spec.example}.")
    if len(text) > MAX_PROMPT_CHARS:
        raise UsageError(f"{label} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}.")
    return text


def parse(name: str, text: str = "", options: Mapping[str, Any] | None = None) -> Command:
    """Parse free text plus structured options into a `Command`. Raises only `UserError`s."""
    command = Command(name=name)
    words: list[str] = []
    tokens = tokenize(text or "")
    i = 0

    def set_option(spec: OptionSpec, value: Any) -> None:
        if spec.kind == "media":
            assert spec.media_kind is not None  # every "media" option names its kind
            command.media.append(MediaRef(kind=spec.media_kind, url=str(value)))
            return
        command.options[spec.name] = value

    while i < len(tokens):
        token, quoted = tokens[i]
        flag = None if quoted else _flag_name(token)
        if flag is None:
            words.append(token)
            i += 1
            continue
        value: str | None = None
        if "=" in flag:
            flag, value = flag.split("=", 1)
        negated = flag.startswith("no-") and flag not in OPTION_BY_FLAG
        lookup = flag[3:] if negated else flag
        spec = OPTION_BY_FLAG.get(lookup)
        if spec is None or (negated and spec.kind != "bool"):
            raise _unknown_flag(flag)
        if spec.kind == "bool":
            if negated:
                set_option(spec, False)
            elif value is not None:
                set_option(spec, convert(spec, value))
            elif i + 1 < len(tokens) and tokens[i + 1][0].lower() in BOOL_WORDS:
                set_option(spec, convert(spec, tokens[i + 1][0]))
                i += 1
            else:
                set_option(spec, True)
            i += 1
            continue
        if value is None:
            if i + 1 >= len(tokens) or (not tokens[i + 1][1] and _flag_name(tokens[i + 1][0])
                                        and not _looks_negative_number(tokens[i + 1][0])):
                raise UsageError(f"--{flag} needs a value, e.g. --{spec.flags[0]} {spec.example}.")
            value = tokens[i + 1][0]
            i += 1
        set_option(spec, value if spec.kind == "media" else convert(spec, value))
        i += 1

    for key, raw in (options or {}).items():
        if raw is None or raw == "":
            continue
        spec = OPTION_BY_NAME.get(key)
        if spec is None:
            raise UsageError(f"Unknown option {key!r}.")
        if spec.kind == "media":
            for item in raw if isinstance(raw, list | tuple) else [raw]:
                set_option(spec, item)
        else:
            set_option(spec, convert(spec, raw))

    prompt = " ".join(words).strip()
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UsageError(
            f"Your prompt is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS} "
            "(the models work best with about 200 words)."
        )
    command.prompt = prompt
    return command


def _looks_negative_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- routing


def choose_endpoint(command: Command, media: Sequence[MediaRef], settings: Settings) -> Endpoint:
    endpoint = _route(command, media, settings)
    images = sum(1 for m in media if m.kind == "image")
    videos = sum(1 for m in media if m.kind == "video")
    # Whatever picked the model (the user or the routing table), it must take these inputs.
    if not endpoint.media.accepts(images, videos):
        raise MediaError(
            f"{endpoint.title} takes {endpoint.media.describe()}, but you gave "
            f"{_describe_counts(images, videos)}."
        )
    return endpoint


def _route(command: Command, media: Sequence[MediaRef], settings: Settings) -> Endpoint:
    images = sum(1 for m in media if m.kind == "image")
    videos = sum(1 for m in media if m.kind == "video")
    wants_extend = command.name == "extend" or bool(command.options.get("extend"))
    model = command.options.get("model")
    if model:
        try:
            endpoint = catalog.by_name(str(model))
        except catalog.UnknownModel:
            close = difflib.get_close_matches(str(model).lower(), catalog.all_names(), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise UsageError(
                f"There is no model called {model!r}.{hint} Models: "
                + ", ".join(e.key for e in catalog.ENDPOINTS) + "."
            ) from None
        return endpoint
    models = settings.models
    if wants_extend:
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
        text_model = catalog.by_name(models.text)
        # The 0.9 text model has no length or framing controls. When the user asks for
        # them, the 13B model (which also runs from a prompt alone) is what they mean.
        wanted = _shaping_options(command)
        if wanted and not all(_supports(text_model, o) for o in wanted):
            fallback = catalog.by_name(models.keyframes)
            if fallback.media.accepts(0, 0) and all(_supports(fallback, o) for o in wanted):
                return fallback
        return text_model
    if images == 1 and videos == 0:
        return catalog.by_name(models.image)
    return catalog.by_name(models.keyframes)


def _supports(endpoint: Endpoint, option: str) -> bool:
    if option in ("seconds", "frames"):
        return endpoint.frames is not None
    if option == "fps":
        return endpoint.frames is not None and endpoint.frames.fps_field is not None
    return option in endpoint.options


def _shaping_options(command: Command) -> list[str]:
    return [o for o in command.options if o not in ROUTING_OPTIONS]


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
            rng = f"between {_fmt(lo)} and {_fmt(hi)}"
        elif lo is not None:
            rng = f"at least {_fmt(lo)}"
        else:
            rng = f"at most {_fmt(hi or 0)}"
        raise UsageError(f"--{flag} must be {rng} for {endpoint.title}; got {_fmt(value)}.")


def _unsupported(
    endpoint: Endpoint, option: str, media: Sequence[MediaRef] = ()
) -> UnsupportedOption:
    flag = OPTION_BY_NAME[option].flags[0]
    images = sum(1 for m in media if m.kind == "image")
    videos = sum(1 for m in media if m.kind == "video")
    # Only suggest models that could run with what the user attached.
    others = [e.key for e in catalog.ENDPOINTS
              if e is not endpoint and _supports(e, option) and e.media.accepts(images, videos)]
    hint = f" Use --model {' or '.join(others)} for that." if others else ""
    return UnsupportedOption(f"{endpoint.title} does not support --{flag}.{hint}")


def _resolution_size(resolution: str, aspect: str) -> dict[str, int] | None:
    text = resolution.lower().replace(" ", "")
    if "x" in text:
        w, _, h = text.partition("x")
        if w.isdigit() and h.isdigit():
            return {"width": int(w), "height": int(h)}
        raise UsageError(f"--resolution takes 480p, 720p, 1080p or WIDTHxHEIGHT like 1280x720; got {resolution!r}.")
    heights = {"480p": 480, "720p": 720, "1080p": 1080}
    if text not in heights:
        raise UsageError(f"--resolution takes 480p, 720p, 1080p or WIDTHxHEIGHT like 1280x720; got {resolution!r}.")
    short = heights[text]
    ratios = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4)}
    rw, rh = ratios.get(aspect, (16, 9))
    # Keep the short side exact and round the long one to a multiple of 32, which LTX prefers.
    if rw >= rh:
        return {"width": int(round(short * rw / rh / 32) * 32), "height": short}
    return {"width": short, "height": int(round(short * rh / rw / 32) * 32)}


def default_positions(count: int, frames: int) -> list[int]:
    """Keyframes spread evenly over the clip, on multiples of 8 (LTX's latent stride)."""
    if count <= 1:
        return [0] * count
    last = frames - 1
    return [int(round(i * last / (count - 1) / 8) * 8) if i < count - 1 else (last // 8) * 8
            for i in range(count)]


Applier = Callable[[Endpoint, dict[str, Any], Any, Command], None]


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
    options = command.options
    for name in options:
        if name in ROUTING_OPTIONS or name in ("seconds", "frames", "fps", "positions", "strength"):
            continue
        if name not in endpoint.options:
            raise _unsupported(endpoint, name, media)

    payload: dict[str, Any] = {"prompt": command.prompt}
    # --- length: seconds / frames / fps
    rule = endpoint.frames
    if rule is None:
        for name in ("seconds", "frames", "fps"):
            if name in options:
                raise UnsupportedOption(
                    f"{endpoint.title} makes clips of a fixed length, so --{OPTION_BY_NAME[name].flags[0]} "
                    "does not apply. LTX-2 (with an image) and ltx-13b take --seconds and --fps."
                )
    else:
        fps = float(options.get("fps", rule.default_fps))
        if rule.fps_field:
            _check_model_range(endpoint, "fps", rule.fps_field, fps)
            if endpoint.input_model.model_fields[rule.fps_field].annotation is int:
                if not fps.is_integer():
                    raise UsageError(f"{endpoint.title} takes a whole --fps, e.g. --fps 24; got {_fmt(fps)}.")
                payload[rule.fps_field] = int(fps)
            else:
                payload[rule.fps_field] = fps
        if "frames" in options and "seconds" in options:
            raise UsageError("Give either --seconds or --frames, not both.")
        frames: int | None = None
        if "frames" in options:
            frames = rule.snap(int(options["frames"]))
        elif "seconds" in options:
            frames = rule.frames_for_seconds(float(options["seconds"]), fps)
        if frames is not None:
            if not rule.minimum <= frames <= rule.maximum:
                lo_s, hi_s = (rule.minimum - 1) / fps, (rule.maximum - 1) / fps
                asked = (f"--seconds {_fmt(float(options['seconds']))}" if "seconds" in options
                         else f"--frames {options['frames']}")
                raise UsageError(
                    f"{asked} is out of range for {endpoint.title}: at {_fmt(fps)} fps it makes "
                    f"{rule.minimum} to {rule.maximum} frames ({lo_s:.1f} s to {hi_s:.1f} s)."
                )
            payload[rule.field] = frames

    # --- simple one-to-one options
    simple = {"negative", "seed", "steps", "guidance", "audio", "camera", "camera_scale",
              "end_strength", "expand", "multiscale", "acceleration", "quality", "reverse", "crf"}
    for name in simple & options.keys():
        field_name = endpoint.options[name]
        value = options[name]
        if isinstance(value, int | float) and not isinstance(value, bool):
            _check_model_range(endpoint, name, field_name, float(value))
        payload[field_name] = value
    if "camera_scale" in options and options.get("camera", "none") == "none":
        raise UsageError("--camera-scale needs a camera move too, e.g. --camera dolly_in --camera-scale 0.7.")
    if "end_strength" in options and sum(1 for m in media if m.kind == "image") < 2:
        raise UsageError("--end-strength needs an end image: attach a second image.")

    # --- aspect and resolution
    aspect = options.get("aspect")
    if endpoint.options.get("aspect") == "video_size":
        if "resolution" in options:
            payload["video_size"] = _resolution_size(str(options["resolution"]), aspect or "16:9")
        elif aspect:
            payload["video_size"] = LTX2_ASPECT_SIZES[aspect]
    else:
        if aspect is not None:
            allowed = _literal_choices(endpoint, "aspect_ratio")
            if aspect not in allowed:
                raise UsageError(
                    f"{endpoint.title} takes --ar {', '.join(allowed)}; got {aspect}."
                )
            payload["aspect_ratio"] = aspect
        if "resolution" in options:
            allowed = _literal_choices(endpoint, "resolution")
            res = str(options["resolution"]).lower()
            if res not in allowed:
                raise UsageError(f"{endpoint.title} takes --resolution {', '.join(allowed)}; got {options['resolution']}.")
            payload["resolution"] = res

    # --- media slots
    slots: list[MediaSlot] = []
    layout = endpoint.layout
    image_idx = [i for i, m in enumerate(media) if m.kind == "image"]
    video_idx = [i for i, m in enumerate(media) if m.kind == "video"]
    for path, index in zip(layout.image_fields, image_idx, strict=False):
        _place_url(payload, path, media[index].url)
        slots.append(MediaSlot(path=tuple(path.split(".")), media_index=index))
    for path, index in zip(layout.video_fields, video_idx, strict=False):
        _place_url(payload, path, media[index].url)
        slots.append(MediaSlot(path=tuple(path.split(".")), media_index=index))
    if "strength" in options:
        if "strength" not in endpoint.options:
            raise _unsupported(endpoint, "strength", media)
        if endpoint.options["strength"] != "strength":
            _check_model_range(endpoint, "strength", endpoint.options["strength"], float(options["strength"]))
            payload[endpoint.options["strength"]] = options["strength"]
    if "start_frame" in options:
        payload.setdefault("video", {})["start_frame_num"] = options["start_frame"]
    if layout.image_list or layout.video_list:
        frames_total = int(payload.get(rule.field, rule.default)) if rule else 121
        conditioned = list(range(len(media)))
        positions = options.get("positions")
        if positions is None:
            positions = default_positions(len(conditioned), frames_total)
        elif len(positions) != len(conditioned):
            raise UsageError(
                f"--at lists {len(positions)} position{'s' if len(positions) != 1 else ''} but there "
                f"{'is' if len(conditioned) == 1 else 'are'} {len(conditioned)} image/video input"
                f"{'s' if len(conditioned) != 1 else ''}; give one frame number per input, in order."
            )
        for pos in positions:
            if pos >= frames_total:
                raise UsageError(
                    f"Keyframe position {pos} is past the end of the clip ({frames_total} frames, "
                    f"last frame {frames_total - 1})."
                )
        strength = float(options.get("strength", 1.0))
        items: dict[str, list[dict[str, Any]]] = {}
        for media_index, pos in zip(conditioned, positions, strict=True):
            ref = media[media_index]
            list_field = layout.image_list if ref.kind == "image" else layout.video_list
            if list_field is None:
                raise MediaError(f"{endpoint.title} cannot take a {ref.kind} here.")
            entry = {f"{ref.kind}_url": ref.url, "start_frame_num": pos, "strength": strength}
            bucket = items.setdefault(list_field, [])
            slots.append(MediaSlot(path=(list_field, len(bucket), f"{ref.kind}_url"),
                                   media_index=media_index))
            bucket.append(entry)
        payload.update(items)
    elif "positions" in options:
        raise _unsupported(endpoint, "positions", media)
    elif "start_frame" in options and not layout.video_fields:
        raise _unsupported(endpoint, "start_frame", media)

    if "seed" not in payload and seed_source is not None:
        payload["seed"] = seed_source()

    try:
        model = endpoint.input_model.model_validate(payload)
    except ValidationError as exc:
        raise UsageError(_explain_validation(endpoint, exc)) from None
    data = model.model_dump(mode="json", exclude_none=True)
    estimate = catalog.estimate(endpoint, data, settings.quota.credits_per_usd, settings.prices)
    return GenerationRequest(endpoint=endpoint, input=data, estimate=estimate,
                             media=list(media), slots=slots, prompt=command.prompt)


def _place_url(payload: dict[str, Any], dotted: str, url: str) -> None:
    node = payload
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = url


def _literal_choices(endpoint: Endpoint, field_name: str) -> tuple[str, ...]:
    annotation = endpoint.input_model.model_fields[field_name].annotation
    return tuple(getattr(annotation, "__args__", ()))


def _explain_validation(endpoint: Endpoint, exc: ValidationError) -> str:
    reverse = {v: k for k, v in endpoint.options.items()}
    parts = []
    for err in exc.errors():
        field_name = ".".join(str(p) for p in err["loc"])
        option = reverse.get(str(err["loc"][0])) if err["loc"] else None
        label = f"--{OPTION_BY_NAME[option].flags[0]}" if option else field_name
        parts.append(f"{label}: {err['msg']}")
    return f"{endpoint.title} refused this request: " + "; ".join(parts) + "."


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


# ---------------------------------------------------------------- help


def usage(command_prefix: str = "/") -> str:
    """Usage in the platform's own syntax: "/" gives `/video`, `/quota` (Discord, console);
    "/ltx " gives `/ltx <prompt>`, `/ltx quota` (Slack, where video is the default)."""
    video = f"{command_prefix}video " if command_prefix == "/" else command_prefix
    lines = [
        "**Make a video**",
        f"`{video}<what happens> [--flags]`: text-to-video; attach (or reply to) an "
        "image for image-to-video (LTX-2 with audio), two or more images for keyframes.",
        f"`{command_prefix}keyframes <prompt>` with images: keyframes spread over the clip (`--at 0,60,120` to place them).",
        f"`{command_prefix}extend <prompt>` with a video: continue the clip (`--from 24` to start at a frame).",
        f"`{command_prefix}quote <prompt ...>`: what a job would cost. `{command_prefix}quota`: what you have left. "
        f"`{command_prefix}jobs`: your recent jobs. `{command_prefix}cancel <id>`.",
        "",
        "**Flags** (anywhere in the text, `--flag value` or `--flag=value`):",
    ]
    for spec in OPTIONS:
        if spec.name == "model":
            choices = ", ".join(e.key for e in catalog.ENDPOINTS)
            lines.append(f"`--model` {choices}")
            continue
        flag = f"--{spec.flags[0]}"
        extra = f" ({', '.join(spec.choices)})" if spec.choices and len(spec.choices) <= 8 else ""
        example = f" e.g. `{flag} {spec.example}`" if spec.example else ""
        lines.append(f"`{flag}` {spec.help}{extra}{example}")
    lines += [
        "",
        "**Writing prompts** (from the LTX docs): describe the shot chronologically in one flowing "
        "paragraph, within 200 words: start with the main action, then movements and gestures, "
        "appearances, background and environment, camera angle and movement, lighting and colours, "
        "and any sudden changes. Think like a cinematographer describing a shot list.",
        "Guidance 5-7 follows the prompt closely, 3-5 leaves more freedom; 40+ steps for quality, "
        "20-30 for speed.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- leading command words

# Words that name a command when a message starts with them (after a mention, in the
# console, or as /word). "video" is left out of the bare form: it is the default
# anyway, and "video of a cat" is a prompt.
COMMAND_WORDS = ("keyframes", "extend", "quote", "quota", "jobs", "cancel", "help", "admin")


def leading_command(text: str, default: str = "video") -> tuple[str, str]:
    """`extend more waves` -> ("extend", "more waves"); `/video a fox` -> ("video", "a fox");
    `a red fox` -> (default, "a red fox"). The one place every adapter splits a message."""
    stripped = text.strip()
    first, _, rest = stripped.partition(" ")
    word = first.lower()
    if word.startswith("/") and word[1:] in (*COMMAND_WORDS, "video"):
        return word[1:], rest.strip()
    if word in COMMAND_WORDS:
        return word, rest.strip()
    return default, stripped


# ---------------------------------------------------------------- ltx-bot parse


def guess_kind(ref: str) -> MediaKind:
    """Kind of a --attach argument: sniffed for local files, by extension for URLs."""
    path = Path(ref)
    if path.is_file():
        head = path.read_bytes()[:64]
        if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")) or head[8:12] == b"WEBP":
            return "image"
        if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or head.startswith(b"\x1a\x45\xdf\xa3"):
            return "video"
        raise MediaError(f"{ref} is neither an image (PNG, JPEG, WebP, GIF) nor a video (MP4, WebM, MOV).")
    lower = ref.lower().split("?", 1)[0]
    if lower.endswith((".mp4", ".webm", ".mov", ".m4v")):
        return "video"
    return "image"


def cli_parse(text: str, attach: Sequence[str], settings: Settings) -> dict[str, Any]:
    """What `ltx-bot parse` prints: the request a message would make, without running it."""
    name = "video"
    stripped = text.strip()
    # Only "/extend ..." names a command: "extend the red carpet" is a prompt.
    for candidate in ("keyframes", "extend", "quote", "video"):
        first = stripped.split(None, 1)[0].lower() if stripped else ""
        if first == "/" + candidate:
            name = candidate
            stripped = stripped.split(None, 1)[1] if " " in stripped else ""
            break
    command = parse(name, stripped)
    refs = [MediaRef(kind=guess_kind(a), url=a) for a in attach] + command.media
    return build_request(command, refs, settings).to_json()
