"""Discord objects -> the neutral types the core speaks. Pure functions, no I/O.

Who (`to_user`), where (`to_place`), which files (`to_attachment`), whether this
user may use the bot here (`refusal`), and the small text helpers the command
families share. The Slack adapter's `slack_translate` has the same names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from adapters.discord_refs import PLATFORM
from bot import catalog
from bot.config import Settings
from bot.media import kind_from_hint
from bot.ports import Attachment, AttachmentKind, Place, User


def to_attachment(att: discord.Attachment) -> Attachment:
    return Attachment(
        url=att.url,
        filename=att.filename,
        content_type=att.content_type,
        size=att.size,
        kind=kind_from_hint(att.content_type, att.filename),
    )


def role_keys(member: discord.abc.User) -> tuple[str, ...]:
    """Role ids, plus names where the guild is cached: config may list either."""
    if not isinstance(member, discord.Member):
        return ()
    keys: list[str] = [str(rid) for rid in member._roles]
    guild = member.guild
    for rid in member._roles:
        role = guild.get_role(int(rid))
        if role is not None:
            keys.append(role.name)
    return tuple(keys)


def to_user(author: discord.abc.User, settings: Settings) -> User:
    roles = role_keys(author)
    admin_roles = {r.lower() for r in settings.discord.admin_roles}
    is_admin = author.id in settings.discord.admin_users or any(
        r.lower() in admin_roles for r in roles)
    return User(platform=PLATFORM, id=str(author.id), name=author.display_name, roles=roles,
                is_admin=is_admin, is_workspace_admin=manages_guild(author))


def manages_guild(author: discord.abc.User) -> bool:
    """Manage Server in the guild the command came from: an interaction carries the
    member's resolved permissions; a message's author has them from the guild's roles."""
    if not isinstance(author, discord.Member):
        return False
    perms = author.resolved_permissions
    if perms is None:
        try:
            perms = author.guild_permissions
        except AttributeError:  # a member whose guild is not cached yet
            return False
    return perms.manage_guild


def to_place(channel_id: int, guild_id: int | None, channel: Any = None) -> Place:
    thread = str(channel_id) if isinstance(channel, discord.Thread) else None
    parent = parent_channel_id(channel)
    return Place(platform=PLATFORM, channel=str(channel_id),
                 workspace=str(guild_id) if guild_id else None, thread=thread,
                 direct=guild_id is None,  # the bot is in no group DMs: no guild is a DM
                 parent=str(parent) if parent else None, age_restricted=_nsfw(channel))


def _nsfw(channel: Any) -> bool | None:
    """The channel's age-restricted mark (a thread's is its parent's); None when unknown."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    if callable(is_nsfw):
        try:
            return bool(is_nsfw())
        except AttributeError:  # a thread whose parent is not cached
            return None
    nsfw = getattr(channel, "nsfw", None)
    return nsfw if isinstance(nsfw, bool) else None


def parent_channel_id(channel: Any) -> int | None:
    """The channel a thread belongs to; None for anything that is not a (known) thread."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return None


def refusal(settings: Settings, user: User, place: Place, *, parent_id: int | None = None) -> str | None:
    """Why this user may not use the bot here, in words that say what is required; None if allowed.

    `parent_id` is the channel a thread belongs to: allowing a channel allows its threads,
    since people are told to use that channel and Discord invites them to reply in threads."""
    cfg = settings.discord
    if user.is_admin:
        return None
    if place.workspace is None:
        if not cfg.allow_dms:
            return "I only work in servers, not in direct messages. Use me in a channel of a server I'm in."
        if cfg.allowed_roles:
            return ("Using me requires one of these roles: " + ", ".join(cfg.allowed_roles)
                    + ". Roles exist only in servers, so please use me in a server channel.")
        return None
    if cfg.allowed_guilds and int(place.workspace) not in cfg.allowed_guilds:
        return "I'm not enabled in this server. Ask the bot's operator to add it to allowed_guilds."
    channel_ok = (not cfg.allowed_channels or int(place.channel) in cfg.allowed_channels
                  or (parent_id is not None and parent_id in cfg.allowed_channels))
    if not channel_ok:
        channels = ", ".join(f"<#{c}>" for c in cfg.allowed_channels)
        return f"I only work in these channels: {channels}."
    if cfg.allowed_roles:
        wanted = {r.lower() for r in cfg.allowed_roles}
        if not any(r.lower() in wanted for r in user.roles):
            return "Using me requires one of these roles: " + ", ".join(cfg.allowed_roles) + "."
    return None


def admin_refusal(settings: Settings) -> str:
    parts = []
    if settings.discord.admin_roles:
        parts.append("one of the roles " + ", ".join(settings.discord.admin_roles))
    if settings.discord.admin_users:
        parts.append("being listed in discord.admin_users")
    need = " or ".join(parts) if parts else "being listed in discord.admin_users or discord.admin_roles"
    return f"Admin commands require {need} in the bot's config."


def video_options(
    *,
    model: str | None = None,
    duration: float | None = None,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    seed: int | None = None,
    audio: bool | None = None,
    camera: str | None = None,
    negative_prompt: str | None = None,
) -> dict[str, Any]:
    """Slash command options -> the core's structured option names; unset ones are left out."""
    pairs = {"model": model, "seconds": duration, "aspect": aspect_ratio, "resolution": resolution,
             "seed": seed, "audio": audio, "camera": camera, "negative": negative_prompt}
    return {k: v for k, v in pairs.items() if v is not None and v != ""}


def join_text(prompt: str, advanced: str | None) -> str:
    return f"{prompt} {advanced}".strip() if advanced else prompt.strip()


def strip_mentions(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", " ", content).strip()


def first_media(attachments: Sequence[discord.Attachment], kind: AttachmentKind) -> discord.Attachment | None:
    for att in attachments:
        if kind_from_hint(att.content_type, att.filename) == kind:
            return att
    return None


def parse_seconds(raw: str) -> float | None:
    raw = raw.strip().lower().removesuffix("s").strip()
    if not raw:
        return None
    return float(raw.replace(",", "."))


def model_choices(current: str, limit: int = 25) -> list[tuple[str, str]]:
    """(label, key) of the models whose key, endpoint id, alias or title holds what the user
    typed, for the model option's autocomplete (Discord shows at most 25)."""
    needle = current.strip().lower()
    out: list[tuple[str, str]] = []
    for endpoint in catalog.ENDPOINTS:
        names = (endpoint.key, endpoint.endpoint_id, endpoint.title,
                 *getattr(endpoint, "aliases", ()))
        if needle and not any(needle in str(name).lower() for name in names):
            continue
        note = " (deprecated)" if endpoint.deprecated else ""
        out.append((f"{endpoint.key}: {endpoint.title}{note}"[:100], endpoint.key))
    return out[:limit]
