"""What only one user may see on Discord: `my-data`'s file and the forget-me
confirmation card. An ephemeral followup of the live slash-command interaction (which
is how `/my-data` and `/forget-me` arrive), else a direct message; never the channel,
where others would see it."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord.http import handle_message_parameters

from adapters.discord_render import render
from bot.errors import UserError
from bot.ports import Place, StatusCard, User

if TYPE_CHECKING:
    from adapters.discord_port import DiscordPort

log = logging.getLogger(__name__)


async def send_private_file(port: DiscordPort, user: User, place: Place, filename: str,
                            data: bytes, text: str) -> None:
    def params(**flags: Any) -> Any:  # a new File each time: sending one consumes it
        return handle_message_parameters(
            content=text, file=discord.File(io.BytesIO(data), filename=filename),
            allowed_mentions=discord.AllowedMentions.none(), **flags)

    await _privately(port, user, place, params, "file", (
        "I could not send you the file privately: allow direct messages from this "
        "server's members, or use /my-data."))


async def send_private_card(port: DiscordPort, user: User, place: Place, card: StatusCard) -> None:
    """The forget-me confirmation with its button, for its user's eyes only (a press on
    an ephemeral message reaches the bot as any button does)."""
    rendered = render(card)

    def params(**flags: Any) -> Any:
        return handle_message_parameters(embed=rendered.embed, view=rendered.view,
                                         allowed_mentions=discord.AllowedMentions.none(), **flags)

    await _privately(port, user, place, params, "card", (
        "I could not ask you privately: allow direct messages from this server's members, "
        "or use /forget-me."))


async def _privately(port: DiscordPort, user: User, place: Place, params: Callable[..., Any],
                     what: str, refusal: str) -> None:
    """The ephemeral followup of the user's live interaction here, else a DM; `refusal`
    when neither can reach them."""
    live = port.live_for(user.id, place.channel)
    if live is not None:
        try:
            # The deferred ephemeral reply's first followup takes its place: still private.
            await port._followup_file(live, params(flags=discord.MessageFlags(ephemeral=True)))
            live.resolved = True
            return
        except discord.HTTPException as exc:
            log.info("ephemeral %s failed (HTTP %s); sending it as a DM", what, exc.status)
    try:
        dm = await port.http.start_private_message(int(user.id))
        with params() as p:
            await port.http.send_message(int(dm["id"]), params=p)
    except discord.HTTPException:
        raise UserError(refusal) from None
