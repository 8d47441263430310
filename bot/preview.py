"""`ltx-bot parse`: the fal request a message would make, priced, without running it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot import grammar, media, routing
from bot.config import Settings
from bot.model import MediaKind, MediaRef

# Only "/extend ..." names a command here: "extend the red carpet" is a prompt.
_SLASH_COMMANDS = ("/keyframes", "/extend", "/quote", "/video")


def attachment_kind(ref: str) -> MediaKind:
    """Kind of an --attach argument: a local file by its first bytes, a URL by its ending."""
    path = Path(ref)
    if path.is_file():
        return media.kind_of_file(path)
    return media.kind_from_hint(None, ref, default="image")


def preview(text: str, attach: Sequence[str], settings: Settings) -> dict[str, Any]:
    """What `ltx-bot parse` prints: `{"endpoint", "input", "estimate"}`."""
    name = "video"
    stripped = text.strip()
    first, *rest = stripped.split(None, 1) or [""]
    if first.lower() in _SLASH_COMMANDS:
        name, stripped = first.lower()[1:], "".join(rest)
    command = grammar.parse(name, stripped)
    refs = [MediaRef(kind=attachment_kind(a), url=a) for a in attach] + command.media
    return routing.build_request(command, refs, settings).to_json()
