"""How `ltx-bot` finds its chat adapters: entry points, never imports.

Each adapter package registers one object under the entry-point group
`ltx_bot.adapters` in its pyproject.toml (as errbot finds its backends):

    [project.entry-points."ltx_bot.adapters"]
    myplatform = "adapters.myplatform_plugin:plugin"

The object is a `PlatformAdapter` (started in the background by `run` when the
settings configure it) or a `TerminalAdapter` (a chat in this terminal: what
`chat` runs, and what `run` falls back to when no platform is configured).
The core names no platform: everything platform-specific comes from these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

from bot.config import Settings

if TYPE_CHECKING:
    from bot.app import App  # only for types: loading the plugins must stay cheap

GROUP = "ltx_bot.adapters"


class Service(Protocol):
    """A started platform adapter: `close()` stops taking events and disconnects."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class PlatformAdapter:
    """A chat platform `ltx-bot run` starts beside the others when its settings configure it."""

    name: str  # the entry point's name, in log lines
    title: str  # the platform's own name, in sentences
    configured: Callable[[Settings], bool]
    # The `check-config` line: what `run` would start, or why it would not; None: say nothing.
    describe: Callable[[Settings], str | None]
    # Builds, registers its port with `app` (already started) and connects.
    start: Callable[[App, Settings], Awaitable[Service]]
    # What a half-done configuration lacks (some of the platform's credentials set, not all),
    # or None. `run` and `check-config` refuse on it rather than quietly leave the platform out.
    missing: Callable[[Settings], str | None] = lambda settings: None


@dataclass(frozen=True)
class TerminalAdapter:
    """A chat in this terminal: `ltx-bot chat`, and `run`'s fallback without any platform."""

    name: str
    describe: str  # what it is, in sentences
    # (app not yet started, user name or None, stop) -> exit code; it starts and stops the app.
    run: Callable[[App, str | None, asyncio.Event], Awaitable[int]]


@dataclass(frozen=True)
class Adapters:
    """Everything registered in the group, platforms in name order."""

    platforms: tuple[PlatformAdapter, ...]
    terminal: TerminalAdapter | None


class PluginError(RuntimeError):
    """The installed adapters are not usable (not installed, or a wrong object registered)."""


def load_adapters() -> Adapters:
    """Load every entry point of the group (this imports the adapters' modules)."""
    platforms: list[PlatformAdapter] = []
    terminals: list[TerminalAdapter] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        found = point.load()
        if isinstance(found, PlatformAdapter):
            platforms.append(found)
        elif isinstance(found, TerminalAdapter):
            terminals.append(found)
        else:
            raise PluginError(f"entry point {point.name} = {point.value} in {GROUP} is a "
                              f"{type(found).__name__}, not a PlatformAdapter or TerminalAdapter")
    if len(terminals) > 1:
        names = ", ".join(t.name for t in terminals)
        raise PluginError(f"more than one terminal adapter is installed ({names}); keep one")
    return Adapters(tuple(platforms), terminals[0] if terminals else None)
