"""Generation commands: /video, /keyframes, /extend, the "Animate image" and
"Extend video" message menus, and the prompt modal they (and two buttons) open.
(/retake, /restyle and the Retake form: `discord_edit`.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, get_args

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from adapters.discord_adapter import DiscordAdapter, adapter_of
from adapters.discord_edit import REPLACE_CHOICES, model_autocomplete, retake_options
from adapters.discord_translate import (
    first_media,
    join_text,
    parse_seconds,
    to_attachment,
    video_options,
)
from bot import catalog
from bot.ports import AttachmentKind

ASPECT_CHOICES = ("16:9", "9:16", "1:1", "4:3", "3:4", "auto")
RESOLUTION_CHOICES = ("480p", "720p", "1080p")
CAMERA_CHOICES: tuple[str, ...] = get_args(catalog.CameraLora)
MODAL_TIMEOUT = 15 * 60.0  # an unsubmitted modal is forgotten with its interaction


class PromptModal(discord.ui.Modal):
    """Asks for a prompt (and, for context menus, length and aspect) before a job starts."""

    def __init__(
        self,
        title: str,
        on_done: Callable[[discord.Interaction[Any], PromptModal], Awaitable[None]],
        *,
        ask_shape: bool,
        prompt_required: bool = True,
        prompt_default: str | None = None,
        offer_retake: bool = False,
    ) -> None:
        super().__init__(title=title[:45], timeout=MODAL_TIMEOUT)
        self._on_done = on_done
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, required=prompt_required,
            max_length=2000, placeholder="What happens in the video?", default=prompt_default)
        self.add_item(self.prompt)
        self.seconds: discord.ui.TextInput[Any] | None = None
        self.aspect: discord.ui.TextInput[Any] | None = None
        self.section: discord.ui.TextInput[Any] | None = None
        self.redo: discord.ui.TextInput[Any] | None = None
        if ask_shape:
            self.seconds = discord.ui.TextInput(label="Seconds", required=False, max_length=6,
                                                placeholder="e.g. 5")
            self.add_item(self.seconds)
        if ask_shape and not offer_retake:
            self.aspect = discord.ui.TextInput(label="Aspect ratio", required=False, max_length=5,
                                               placeholder=", ".join(ASPECT_CHOICES[:5]))
            self.add_item(self.aspect)
        if offer_retake:
            # A clip's menu does both: extend it, or (with a section) redo part of it.
            self.section = discord.ui.TextInput(
                label="Or retake a section: from-to seconds", required=False, max_length=15,
                placeholder="e.g. 2-5 (empty: extend the clip)")
            self.redo = discord.ui.TextInput(
                label="Retake: video, audio or both", required=False, max_length=5,
                placeholder="both")
            self.add_item(self.section)
            self.add_item(self.redo)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._on_done(interaction, self)

    async def on_error(  # type: ignore[override]  # discord.py's Modal narrows BaseView's signature
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await adapter_of(interaction).report(interaction, error, "modal submit")


def register(tree: app_commands.CommandTree[Any], adapter: DiscordAdapter) -> None:
    commands: tuple[Any, ...] = (_video(adapter), _keyframes(adapter), _extend(adapter),
                                 *_menus(adapter))
    for command in commands:
        tree.add_command(command)


def _video(adapter: DiscordAdapter) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="video", description="Make a video from a prompt, optionally starting from an image")
    @app_commands.describe(
        prompt="What happens in the video",
        image="Start image (image-to-video)",
        end_image="End image (LTX-2)",
        audio_file="A sound file (MP3, WAV, M4A, OGG, FLAC) the video follows (audio-to-video)",
        model="Which LTX model (type to search)",
        duration="Length in seconds",
        aspect_ratio="Aspect ratio",
        resolution="Resolution",
        seed="Seed for repeatable results",
        audio="Generate an audio track (LTX-2)",
        camera="Camera movement (LTX-2)",
        negative_prompt="What to avoid",
        advanced="More flags, e.g. --fps 24 --steps 30",
    )
    @app_commands.autocomplete(model=model_autocomplete)
    @app_commands.choices(
        aspect_ratio=[Choice(name=a, value=a) for a in ASPECT_CHOICES],
        resolution=[Choice(name=r, value=r) for r in RESOLUTION_CHOICES],
        camera=[Choice(name=c, value=c) for c in CAMERA_CHOICES],
    )
    async def video(
        interaction: discord.Interaction[Any],
        prompt: Range[str, 1, 2000],
        image: discord.Attachment | None = None,
        end_image: discord.Attachment | None = None,
        audio_file: discord.Attachment | None = None,
        model: str | None = None,
        duration: Range[float, 0.1, 60.0] | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        seed: Range[int, 0, 4294967295] | None = None,
        audio: bool | None = None,
        camera: str | None = None,
        negative_prompt: str | None = None,
        advanced: str | None = None,
    ) -> None:
        options = video_options(model=model, duration=duration, aspect_ratio=aspect_ratio,
                                resolution=resolution, seed=seed, audio=audio, camera=camera,
                                negative_prompt=negative_prompt)
        attachments = [to_attachment(a) for a in (image, audio_file) if a is not None]
        if end_image is not None:
            # Routed as the clip's last frame (first-to-last frame), not as a keyframe.
            attachments.append(replace(to_attachment(end_image), role="end"))
        await adapter.invoke(interaction, "video", text=join_text(prompt, advanced),
                             options=options, attachments=attachments)

    return video


def _keyframes(adapter: DiscordAdapter) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="keyframes", description="Make a video that passes through your images")
    @app_commands.describe(prompt="What happens between the images", image1="First keyframe",
                           image2="Second keyframe", positions="Frame numbers, e.g. 0,60,120",
                           duration="Length in seconds", aspect_ratio="Aspect ratio",
                           advanced="More flags, e.g. --seed 42")
    @app_commands.choices(aspect_ratio=[Choice(name=a, value=a) for a in ASPECT_CHOICES])
    async def keyframes(
        interaction: discord.Interaction[Any],
        prompt: Range[str, 1, 2000],
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        positions: str | None = None,
        duration: Range[float, 0.1, 60.0] | None = None,
        aspect_ratio: str | None = None,
        advanced: str | None = None,
    ) -> None:
        images = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        options = video_options(duration=duration, aspect_ratio=aspect_ratio)
        if positions:
            options["positions"] = positions
        await adapter.invoke(interaction, "keyframes", text=join_text(prompt, advanced),
                             options=options, attachments=[to_attachment(a) for a in images])

    return keyframes


def _extend(adapter: DiscordAdapter) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="extend", description="Continue a video clip (or lead into it)")
    @app_commands.describe(video="The clip to extend", prompt="What happens next",
                           seconds="How many seconds to add",
                           at_start="Add them before the clip instead of after it",
                           from_frame="Frame of the clip to continue from (ltx-extend model only)",
                           model="Which LTX model (type to search)",
                           advanced="More flags, e.g. --seed 42")
    @app_commands.autocomplete(model=model_autocomplete)
    async def extend(
        interaction: discord.Interaction[Any],
        video: discord.Attachment,
        prompt: Range[str, 1, 2000],
        seconds: Range[float, 0.1, 60.0] | None = None,
        at_start: bool | None = None,
        from_frame: Range[int, 0, 100000] | None = None,
        model: str | None = None,
        advanced: str | None = None,
    ) -> None:
        pairs = {"seconds": seconds, "at_start": at_start, "start_frame": from_frame,
                 "model": model}
        options: dict[str, Any] = {k: v for k, v in pairs.items() if v is not None and v != ""}
        await adapter.invoke(interaction, "extend", text=join_text(prompt, advanced),
                             options=options, attachments=[to_attachment(video)])

    return extend


def _menus(adapter: DiscordAdapter) -> tuple[app_commands.ContextMenu, ...]:
    @app_commands.context_menu(name="Animate image")
    async def animate_menu(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await media_menu(adapter, interaction, message, kind="image", command="video",
                         title="Animate image")

    @app_commands.context_menu(name="Extend video")
    async def extend_menu(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await media_menu(adapter, interaction, message, kind="video", command="extend",
                         title="Extend or retake video")

    return animate_menu, extend_menu


async def media_menu(adapter: DiscordAdapter, interaction: discord.Interaction[Any],
                     message: discord.Message, *, kind: AttachmentKind, command: str,
                     title: str) -> None:
    """A message menu: the message's first image (or clip), then a modal for the prompt."""
    who = await adapter.gate(interaction)
    if who is None:
        return
    found = first_media(message.attachments, kind)
    if found is None:
        await interaction.response.send_message(
            f"That message has no {kind} attachment I can use. Pick a message with "
            f"{'an image (PNG, JPEG, WebP)' if kind == 'image' else 'a video (MP4, WebM, MOV)'}.",
            ephemeral=True)
        return
    attachment = to_attachment(found)

    async def submitted(inner: discord.Interaction[Any], modal: PromptModal) -> None:
        read = menu_options(modal, command)
        if isinstance(read, str):
            await inner.response.send_message(read, ephemeral=True)
            return
        chosen, options = read
        await adapter.invoke(inner, chosen, text=modal.prompt.value, options=options,
                             attachments=[attachment])

    await adapter.open_modal(interaction, PromptModal(title, submitted, ask_shape=True,
                                                      offer_retake=kind == "video"))


def menu_options(modal: PromptModal, command: str) -> tuple[str, dict[str, Any]] | str:
    """(command, options) a menu's form asks for, or what is wrong with it in words. A
    section (`2-5`) on the clip menu makes it a retake of that section."""
    options: dict[str, Any] = {}
    if modal.section is not None and modal.section.value.strip():
        start, dash, end = modal.section.value.strip().partition("-")
        mode = (modal.redo.value if modal.redo is not None else "").strip().lower() or None
        try:
            options = retake_options(parse_seconds(start), parse_seconds(end), mode)
        except ValueError:
            dash = ""
        if not dash or options.get("from") is None or options.get("to") is None:
            return (f"A section is two times in seconds, like 2-5, not "
                    f"{modal.section.value!r}.")
        if mode is not None and mode not in REPLACE_CHOICES:
            return f"Retake must be video, audio or both, not {mode!r}."
        return "retake", options
    if modal.seconds is not None and modal.seconds.value.strip():
        try:
            options["seconds"] = parse_seconds(modal.seconds.value)
        except ValueError:
            return f"Seconds must be a number like 5, not {modal.seconds.value!r}."
    if modal.aspect is not None and modal.aspect.value.strip():
        options["aspect"] = modal.aspect.value.strip()
    return command, options
