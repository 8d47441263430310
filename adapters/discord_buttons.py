"""The buttons under a job's card: Cancel, Re-roll, Extend, Retake, Continue, Delete.

Each carries the custom id `ltx:job:<id>:<kind>` and is handled by one
`DynamicItem` the client registers in `setup_hook`, so buttons keep working
after a restart without any stored view.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord_adapter import DiscordAdapter, adapter_of
from adapters.discord_edit import open_retake_form
from adapters.discord_generate import PromptModal
from bot.commands.services import MAX_JOB_ID
from bot.ports import ACTION_KINDS

BUTTON_TEMPLATE = r"ltx:job:(?P<id>[0-9]+):(?P<kind>" + "|".join(ACTION_KINDS) + ")"


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=BUTTON_TEMPLATE):
    """Any job button, rebuilt from its custom id on every press (so restarts don't matter)."""

    def __init__(self, job_id: int, kind: str) -> None:
        super().__init__(discord.ui.Button(
            label=kind.title(), custom_id=f"ltx:job:{job_id}:{kind}",
            style=discord.ButtonStyle.secondary))
        self.job_id = job_id
        self.kind = kind

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(int(match["id"]), match["kind"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await on_button(adapter_of(interaction), interaction, self.job_id, self.kind)


async def on_button(adapter: DiscordAdapter, interaction: discord.Interaction[Any], job_id: int,
                    kind: str) -> None:
    options = {"action": kind, "job_id": job_id}
    if kind == "retake" and job_id <= MAX_JOB_ID:
        await open_retake_form(adapter, interaction, job_id)
        return
    # A job number no job can have is refused by the core, not asked about in a form.
    if kind in ("extend", "continue") and job_id <= MAX_JOB_ID:
        who = await adapter.gate(interaction)
        if who is None:
            return

        async def submitted(inner: discord.Interaction[Any], modal: PromptModal) -> None:
            await adapter.invoke(inner, "action", text=modal.prompt.value, options=options)

        title = f"{'Extend' if kind == 'extend' else 'Continue'} job #{job_id}"
        await adapter.open_modal(
            interaction, PromptModal(title, submitted, ask_shape=False, prompt_required=False))
        return
    # Re-roll makes a new job: its "thinking" message becomes the new status message.
    # Cancel and Delete change existing messages: acknowledge without a new one.
    await adapter.invoke(interaction, "action", options=options,
                         mode="public" if kind == "reroll" else "update")
