"""Commands that edit a clip: /retake and /restyle, the form the Retake button opens,
and the model option's autocomplete (more models than Discord's 25 fixed choices).

/retake takes a clip (attached) or a finished job's number (`job`); `from` and `to`
are seconds of the clip and `replace` says which track is redone. The Retake button
asks the same in a modal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from adapters.discord_adapter import DiscordAdapter, adapter_of
from adapters.discord_translate import join_text, model_choices, parse_seconds, to_attachment

REPLACE_CHOICES = ("both", "video", "audio")
MODAL_TIMEOUT = 15 * 60.0  # an unsubmitted modal is forgotten with its interaction


async def model_autocomplete(interaction: discord.Interaction[Any],
                             current: str) -> list[Choice[str]]:
    """Up to 25 models matching what the user typed so far (key, id, alias or title)."""
    return [Choice(name=name, value=value) for name, value in model_choices(current)]


def register(tree: app_commands.CommandTree[Any], adapter: DiscordAdapter) -> None:
    tree.add_command(_retake(adapter))
    tree.add_command(_restyle(adapter))


def retake_options(start: float | None, end: float | None, replace: str | None) -> dict[str, Any]:
    pairs = {"from": start, "to": end, "replace": replace}
    return {k: v for k, v in pairs.items() if v is not None and v != ""}


def _retake(adapter: DiscordAdapter) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="retake", description="Redo a section of a clip: its picture, "
                          "its sound or both")
    @app_commands.describe(
        prompt="What the redone section shows or sounds like",
        video="The clip (or give job)",
        job="A finished job's number instead of a clip (see /jobs)",
        from_="Where the section starts, in seconds of the clip",
        to="Where it ends, in seconds of the clip",
        replace="What to redo (default: both)",
        model="Which LTX model",
        advanced="More flags, e.g. --seed 42",
    )
    @app_commands.rename(from_="from")
    @app_commands.choices(replace=[Choice(name=r, value=r) for r in REPLACE_CHOICES])
    @app_commands.autocomplete(model=model_autocomplete)
    async def retake(
        interaction: discord.Interaction[Any],
        prompt: Range[str, 1, 2000],
        video: discord.Attachment | None = None,
        job: Range[int, 1, 2**53] | None = None,
        from_: Range[float, 0.0, 100000.0] | None = None,
        to: Range[float, 0.0, 100000.0] | None = None,
        replace: str | None = None,
        model: str | None = None,
        advanced: str | None = None,
    ) -> None:
        options = retake_options(from_, to, replace)
        if model:
            options["model"] = model
        text = join_text(prompt, advanced)
        if job is not None and video is None:
            # A finished job's video: the Retake button's path, with the range given here.
            await adapter.invoke(interaction, "action", text=text,
                                 options={"action": "retake", "job_id": job, **options})
            return
        attachments = [to_attachment(video)] if video is not None else []
        await adapter.invoke(interaction, "retake", text=text, options=options,
                             attachments=attachments)

    return retake


def _restyle(adapter: DiscordAdapter) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="restyle", description="Remake a clip in a new style, keeping "
                          "its motion")
    @app_commands.describe(prompt="The new look, e.g. a watercolour painting",
                           video="The clip to restyle", model="Which LTX model",
                           advanced="More flags, e.g. --seed 42")
    @app_commands.autocomplete(model=model_autocomplete)
    async def restyle(
        interaction: discord.Interaction[Any],
        prompt: Range[str, 1, 2000],
        video: discord.Attachment,
        model: str | None = None,
        advanced: str | None = None,
    ) -> None:
        options = {"model": model} if model else {}
        await adapter.invoke(interaction, "restyle", text=join_text(prompt, advanced),
                             options=options, attachments=[to_attachment(video)])

    return restyle


class RetakeModal(discord.ui.Modal):
    """Asks which section to redo, what to redo and how: the Retake button's form."""

    def __init__(self, title: str,
                 on_done: Callable[[discord.Interaction[Any], dict[str, Any], str], Awaitable[None]]
                 ) -> None:
        super().__init__(title=title[:45], timeout=MODAL_TIMEOUT)
        self._on_done = on_done
        self.start: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="From (seconds of the clip)", max_length=8, placeholder="e.g. 2")
        self.end: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="To (seconds of the clip)", max_length=8, placeholder="e.g. 5")
        self.mode: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Redo: video, audio or both", required=False, max_length=5,
            placeholder="both")
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, required=False, max_length=2000,
            placeholder="What the section shows instead (empty: the job's prompt)")
        for item in (self.start, self.end, self.mode, self.prompt):
            self.add_item(item)

    def options(self) -> dict[str, Any] | str:
        """The form as the core's options, or what is wrong with it, in words."""
        try:
            start, end = parse_seconds(self.start.value), parse_seconds(self.end.value)
        except ValueError:
            return (f"From and To are seconds, like 2 and 5; got {self.start.value!r} and "
                    f"{self.end.value!r}.")
        mode = self.mode.value.strip().lower() or None
        if mode is not None and mode not in REPLACE_CHOICES:
            return f"Redo must be video, audio or both, not {self.mode.value!r}."
        return retake_options(start, end, mode)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        options = self.options()
        if isinstance(options, str):
            await interaction.response.send_message(options, ephemeral=True)
            return
        await self._on_done(interaction, options, self.prompt.value)

    async def on_error(  # type: ignore[override]  # discord.py's Modal narrows BaseView's signature
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await adapter_of(interaction).report(interaction, error, "modal submit")


async def open_retake_form(adapter: DiscordAdapter, interaction: discord.Interaction[Any],
                           job_id: int) -> None:
    """The Retake button: the form, then the retake of that job's video."""
    if await adapter.gate(interaction) is None:
        return

    async def submitted(inner: discord.Interaction[Any], options: dict[str, Any],
                        prompt: str) -> None:
        await adapter.invoke(inner, "action", text=prompt,
                             options={"action": "retake", "job_id": job_id, **options})

    await adapter.open_modal(interaction, RetakeModal(f"Retake job #{job_id}", submitted))
