"""The path every Discord command family shares: who and where, the gate, the
acknowledgement, the Invocation, and the error boundary around the core.

Every interaction is acknowledged within Discord's 3-second deadline before the
core works: a public "thinking" defer for generations (its original response
becomes the job's status message), an ephemeral one for quota, jobs, help and
admin, a bare update for buttons that change an existing message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord_port import DiscordPort
from adapters.discord_refs import DeferMode
from adapters.discord_translate import parent_channel_id, refusal, to_place, to_user
from bot.boundary import boundary, report_failure
from bot.config import Settings
from bot.ports import Attachment, Core, InteractionInfo, Invocation, Place, User

if TYPE_CHECKING:
    from adapters.discord_bot import LtxClient

log = logging.getLogger(__name__)


class DiscordAdapter:
    """Turns interactions and messages into Invocations for the core; owns no connection.

    The command families (`discord_generate`, `discord_account`, `discord_admin`,
    `discord_buttons`, `discord_mentions`) translate their own events and come here
    to be gated, acknowledged and handed to the core inside one error boundary.
    """

    def __init__(self, client: LtxClient, settings: Settings, core: Core, port: DiscordPort) -> None:
        self.client = client
        self.settings = settings
        self.core = core
        self.port = port

    def user_of(self, interaction: discord.Interaction[Any]) -> User:
        return to_user(interaction.user, self.settings)

    def place_of(self, interaction: discord.Interaction[Any]) -> Place:
        return to_place(interaction.channel_id or 0, interaction.guild_id, interaction.channel)

    async def gate(self, interaction: discord.Interaction[Any]) -> tuple[User, Place] | None:
        """Refuse at once (ephemeral, says what is required) or return who and where.

        Every interaction passes here before anything answers it, so here it is claimed in
        the store: a replayed INTERACTION_CREATE (a gateway resume can send one again, also
        after a restart) is dropped silently instead of being acknowledged a second time."""
        if not await self.core.first_seen(f"discord:interaction:{interaction.id}"):
            log.info("discord: ignoring interaction %s, already handled", interaction.id)
            return None
        user, place = self.user_of(interaction), self.place_of(interaction)
        self.port.note_upload_limit(place.channel, interaction.filesize_limit)
        # Interaction payloads carry the channel, with parent_id when it is a thread.
        why = refusal(self.settings, user, place, parent_id=parent_channel_id(interaction.channel))
        if why is not None:
            await interaction.response.send_message(why, ephemeral=True)
            return None
        return user, place

    async def invoke(
        self,
        interaction: discord.Interaction[Any],
        command: str,
        *,
        text: str = "",
        options: dict[str, Any] | None = None,
        attachments: list[Attachment] | None = None,
        mode: DeferMode = "public",
        who: tuple[User, Place] | None = None,
    ) -> None:
        """Gate (unless `who` says it was done), acknowledge, and hand the command to the core."""
        who = who or await self.gate(interaction)
        if who is None:
            return
        user, place = who
        try:
            original_id = await acknowledge(interaction, mode)
        except discord.HTTPException as exc:
            if not already_acknowledged(exc):
                raise
            log.info("discord: interaction %s was already acknowledged", interaction.id)
            return
        live = self.port.remember_interaction(interaction, user.id, place.channel, mode, original_id)
        await self.run(Invocation(
            user=user,
            place=place,
            command=command,
            text=text,
            options=dict(options or {}),
            attachments=list(attachments or []),
            interaction=InteractionInfo(
                token=interaction.token, expires_at=interaction.expires_at,
                application_id=str(interaction.application_id), id=str(interaction.id)),
            # No event_id: `gate` has claimed this interaction in the store already.
            status_message=live.status_ref(place.channel) if mode == "public" else None,
        ))

    async def run(self, inv: Invocation) -> None:
        """The core, inside the boundary (the core keeps its own; this one guards the wiring)."""
        async with self.boundary(inv.user, inv.place, f"discord {inv.command}"):
            await self.core.handle(inv, self.port)

    @asynccontextmanager
    async def boundary(self, user: User, place: Place, context: str) -> AsyncIterator[None]:
        """`bot.boundary.boundary`, telling the user through the port."""

        async def tell(text: str) -> None:
            await self.port.tell(user, place, text)

        async with boundary(tell, context, logger=log):
            yield

    async def report(self, interaction: discord.Interaction[Any], error: Exception,
                     context: str) -> None:
        """An error discord.py caught for us (command tree, modal): told on the interaction.

        Discord's "already acknowledged" (40060) means another answer got there first: the
        interaction is handled, and a second note would only be refused again."""
        if already_acknowledged(error):
            log.info("discord: %s: interaction %s was already acknowledged", context,
                     interaction.id)
            return

        async def tell(text: str) -> None:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)

        await report_failure(error, tell, f"discord {context}", logger=log)

    async def open_modal(self, interaction: discord.Interaction[Any], modal: discord.ui.Modal) -> None:
        await interaction.response.send_modal(modal)
        # Lets tests (and metrics) await the moment the modal can be submitted.
        self.client.dispatch("ltx_modal_opened", modal)


# Discord's error code for a second response to one interaction.
ALREADY_ACKNOWLEDGED = 40060


def already_acknowledged(error: BaseException) -> bool:
    return isinstance(error, discord.HTTPException) and error.code == ALREADY_ACKNOWLEDGED


async def acknowledge(interaction: discord.Interaction[Any], mode: DeferMode) -> int | None:
    """Defer the interaction as `mode` says; the id of the "thinking" message, when one exists."""
    if mode in ("public", "ephemeral"):
        response = await interaction.response.defer(thinking=True, ephemeral=mode == "ephemeral")
        return response.message_id if response is not None else None
    if mode == "update":
        await interaction.response.defer()
    return None


def adapter_of(interaction: discord.Interaction[Any]) -> DiscordAdapter:
    """The adapter of the client an interaction arrived on (buttons and modals find it here)."""
    adapter = getattr(interaction.client, "adapter", None)
    if not isinstance(adapter, DiscordAdapter):
        raise RuntimeError("interaction from a client without an ltx-bot adapter")
    return adapter
