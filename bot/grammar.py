"""Free text and structured options -> a `Command`; the usage text; leading command words.

Free text is what people type in a message or after a mention:
`a red fox runs through snow --ar 9:16 --seconds 5 --seed 42 --model ltx-2`.
Flags may stand anywhere, as `--flag value` or `--flag=value`, values may be
quoted, and what is left is the prompt. Structured options (the typed
options of slash commands) go through the very same converters, so both forms produce
the same `Command` and the same errors.

Everything that is wrong with the input raises a `UserError` subclass whose
text tells the person what to change; nothing else escapes `parse` (a
hypothesis test fuzzes this). `bot.routing` turns a `Command` into a request.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.errors import UsageError
from bot.grammar_options import (
    ASPECTS,
    BOOL_WORDS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    OPTION_BY_FLAG,
    OPTION_BY_NAME,
    OPTIONS,
    OptionKind,
    OptionSpec,
)
from bot.markup import Style
from bot.model import MediaRef
from bot.ports import Markup

__all__ = ["ASPECTS", "BOOL_WORDS", "MAX_PROMPT_CHARS", "MAX_SEED", "OPTIONS", "OPTION_BY_FLAG",
           "OPTION_BY_NAME", "Command", "OptionKind", "OptionSpec", "convert", "parse", "usage"]

@dataclass
class Command:
    """A parsed command: its name, the prompt, converted options and media given as flags."""

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


# Terminal escape sequences (CSI such as colours and cursor moves, OSC such as titles and
# links, and the two-character ones): dropped whole, so no "[31m" is left behind.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, to BEL or ST
    r"|\x1b[ -/]*[0-~]"  # ESC with intermediates, e.g. ESC ( B, ESC c
)
# Bidirectional embeddings, overrides and isolates: in a prompt they would reorder the rest
# of the line a card shows it on ("Trojan Source"). Plain RTL text needs none of them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(text: str) -> str:
    """User text as it may be stored, sent to fal and shown: terminal escape sequences and
    control characters removed (line breaks and tabs become spaces), and no bidirectional
    overrides."""
    text = _ESCAPES.sub("", text)
    return "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or not _unprintable(ch))


def _unprintable(ch: str) -> bool:
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) == "Cc"


def has_controls(text: str) -> bool:
    """Whether `text` holds a control character (a tab, a line break, NUL, ESC, ...) or a
    bidirectional override: never part of a file name or URL a person means."""
    return any(_unprintable(ch) for ch in text)


def shorten(text: str, limit: int = 40) -> str:
    """User text echoed in a message: cut to `limit` characters and cleaned, so a 100 KB word
    or an escape sequence is never repeated back in full."""
    text = clean_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    # No flag is longer than 20 characters: a longer name is compared (and echoed) cut short.
    name = shorten(name)
    close = difflib.get_close_matches(name, OPTION_BY_FLAG.keys(), n=1, cutoff=0.6)
    hint = f" Did you mean --{close[0]}?" if close else " Type help to see every flag."
    return UsageError(f"I don't know the flag --{name}.{hint}")


# ---------------------------------------------------------------- values


def format_number(number: float) -> str:
    """Whole numbers as integers (no "4.29497e+09"), others with enough digits to act on."""
    return str(int(number)) if float(number).is_integer() else f"{number:.6g}"


def _flag_label(spec: OptionSpec) -> str:
    return f"--{spec.flags[0]}"


def _to_bool(spec: OptionSpec, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in BOOL_WORDS:
        return BOOL_WORDS[word]
    raise UsageError(f"{_flag_label(spec)} takes on or off, not {shorten(str(raw))!r}.")


def _to_number(spec: OptionSpec, raw: Any) -> float:
    label = _flag_label(spec)
    if isinstance(raw, bool):
        raise UsageError(f"{label} needs a number, e.g. {label} {spec.example}.")
    text = str(raw).strip().lower()
    if spec.name == "seconds" and text.endswith("s"):
        text = text[:-1]
    try:
        value: float = float(text)
    except ValueError:
        raise UsageError(f"{label} needs a number, e.g. {label} {spec.example}; got {shorten(str(raw))!r}.") from None
    if not math.isfinite(value):
        raise UsageError(f"{label} needs a finite number, e.g. {label} {spec.example}.")
    if spec.kind == "int":
        if value != int(value):
            raise UsageError(f"{label} needs a whole number, e.g. {label} {spec.example}.")
        value = int(value)
    _check_bounds(spec, value)
    return value


def _check_bounds(spec: OptionSpec, value: float) -> None:
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise UsageError(
            f"{_flag_label(spec)} must be between {format_number(spec.minimum or 0)} and "
            f"{format_number(spec.maximum or 0)}; got {shorten(format_number(value))}."
        )


def _to_choice(spec: OptionSpec, raw: Any) -> str:
    if spec.name == "aspect":
        # 9x16 and 9/16 are how people write 9:16.
        word = str(raw).strip().replace("x", ":").replace("/", ":")
    else:
        word = str(raw).strip().lower().replace("-", "_")
    if word in spec.choices:
        return word
    raise UsageError(f"{_flag_label(spec)} must be one of {', '.join(spec.choices)}; got {shorten(str(raw))!r}.")


def _to_frame_list(spec: OptionSpec, raw: Any) -> list[int]:
    label = _flag_label(spec)
    items = raw if isinstance(raw, list | tuple) else str(raw).replace(";", ",").split(",")
    try:
        numbers = [int(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        raise UsageError(f"{label} takes frame numbers separated by commas, e.g. {label} {spec.example}.") from None
    if not numbers or any(n < 0 for n in numbers):
        raise UsageError(f"{label} takes frame numbers of 0 or more, e.g. {label} {spec.example}.")
    return numbers


def _to_text(spec: OptionSpec, raw: Any) -> str:
    label = _flag_label(spec)
    text = clean_text(str(raw)).strip()
    if not text:
        raise UsageError(f"{label} needs a value, e.g. {label} {spec.example}.")
    if len(text) > MAX_PROMPT_CHARS:
        raise UsageError(f"{label} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}.")
    return text


def _to_media(spec: OptionSpec, raw: Any) -> str:
    """A file name or URL, as given. A control character in one (a tab, NUL, an escape) is
    refused rather than cleaned away: the result would name a different file."""
    label = _flag_label(spec)
    text = str(raw).strip()
    if has_controls(text):
        raise UsageError(f"{label} {shorten(text)!r} holds a control character (a tab, a line "
                         "break, NUL or an escape); give the file name or URL without it.")
    if not text:
        raise UsageError(f"{label} needs a value, e.g. {label} {spec.example}.")
    if len(text) > MAX_PROMPT_CHARS:
        raise UsageError(f"{label} is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}.")
    try:
        urlsplit(text)  # e.g. an unclosed "[" of an IPv6 address
    except ValueError:
        raise UsageError(f"{label} {shorten(text)!r} is not a link I can read; check it.") from None
    return text


_CONVERTERS: dict[OptionKind, Callable[[OptionSpec, Any], Any]] = {
    "bool": _to_bool, "int": _to_number, "float": _to_number, "enum": _to_choice,
    "ints": _to_frame_list, "str": _to_text, "media": _to_media,
}


def convert(spec: OptionSpec, raw: Any) -> Any:
    """Turn a raw value (text from a message, or a typed slash-command option) into its type."""
    return _CONVERTERS[spec.kind](spec, raw)


# ---------------------------------------------------------------- parsing


def parse(name: str, text: str = "", options: Mapping[str, Any] | None = None) -> Command:
    """Parse free text plus structured options into a `Command`. Raises only `UserError`s."""
    command = Command(name=name)
    words = _read_text(command, tokenize(text or ""))
    for key, raw in (options or {}).items():
        _read_option(command, key, raw)
    # Cleaned here, once: the prompt is stored, sent to fal and shown on cards as it leaves.
    prompt = " ".join(clean_text(" ".join(words)).split())
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UsageError(
            f"Your prompt is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS} "
            "(the models work best with about 200 words)."
        )
    command.prompt = prompt
    return command


def _set(command: Command, spec: OptionSpec, value: Any) -> None:
    if spec.kind == "media":
        assert spec.media_kind is not None  # every "media" option names its kind
        command.media.append(MediaRef(kind=spec.media_kind, url=str(value), role=spec.media_role))
        return
    command.options[spec.name] = value


def _read_text(command: Command, tokens: list[tuple[str, bool]]) -> list[str]:
    """Take the flags out of `tokens` into `command`; return the words of the prompt."""
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token, quoted = tokens[i]
        flag = None if quoted else _flag_name(token)
        if flag is None:
            words.append(token)
            i += 1
            continue
        spec, value, i = _read_flag(flag, tokens, i + 1)
        _set(command, spec, value)
    return words


def _read_flag(flag: str, tokens: list[tuple[str, bool]], i: int) -> tuple[OptionSpec, Any, int]:
    """The option `flag` names and its value, which may be the token at `i`.
    Returns the index of the first token after them."""
    value: str | None = None
    if "=" in flag:
        flag, value = flag.split("=", 1)
    negated = flag.startswith("no-") and flag not in OPTION_BY_FLAG
    spec = OPTION_BY_FLAG.get(flag[3:] if negated else flag)
    if spec is None or (negated and spec.kind != "bool"):
        raise _unknown_flag(flag)
    if spec.kind == "bool":
        return _read_switch(spec, negated, value, tokens, i)
    if value is None:
        if not _value_at(tokens, i):
            raise UsageError(f"--{flag} needs a value, e.g. --{spec.flags[0]} {spec.example}.")
        value = tokens[i][0]
        i += 1
    return spec, convert(spec, value), i


def _read_switch(spec: OptionSpec, negated: bool, value: str | None,
                 tokens: list[tuple[str, bool]], i: int) -> tuple[OptionSpec, bool, int]:
    """`--audio`, `--no-audio`, `--audio=off` and `--audio off`; a word after a switch
    is its value only when it is one of the on/off words."""
    if negated:
        return spec, False, i
    if value is not None:
        return spec, _to_bool(spec, value), i
    if i < len(tokens) and tokens[i][0].lower() in BOOL_WORDS:
        return spec, _to_bool(spec, tokens[i][0]), i + 1
    return spec, True, i


def _value_at(tokens: list[tuple[str, bool]], i: int) -> bool:
    """Whether the token at `i` can be a flag's value: it exists and is not the next flag."""
    if i >= len(tokens):
        return False
    token, quoted = tokens[i]
    return quoted or not _flag_name(token) or _looks_negative_number(token)


def _looks_negative_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_option(command: Command, key: str, raw: Any) -> None:
    """One structured (slash-command) option, through the same converters as free text."""
    if raw is None or raw == "":
        return
    spec = OPTION_BY_NAME.get(key)
    if spec is None:
        raise UsageError(f"Unknown option {shorten(key)!r}.")
    if spec.kind == "media":
        for item in raw if isinstance(raw, list | tuple) else [raw]:
            _set(command, spec, convert(spec, item))
    else:
        _set(command, spec, convert(spec, raw))


# ---------------------------------------------------------------- help


def usage(command_prefix: str = "/", markup: Markup = "plain", *, local_files: bool = False) -> str:
    """Usage in the surface's own syntax and markup (its `PlatformTraits`): the prefix "/"
    gives `/video`, `/quota`; "/ltx " (one slash command for everything, where video is
    the default) gives `/ltx <prompt>`, `/ltx quota`. Where files are given by path
    (`local_files`), images and videos come with --image and --video, not attached."""
    style = Style(markup)
    code = style.code
    video = f"{command_prefix}video " if command_prefix == "/" else command_prefix
    if local_files:
        an_image = f"add an image with {code('--image PATH')}"
        images, clip = f"with {code('--image')} twice or more", f"with {code('--video PATH')}"
    else:
        an_image, images, clip = "attach (or reply to) an image", "with images", "with a video"
    lines = [
        style.bold("Make a video"),
        f"{code(f'{video}<what happens> [--flags]')}: text-to-video; {an_image} "
        "for image-to-video (LTX-2 with audio), two or more images for keyframes.",
        f"{code(f'{command_prefix}keyframes <prompt>')} {images}: keyframes spread over the clip "
        f"({code('--at 0,60,120')} to place them).",
        f"{code(f'{command_prefix}extend <prompt>')} {clip}: continue the clip "
        f"({code('--seconds 5')} added at its end, {code('--at-start')} before it).",
        f"{code(f'{command_prefix}retake <prompt> --from 2 --to 5')} {clip}: redo that section "
        f"(seconds of the clip; {code('--replace video|audio|both')}).",
        f"{code(f'{command_prefix}restyle <prompt>')} {clip}: the same clip with a new look.",
        f"An audio file ({'--audio-file PATH' if local_files else 'attached'}) with a prompt, "
        "and an image for its first frame if you like: a video to that sound.",
        f"{code(f'{command_prefix}models')}: every model, its price, license and what it is the "
        "default for.",
        f"{code(f'{command_prefix}quote <prompt ...>')}: what a job would cost. "
        f"{code(f'{command_prefix}quota')}: what you have left. "
        f"{code(f'{command_prefix}jobs')}: your recent jobs. {code(f'{command_prefix}cancel <id>')}.",
        "",
        f"{style.bold('Flags')} (anywhere in the text, {code('--flag value')} or {code('--flag=value')}):",
        *(_flag_help(spec, style) for spec in OPTIONS),
        "",
        f"{style.bold('Writing prompts')} (from the LTX docs): describe the shot chronologically in "
        "one flowing paragraph, within 200 words: start with the main action, then movements and "
        "gestures, appearances, background and environment, camera angle and movement, lighting "
        "and colours, and any sudden changes. Think like a cinematographer describing a shot list.",
        "Guidance 5-7 follows the prompt closely, 3-5 leaves more freedom; 40+ steps for quality, "
        "20-30 for speed.",
    ]
    return "\n".join(lines)


def _flag_help(spec: OptionSpec, style: Style) -> str:
    flag = _flag_label(spec)
    if spec.name == "model":
        return f"{style.code(flag)} a model's key, alias or fal id (see models), e.g. ltx-2.3"
    choices = f" ({', '.join(spec.choices)})" if spec.choices and len(spec.choices) <= 8 else ""
    example = f" e.g. {style.code(f'{flag} {spec.example}')}" if spec.example else ""
    return f"{style.code(flag)} {spec.help}{choices}{example}"


# ---------------------------------------------------------------- leading command words

# Every word that names a command at the start of a message (bare, or as /word), in one list:
# the core's commands first, then a card's buttons typed as words (for a surface without
# buttons, such as a terminal), then the words that leave an interactive session.
# "video" is left out of the bare form: it is the default anyway, and "video of a cat" is
# a prompt.
COMMAND_WORDS = ("keyframes", "extend", "retake", "restyle", "models", "quote", "quota", "jobs",
                 "cancel", "help", "admin", "forget-me", "my-data", "reroll", "continue", "delete",
                 "report", "modblock", "moddelete", "exit", "quit")
BUTTON_WORDS = ("reroll", "continue", "delete", "report", "modblock", "moddelete")
# Words that, typed with `#N` and no file, act on that earlier result (a finished job's video).
EARLIER_RESULT_WORDS = ("extend", "retake", "restyle")
LEAVE_WORDS = ("exit", "quit")
# What a chat reads after a mention or `/ltx`: the core's words only. There the buttons are
# buttons, so "continue the story" and "exit through the gift shop" stay prompts.
CORE_WORDS = tuple(w for w in COMMAND_WORDS if w not in (*BUTTON_WORDS, *LEAVE_WORDS))


def leading_command(
    text: str, default: str = "video", words: tuple[str, ...] = CORE_WORDS,
) -> tuple[str, str]:
    """`extend more waves` -> ("extend", "more waves"); `/video a fox` -> ("video", "a fox");
    `a red fox` -> (default, "a red fox"). The one place every surface splits a message;
    `words` are the command words this surface reads (the core's, unless it adds its own).
    A message that is one command word alone is that command, "video" included."""
    stripped = text.strip()
    first, _, rest = stripped.partition(" ")
    word = first.lower()
    if word.startswith("/") and word[1:] in (*words, "video"):
        return word[1:], rest.strip()
    if word in words or (word == "video" and not rest.strip()):
        return word, rest.strip()
    return default, stripped


def unknown_command(name: str, words: tuple[str, ...] = CORE_WORDS) -> UsageError:
    """The refusal of `/name` that is no command, with the nearest one when there is one."""
    close = difflib.get_close_matches(name.lower(), (*words, "video"), n=1, cutoff=0.6)
    hint = f" Did you mean /{close[0]}?" if close else " Type /help to see what I can do."
    return UsageError(f"I don't know the command /{name}.{hint}")
