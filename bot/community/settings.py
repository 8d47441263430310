"""A server's own settings: which there are, how a typed value is read, and what is in force.

Each setting a server may change is a `Setting` in `SETTINGS`, with the config
section that holds its default (`[safety]`; another section registers its own
with `register`, e.g. [privacy] retention_days). What a server changed is stored
per scope (`bot.store.community`); `ServerSettings.safety(place)` gives the
[safety] section as it stands for that place, the defaults with the server's
changes over them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from bot.community import blocklist
from bot.config import Settings
from bot.config.safety import SafetySettings
from bot.errors import UsageError
from bot.grammar import shorten
from bot.ports import Place, PlatformTraits
from bot.store.community import Community

log = logging.getLogger(__name__)

Kind = Literal["words", "patterns", "bool", "choice", "channels", "channel", "int", "text"]
CLEAR_WORDS = frozenset({"none", "-", "off"})
_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})
_CHANNEL = re.compile(r"<#(?P<id>[A-Za-z0-9]+)(\|[^>]*)?>|#?(?P<bare>[A-Za-z0-9]+)")


@dataclass(frozen=True)
class Setting:
    """One setting a server may change: its name, the config section of its default,
    how a typed value is read, and one line saying what it does."""

    name: str
    section: str
    kind: Kind
    what: str
    choices: tuple[str, ...] = ()
    low: int = 0
    high: int = 10**6


SETTINGS: dict[str, Setting] = {}


def register(*settings: Setting) -> None:
    """Let servers change these too (their defaults are `Settings.<section>.<name>`)."""
    for setting in settings:
        SETTINGS[setting.name] = setting


register(
    Setting("blocklist", "safety", "words", "words or phrases refused in prompts (comma-separated)"),
    Setting("blocklist_patterns", "safety", "patterns",
            "regular expressions refused in prompts (comma-separated; \\, for a comma)"),
    Setting("safety_checker", "safety", "bool", "ask fal's safety checker to check every job"),
    Setting("flagged_results", "safety", "choice", "a result fal flags: withhold or spoiler",
            choices=("withhold", "spoiler")),
    Setting("allowed_channels", "safety", "channels",
            "channels where jobs may start (empty: anywhere)"),
    Setting("age_restricted_only", "safety", "bool", "start jobs only in age-restricted channels"),
    Setting("allow_dms", "safety", "bool", "start jobs in direct messages"),
    Setting("mod_log_channel", "safety", "channel", "channel for the moderation log"),
)


def scope_of(place: Place) -> str:
    """Whose settings apply here: the workspace's, or `platform:-` where there is none."""
    return f"{place.platform}:{place.workspace or '-'}"


def setting(name: str) -> Setting:
    found = SETTINGS.get(name.lower().replace("-", "_"))
    if found is None:
        raise UsageError(f"There is no setting {shorten(name)!r}. Settings: {', '.join(SETTINGS)}.")
    return found


# ---------------------------------------------------------------- reading typed values


def split_list(text: str) -> list[str]:
    """Comma-separated items, stripped; `none` (or nothing) is the empty list."""
    if text.strip().lower() in CLEAR_WORDS:
        return []
    return [item.strip() for item in text.split(",") if item.strip()]


def split_patterns(text: str) -> list[str]:
    """Comma-separated regular expressions: a comma inside brackets, braces or
    parentheses (`a{1,3}`) or escaped (`\\,`) belongs to its pattern."""
    if text.strip().lower() in CLEAR_WORDS:
        return []
    out, current, depth, escaped = [], [], 0, False
    for char in text:
        if escaped:
            current.append(char if char == "," else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "," and depth == 0:
            out.append("".join(current))
            current = []
        else:
            depth += (char in "([{") - (char in ")]}")
            current.append(char)
    out.append("".join(current) + ("\\" if escaped else ""))
    return [p.strip() for p in out if p.strip()]


def _channels(text: str, here: Place) -> list[str]:
    out = []
    for item in split_list(text):
        if item.lower() == "here":
            out.append(here.parent or here.channel)
            continue
        match = _CHANNEL.fullmatch(item)
        if match is None:
            raise UsageError(f"{shorten(item)!r} is not a channel: mention it, give its id, or say here.")
        out.append(match.group("id") or match.group("bare"))
    return out


def _bool(setting: Setting, text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise UsageError(f"{setting.name} is on or off, not {shorten(text)!r}.")


def parse(setting: Setting, text: str, here: Place) -> Any:
    """The typed value `text` stands for, or a UsageError saying what is wanted."""
    try:
        return _READERS[setting.kind](setting, text, here)
    except ValueError as exc:
        raise UsageError(f"{setting.name}: {exc}.") from None


def _choice(setting: Setting, text: str, _here: Place) -> str:
    word = text.strip().lower()
    if word not in setting.choices:
        raise UsageError(f"{setting.name} is one of {', '.join(setting.choices)}, not {shorten(text)!r}.")
    return word


def _channel(setting: Setting, text: str, here: Place) -> str:
    found = _channels(text, here)
    if len(found) > 1:
        raise UsageError(f"{setting.name} is one channel.")
    return found[0] if found else ""


def _int(setting: Setting, text: str, _here: Place) -> int:
    from bot.commands.services import whole_number

    return whole_number(text, setting.name, setting.low, setting.high)


_READERS: dict[Kind, Callable[[Setting, str, Place], Any]] = {
    "words": lambda _s, text, _h: blocklist.check_words(split_list(text)),
    "patterns": lambda _s, text, _h: blocklist.check_patterns(split_patterns(text)),
    "bool": lambda s, text, _h: _bool(s, text),
    "choice": _choice,
    "channels": lambda _s, text, here: _channels(text, here),
    "channel": _channel,
    "int": _int,
    "text": lambda _s, text, _h: "" if text.strip().lower() in CLEAR_WORDS else text.strip(),
}


def shown(setting: Setting, value: Any, traits: PlatformTraits) -> str:
    """A value as `admin settings show` writes it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if setting.kind in ("channels", "channel"):
        items = value if isinstance(value, list) else [value] if value else []
        return ", ".join(channel_link(c, traits) for c in items) or "none"
    if isinstance(value, list):
        return ", ".join(value) if value else "none"
    return str(value) if value != "" else "none"


def channel_link(channel: str, traits: PlatformTraits) -> str:
    """A channel as people click it where the surface links channels, else `#id`."""
    return f"<#{channel}>" if traits.markup in ("markdown", "mrkdwn") else f"#{channel}"


# ---------------------------------------------------------------- what is in force


class ServerSettings:
    """The settings in force per place: the operator's defaults, a server's changes over them."""

    def __init__(self, settings: Settings, community: Community) -> None:
        self.settings = settings
        self.community = community

    async def changed(self, place: Place) -> dict[str, Any]:
        """What this place's server changed (name -> value), settings no longer known dropped."""
        stored = await self.community.settings(scope_of(place))
        return {k: v for k, v in stored.items() if k in SETTINGS}

    async def section(self, place: Place, name: str) -> BaseModel:
        """The config section `name` as it stands here (the hook other sections use)."""
        defaults: BaseModel = getattr(self.settings, name)
        changes = {k: v for k, v in (await self.changed(place)).items() if SETTINGS[k].section == name}
        return merged(defaults, changes)

    async def safety(self, place: Place) -> SafetySettings:
        section = await self.section(place, "safety")
        assert isinstance(section, SafetySettings)
        return section


def merged(defaults: BaseModel, changes: dict[str, Any]) -> BaseModel:
    """`defaults` with `changes` over them; a stored value that no longer validates (an
    older version wrote it) is left out and logged rather than stopping every job."""
    values = defaults.model_dump()
    for name, value in changes.items():
        try:
            type(defaults).model_validate({**values, name: value})
        except ValidationError:
            log.warning("stored setting %s=%r is not valid any more; the default applies", name, value)
            continue
        values[name] = value
    return type(defaults).model_validate(values)
