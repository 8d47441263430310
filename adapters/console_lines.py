"""One console input line -> command, text and attachments.

A line starts with a command word, bare or with a slash (`quota`, `/jobs`,
`extend --video clip.mp4 more waves`), read by `grammar.leading_command` as
Discord and Slack read the words after a mention, from grammar's one list of
command words: the core's, a card's buttons typed (`reroll 9`, `continue #9
prompt`, `delete 9`, `cancel 9`) and `exit`/`quit`. Anything else is a prompt
for `/video`. `--image`/`--video` take a local file or an http(s) URL; they
become attachments the way a platform adapter turns uploaded files into
attachments, so the core treats them alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot import grammar
from bot.errors import UserError
from bot.model import MediaKind
from bot.ports import Attachment, AttachmentKind

# Every command the console reads.
COMMANDS = (*grammar.COMMAND_WORDS, "video")
# A card's buttons, typed: `/reroll 9`, `/cancel 9`, `/extend #9 prompt`, `/retake #9 prompt
# --from 2 --to 5`, `/continue #9 prompt`.
# Cancel is the card's Cancel button too: the card then says it was cancelled, once.
ACTION_COMMANDS = ("cancel", *grammar.BUTTON_WORDS)
# Commands whose text goes through the generation grammar (and may carry --image/--video).
MEDIA_COMMANDS = ("video", "keyframes", "extend", "retake", "restyle", "quote")
# Commands that take a finished job's video as `#N` (its card's button, typed).
# What `parse_line` calls a line that leaves the chat.
LEAVE = "leave"
_DASHES = ("\u2014", "\u2013", "\u2212")


@dataclass
class ParsedLine:
    """One input line: the command, its text without media flags, and the attachments."""

    command: str
    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


_JOB_REF = re.compile(r"#?(\d+)(?:\s+(.*))?$", re.S)


def _action_line(action: str, rest: str, *, needs_hash: bool) -> ParsedLine | None:
    """`/reroll 9`, `/delete 9`, `/continue #9 prompt`, `/extend #9 prompt` as button presses."""
    if needs_hash and not rest.startswith("#"):
        return None
    match = _JOB_REF.match(rest)
    if not match:
        raise UserError(f"Which job? e.g. /{action} #12 (see /jobs for yours).")
    return ParsedLine(command="action", text=(match.group(2) or "").strip(),
                      options={"action": action, "job_id": int(match.group(1))})


def _media_flag(token: str) -> tuple[MediaKind, str | None, str | None] | None:
    """(kind, role, inline value or None) when `token` is a media flag: --image, --video,
    --audio-file, --end (role "end") or an alias."""
    for dash in _DASHES:
        if token.startswith(dash):
            token = "--" + token[len(dash) :]
    if token.startswith("--"):
        name = token[2:]
    elif token.startswith("-") and len(token) >= 2 and token[1].isalpha() and (
        len(token) == 2 or token[2] == "="
    ):
        name = token[1:]
    else:
        return None
    value: str | None = None
    if "=" in name:
        name, value = name.split("=", 1)
    spec = grammar.OPTION_BY_FLAG.get(name.lower())
    if spec is None or spec.kind != "media" or spec.media_kind is None:
        return None
    return spec.media_kind, spec.media_role, value


def _requote(token: str, quoted: bool) -> str:
    # Re-emit a token so that grammar.tokenize reads it back exactly as before.
    if not quoted:
        return token
    quote = "'" if '"' in token else '"'
    return f"{quote}{token}{quote}"


def attachment_for(ref: str, kind: AttachmentKind, cwd: Path | None = None) -> Attachment:
    """An Attachment for a local path (made absolute) or an http(s) URL."""
    if ref.startswith(("http://", "https://")):
        name = ref.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return Attachment(url=ref, filename=name, kind=kind)
    path = Path(ref.removeprefix("file://")).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not path.is_file():
        raise UserError(f"There is no file at {ref}.")
    return Attachment(url=str(path), filename=path.name, size=path.stat().st_size, kind=kind)


def split_command(stripped: str) -> tuple[str, str]:
    """(command, rest) of a non-blank line; a `/word` that names no command is refused
    with the nearest command, as an unknown flag is."""
    head = stripped.split(None, 1)[0]
    if head.startswith("/") and head[1:].lower() not in COMMANDS:
        raise grammar.unknown_command(head[1:], grammar.COMMAND_WORDS)
    command, rest = grammar.leading_command(stripped, words=grammar.COMMAND_WORDS)
    if command in grammar.LEAVE_WORDS:
        if rest:
            # "exit through the gift shop": neither leave nor spend credits on a guess.
            raise UserError(f"To leave, type {command} alone. For a video of this, start "
                            f"the line with /video: /video {command} {rest}")
        return LEAVE, ""
    return command, rest


def is_leave(line: str) -> bool:
    """Whether the line asks to leave (`quit`, `/exit`...)."""
    stripped = line.strip()
    try:
        return bool(stripped) and split_command(stripped)[0] == LEAVE
    except UserError:
        return False  # said when the line is handled


def parse_line(line: str, *, cwd: Path | None = None) -> ParsedLine | None:
    """Split one input line into command, text and attachments. None for blank or comment lines.

    Raises UserError for an unknown command, an unclosed quote, a media flag
    without a value, or a file that does not exist.
    """
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    command, rest = split_command(stripped)
    if command in ACTION_COMMANDS:
        parsed = _action_line(command, rest, needs_hash=False)
        assert parsed is not None
        return parsed
    if command in grammar.EARLIER_RESULT_WORDS and (action := _action_line(command, rest, needs_hash=True)):
        # `/extend #9 ...` extends a finished job; `/extend --video clip.mp4 ...` a file.
        return action
    if command not in MEDIA_COMMANDS:
        return ParsedLine(command=command, text=rest)
    text, attachments = _take_media(rest, cwd)
    return ParsedLine(command=command, text=text, attachments=attachments)


def _take_media(rest: str, cwd: Path | None) -> tuple[str, list[Attachment]]:
    """The text without its --image/--video flags, and those files as attachments."""
    tokens = grammar.tokenize(rest)
    kept: list[str] = []
    attachments: list[Attachment] = []
    i = 0
    while i < len(tokens):
        token, quoted = tokens[i]
        media = None if quoted else _media_flag(token)
        if media is None:
            kept.append(_requote(token, quoted))
            i += 1
            continue
        kind, role, value = media
        if value is None:
            if i + 1 >= len(tokens):
                raise UserError(f"{token} needs a file or a URL, e.g. {token} cat.png.")
            value = tokens[i + 1][0]
            i += 1
        attachments.append(replace(attachment_for(value, kind, cwd), role=role))
        i += 1
    return " ".join(kept), attachments
