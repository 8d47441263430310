"""StatusCard -> Discord message parts (embed, buttons). Pure: no I/O, no client.

The buttons are plain `discord.ui.Button`s carrying `Action.custom_id`
(`ltx:job:<id>:<kind>`); the `DynamicItem` registered by the client turns a
press back into an action, so rendered views are never stored in discord.py's
view store and survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import discord

from bot import ports
from bot.ports import Action, StatusCard, format_duration

BAR_WIDTH = 16
BAR_CHARS = ("▰", "▱", "█", "░")  # ours and the core's plain-text bar
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


def _has_bar(line: str) -> bool:
    return any(ch in line for ch in BAR_CHARS)


def render_embed(card: StatusCard, *, now: datetime | None = None) -> discord.Embed:
    """Title and lines as the description; live facts as fields Discord lays out in a row.

    Lines that only restate a field (the core's plain "Elapsed 1m 05s" / "ETA 30s") are left
    out when the field can show it better: the ETA as `<t:…:R>` counts down on its own.
    """
    now = now or datetime.now(UTC)
    live = not card.final
    lines = []
    for line in card.lines:
        if live and card.started_at is not None and line.startswith("Elapsed "):
            continue
        if live and card.eta is not None and line.startswith("ETA "):
            continue
        lines.append(line)
    if card.progress is not None and live and not any(_has_bar(line) for line in lines):
        lines.append(progress_bar(card.progress))
    if card.link:
        lines.append(card.link)
    embed = discord.Embed(
        title=_clip(card.title, 256),
        description=_clip("\n".join(lines), EMBED_DESCRIPTION_LIMIT) or None,
        colour=TONE_COLOURS.get(card.tone, TONE_COLOURS["info"]),
    )
    if live:
        if card.local_position is not None:
            embed.add_field(name="Place in line", value=f"#{card.local_position}", inline=True)
        if card.queue_position is not None:
            # fal counts from 0 ("next up"); people count from 1.
            embed.add_field(name="fal queue", value=f"#{card.queue_position + 1}", inline=True)
        if card.stage:
            embed.add_field(name="Stage", value=_clip(card.stage, 1024), inline=True)
        if card.started_at is not None:
            started = card.started_at if card.started_at.tzinfo else card.started_at.replace(tzinfo=UTC)
            embed.add_field(name="Elapsed", value=format_duration((now - started).total_seconds()),
                            inline=True)
        if card.eta is not None:
            embed.add_field(name="ETA", value=relative_timestamp(card.eta), inline=True)
    if card.job_id is not None:
        embed.set_footer(text=f"Job #{card.job_id}" + (f" · {card.state}" if card.state else ""))
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
