"""Replies to messages that mention the bot: `@LTX a cat surfs`, with the message's
files, or those of the message it replies to. Where the operator allows direct
messages (`[discord] allow_dms`), any message in a DM with the bot is read the same way.

The answer (the job's card, then its video) replies to the mention, so it stays next
to the request in a busy channel. When the message the mention replies to cannot be
read (deleted, or the fetch fails), nothing starts: a text-to-video from the prompt
alone is not what was asked for, and it would be charged."""

from __future__ import annotations

import logging
from typing import Any

import discord

from adapters.discord_adapter import DiscordAdapter
from adapters.discord_refs import PLATFORM
from adapters.discord_translate import (
    parent_channel_id,
    refusal,
    strip_mentions,
    to_attachment,
    to_place,
    to_user,
)
from bot.grammar import leading_command
from bot.ports import Invocation, MessageRef, Place, User

log = logging.getLogger(__name__)

# Commands whose media may come from the message a mention replies to.
MEDIA_COMMANDS = frozenset({"video", "quote", "keyframes", "extend", "retake", "restyle"})
NO_CONTENT_INTENT = (
    "I can't see the attachments of someone else's message from a reply "
    "(that needs Discord's message content intent, which this bot doesn't use). "
    "Right-click the message and use Apps → Animate image / Extend video instead.")
UNSEEN_REPLY = (
    "I couldn't see the message you replied to (it may have been deleted, or I can't read "
    "that channel), so I started nothing and charged nothing. Attach the image or clip to "
    "your message, or reply to a message I can see.")


async def on_message(adapter: DiscordAdapter, message: discord.Message) -> None:
    me = adapter.client.user
    if me is None or message.author.bot or message.author.id == me.id:
        return
    # The guild may be missing from the cache (not yet streamed): the channel still knows it.
    guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
    # A direct message to the bot is read as a mention, where the operator allows DMs.
    direct = guild_id is None and adapter.settings.discord.allow_dms
    if not direct and not any(u.id == me.id for u in message.mentions):
        return
    user = to_user(message.author, adapter.settings)
    place = to_place(message.channel.id, guild_id, message.channel)
    async with adapter.boundary(user, place, "discord mention"):
        await _reply(adapter, message, me.id, user, place)


async def _reply(adapter: DiscordAdapter, message: discord.Message, my_id: int, user: User,
                 place: Place) -> None:
    settings, client = adapter.settings, adapter.client
    why = refusal(settings, user, place, parent_id=parent_channel_id(message.channel))
    if why is not None and (parent := await _uncached_parent(adapter, message.channel, place)):
        why = refusal(settings, user, place, parent_id=parent)
    if why is not None:
        await adapter.port.tell(user, place, why)
        return
    # The same leading words as the console and Slack: `@LTX extend more waves`, `@LTX quota`.
    command, text = leading_command(strip_mentions(message.content, my_id))
    attachments = [to_attachment(a) for a in message.attachments]
    if command in MEDIA_COMMANDS and not attachments and message.reference is not None:
        referenced = await _referenced(adapter, message)
        if referenced is None:
            await adapter.port.tell(user, place, UNSEEN_REPLY)
            return
        attachments = [to_attachment(a) for a in referenced.attachments]
        if (not attachments and referenced.author.id != my_id
                and not client.intents.message_content):
            await adapter.port.tell(user, place, NO_CONTENT_INTENT)
            return
    reply_to = MessageRef(platform=PLATFORM, channel=str(message.channel.id), id=str(message.id))
    with adapter.port.replying_to(reply_to):
        await adapter.core.handle(Invocation(
            user=user, place=place, command=command, text=text, attachments=attachments,
            reply_to=reply_to, event_id=str(message.id),
        ), adapter.port)


async def _uncached_parent(adapter: DiscordAdapter, channel: Any, place: Place) -> int | None:
    """The parent of a thread the cache does not know yet (it arrives as a bare
    PartialMessageable), looked up with the bot token; None when it is not a thread."""
    if place.workspace is None or not isinstance(channel, discord.PartialMessageable):
        return None
    try:
        fetched = await adapter.client.fetch_channel(int(place.channel))
    except discord.HTTPException as exc:
        log.info("could not fetch channel %s (HTTP %s, code %s)", place.channel, exc.status, exc.code)
        return None
    return parent_channel_id(fetched)


async def _referenced(adapter: DiscordAdapter, message: discord.Message) -> discord.Message | None:
    ref = message.reference
    if ref is None or ref.message_id is None:
        return None
    if isinstance(ref.resolved, discord.Message):
        return ref.resolved
    if isinstance(ref.resolved, discord.DeletedReferencedMessage):
        return None  # the event says it is gone: no need to ask
    # Not in the event (too old or not cached): fetch it with the bot token.
    channel_id = ref.channel_id or message.channel.id
    try:
        channel = adapter.client.get_partial_messageable(channel_id, guild_id=ref.guild_id)
        return await channel.fetch_message(ref.message_id)
    except discord.HTTPException as exc:
        log.info("could not fetch the replied-to message (HTTP %s, code %s)", exc.status, exc.code)
        return None
