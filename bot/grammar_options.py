"""The user options: every flag, the type its value converts to, its bounds and help line.

`bot.grammar` reads them from free text and structured options; `bot.routing` maps
each onto the chosen endpoint's fields (`Endpoint.options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from bot import catalog
from bot.model import MediaKind

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
BOOL_WORDS = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False,
              "1": True, "0": False}
ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "auto")
OptionKind = Literal["int", "float", "str", "bool", "enum", "ints", "media"]


@dataclass(frozen=True)
class OptionSpec:
    """One user option: its flags, the type its value converts to, and its help line."""

    name: str  # canonical name used in Command.options and in catalog Endpoint.options
    flags: tuple[str, ...]  # without the leading dashes
    kind: OptionKind
    help: str
    example: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # bot-level bounds that hold for every model
    maximum: float | None = None
    media_kind: MediaKind | None = None
    media_role: str | None = None  # "end": the end image of a first-to-last-frame clip


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
    OptionSpec("start_frame", ("from-frame", "start-frame"), "int",
               "frame of the input video to extend from (ltx-extend)", "24", minimum=0,
               maximum=100_000),
    OptionSpec("from", ("from",), "float",
               "retake: where the section starts, in seconds of the clip (on ltx-extend: the "
               "frame number to extend from)", "2", minimum=0, maximum=100_000),
    OptionSpec("to", ("to",), "float", "retake: where the section ends, in seconds of the clip",
               "5", minimum=0, maximum=100_000),
    OptionSpec("replace", ("replace",), "enum", "retake: what to redo", "both",
               choices=("video", "audio", "both")),
    OptionSpec("at_start", ("at-start", "prepend"), "bool",
               "extend: add the new part before the clip instead of after it"),
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
               media_kind="image"),
    OptionSpec("video", ("video", "v", "clip"), "media", "a video file or URL", "clip.mp4",
               media_kind="video"),
    OptionSpec("end_image", ("end", "end-image"), "media",
               "an image the clip ends on (first-to-last frame)", "last.png",
               media_kind="image", media_role="end"),
    OptionSpec("audio_file", ("audio-file", "audio-url"), "media",
               "an audio file or URL: audio to video (--audio switches a made-up soundtrack)",
               "song.mp3", media_kind="audio"),
)
OPTION_BY_NAME = {o.name: o for o in OPTIONS}
OPTION_BY_FLAG = {flag: o for o in OPTIONS for flag in o.flags}
