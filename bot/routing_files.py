"""A prompt without media that names a file (`the cat yawns cat.png`): refused, not run.

It would run a text-to-video that never sees the file, and charge for it.
"""

from __future__ import annotations

from pathlib import Path

from bot import media
from bot.errors import MediaError, UsageError
from bot.grammar import Command, tokenize
from bot.model import MediaKind
from bot.ports import PlatformTraits

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
    article = "an" if kind in ("image", "audio") else "a"
    flag = "audio-file" if kind == "audio" else kind
    word = "but here it is only a word of the prompt"
    if "://" in name:
        said, give = f"{name} is a link to {article} {kind}, {word}", f"give it with --{flag} {name}"
    elif traits.local_files:
        said, give = f"{name} looks like {article} {kind} file, {word}", f"give it with --{flag} {name}"
    else:
        said = f"{name} looks like the name of {article} {kind}, but nothing is attached"
        give = f"attach it (or reply to a message that has it), or give a link with --{flag} URL"
    return (f"{said}: the model would never see it. To start from it, {give}. "
            "If you meant the word, put it in quotes.")
