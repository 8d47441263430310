"""`ltx-bot parse`: the fal request a message would make, priced, without running it.

The text is read as a chat reads it: a leading command word (`retake`, `restyle`,
`extend`, `keyframes`, `quote`, with or without a slash) names the command, the
rest is the prompt and its flags. `--attach` files stand for attachments: a local
file is judged by its bytes (and a clip's or an audio file's length is read, for
retake's range and audio-to-video's price), a URL by its ending.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av

from bot import grammar, media, routing
from bot.commands.generate import GENERATE_WORDS
from bot.config import Settings
from bot.errors import MediaError
from bot.model import MediaKind, MediaRef

# The words that make (or price) a request; "models", "jobs" and the like run nothing.
_WORDS = (*(w for w in GENERATE_WORDS if w != "video"), "quote")


def attachment_kind(ref: str) -> MediaKind:
    """Kind of an --attach argument: a local file by its first bytes, a URL by its ending."""
    path = Path(ref)
    if path.is_file():
        try:
            return media.kind_of_file(path)
        except MediaError:
            # Bytes the sniffer does not know yet (audio, until it reads audio): the name.
            hinted = media.kind_from_hint(None, ref)
            if hinted == "unknown":
                raise
            return hinted
    return media.kind_from_hint(None, ref, default="image")


def media_seconds(ref: str) -> float | None:
    """The length of a local clip or audio file, None when it can't be read (or a URL)."""
    path = Path(ref)
    if not path.is_file():
        return None
    with contextlib.suppress(av.FFmpegError, OSError, ValueError), \
            av.open(str(path), mode="r") as container:
        if container.duration:
            return float(container.duration / av.time_base)
    return None


def preview(text: str, attach: Sequence[str], settings: Settings) -> dict[str, Any]:
    """What `ltx-bot parse` prints: `{"endpoint", "input", "estimate", "notes"}`."""
    name, rest = grammar.leading_command(text, words=_WORDS)
    command = grammar.parse(name, rest)
    refs = [MediaRef(kind=kind, url=a, duration=media_seconds(a) if kind != "image" else None)
            for a in attach for kind in (attachment_kind(a),)] + command.media
    request = routing.build_request(command, refs, settings)
    return {**request.to_json(), "notes": request.notes}
