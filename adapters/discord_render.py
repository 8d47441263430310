"""StatusCard -> Discord message parts (embed, buttons). Pure: no I/O, no client.

The buttons are plain `discord.ui.Button`s carrying `Action.custom_id`
(`ltx:job:<id>:<kind>`); the `DynamicItem` registered by the client turns a
press back into an action, so rendered views are never stored in discord.py's
view store and survive restarts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import discord

from bot import ports
from bot.ports import Action, StatusCard

BAR_WIDTH = 16
EMBED_DESCRIPTION_LIMIT = 4096
CONTENT_LIMIT = 2000

TONE_COLOURS: dict[str, int] = {
    "info": 0x5865F2,  # blurple
    "success": 0x57F287,
    "warning": 0xFEE75C,
    "error": 0xED4245,
}

BUTTON_STYLES: dict[str, discord.ButtonStyle] = {
    "cancel": discord.ButtonStyle.danger,
    "reroll": discord.ButtonStyle.primary,
    "extend": discord.ButtonStyle.secondary,
    "continue": discord.ButtonStyle.secondary,
    "delete": discord.ButtonStyle.secondary,
}
BUTTON_EMOJI: dict[str, str] = {
    "cancel": "✖️",
    "reroll": "🎲",
    "extend": "⏩",
    "continue": "🎞️",
    "delete": "🗑️",
}


@dataclass
class RenderedCard:
    embed: discord.Embed
    view: discord.ui.View | None  # None clears the buttons of an edited message


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`▰▰▰▱▱▱ 42%`: readable on every client, no custom emoji needed."""
    return ports.progress_bar(fraction, width, "▰", "▱")


def relative_timestamp(when: datetime) -> str:
    """Discord renders `<t:UNIX:R>` as "in 2 minutes" in each reader's own clock and language."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return f"<t:{int(when.timestamp())}:R>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_embed(card: StatusCard, *, now: datetime | None = None) -> discord.Embed:
    """Title and lines (and the progress bar) as the description; the other live facts as
    fields Discord lays out in a row, the ETA as `<t:…:R>`, which counts down on its own."""
    now = now or datetime.now(UTC)
    facts = card.facts(now)
    lines = list(card.lines)
    if card.progress is not None and any(fact.kind == "progress" for fact in facts):
        lines.append(progress_bar(card.progress))
    if card.link:
        lines.append(card.link)
    embed = discord.Embed(
        title=_clip(card.title, 256),
        description=_clip("\n".join(lines), EMBED_DESCRIPTION_LIMIT) or None,
        colour=TONE_COLOURS.get(card.tone, TONE_COLOURS["info"]),
    )
    for fact in facts:
        if fact.kind == "progress":
            continue  # the bar above
        value = relative_timestamp(card.eta) if fact.kind == "eta" and card.eta else fact.value
        embed.add_field(name=fact.label, value=_clip(value, 1024), inline=True)
    if card.job_id is not None and not re.search(rf"#{card.job_id}\b", card.title):
        embed.set_footer(text=f"Job #{card.job_id}")  # the summary's title is the model only
    return embed


def render_view(actions: list[Action]) -> discord.ui.View | None:
    if not actions:
        return None
    view = discord.ui.View(timeout=None)
    for action in actions[:25]:
        view.add_item(discord.ui.Button(
            style=BUTTON_STYLES.get(action.kind, discord.ButtonStyle.secondary),
            label=_clip(action.label, 80),
            custom_id=action.custom_id,
            emoji=BUTTON_EMOJI.get(action.kind),
        ))
    return view


def render(card: StatusCard, *, now: datetime | None = None) -> RenderedCard:
    return RenderedCard(embed=render_embed(card, now=now), view=render_view(card.actions))


def flatten_message(message: dict[str, object]) -> str:
    """All visible text of a message payload (content + embeds), for tests and logs."""
    parts: list[str] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(content)
    embeds = message.get("embeds")
    for embed in embeds if isinstance(embeds, list) else []:
        if not isinstance(embed, dict):
            continue
        for key in ("title", "description"):
            if embed.get(key):
                parts.append(str(embed[key]))
        for fld in embed.get("fields") or []:
            parts.append(f"{fld.get('name')}: {fld.get('value')}")
        footer = embed.get("footer")
        if isinstance(footer, dict) and footer.get("text"):
            parts.append(str(footer["text"]))
    return "\n".join(parts)


def button_ids(message: dict[str, object]) -> list[str]:
    out: list[str] = []
    components = message.get("components")
    for row in components if isinstance(components, list) else []:
        if not isinstance(row, dict):
            continue
        for comp in row.get("components") or []:
            if isinstance(comp, dict) and comp.get("custom_id"):
                out.append(str(comp["custom_id"]))
    return out
