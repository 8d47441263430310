"""The Discord front door: slash commands, context menus, modals, mention replies and buttons.

Each platform event becomes one neutral `Invocation` handed to the core
(`Bot.handle`). The adapter acknowledges every interaction within Discord's
3-second deadline first (a public "thinking" defer for generations, whose
original response becomes the job's status message; an ephemeral one for
quota, jobs, help and admin), and only then lets the core work.

Buttons carry `ltx:job:<id>:<kind>` custom ids and are handled by a
`DynamicItem` registered in `setup_hook`, so they keep working after a
restart without any stored view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, get_args
from urllib.parse import urlsplit

import discord
import yarl
from discord import app_commands
from discord.app_commands import Choice, Range

from adapters.discord_port import PLATFORM, DeferMode, DiscordPort
from bot import catalog
from bot.config import Settings
from bot.errors import report_unexpected
from bot.grammar import leading_command
from bot.ports import (
    Attachment,
    AttachmentKind,
    ChatPort,
    InteractionInfo,
    Invocation,
    MessageRef,
    Place,
    User,
)

log = logging.getLogger(__name__)

Handle = Callable[[Invocation, ChatPort], Awaitable[None]]

ASPECT_CHOICES = ("16:9", "9:16", "1:1", "4:3", "3:4", "auto")
RESOLUTION_CHOICES = ("480p", "720p", "1080p")
CAMERA_CHOICES: tuple[str, ...] = get_args(catalog.CameraLora)
MODEL_CHOICES: tuple[str, ...] = tuple(e.key for e in catalog.ENDPOINTS)[:25]
ACTION_KINDS = ("cancel", "reroll", "extend", "continue", "delete")
BUTTON_TEMPLATE = r"ltx:job:(?P<id>[0-9]+):(?P<kind>" + "|".join(ACTION_KINDS) + ")"
MODAL_TIMEOUT = 15 * 60.0  # an unsubmitted modal is forgotten with its interaction

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
VIDEO_EXTENSIONS = {".mp4", ".webm", ".mov", ".m4v"}
# Commands whose media may come from the message a mention replies to.
MEDIA_COMMANDS = frozenset({"video", "quote", "keyframes", "extend"})


# ---------------------------------------------------------------- translation (pure)


def attachment_kind(content_type: str | None, filename: str) -> AttachmentKind:
    """A hint only: the core sniffs the bytes. Discord omits content_type for some uploads."""
    if content_type:
        if content_type.startswith("image/"):
            return "image"
        if content_type.startswith("video/"):
            return "video"
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return "unknown"


def to_attachment(att: discord.Attachment) -> Attachment:
    return Attachment(
        url=att.url,
        filename=att.filename,
        content_type=att.content_type,
        size=att.size,
        kind=attachment_kind(att.content_type, att.filename),
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
                is_admin=is_admin)


def to_place(channel_id: int, guild_id: int | None, channel: Any = None) -> Place:
    thread = str(channel_id) if isinstance(channel, discord.Thread) else None
    return Place(platform=PLATFORM, channel=str(channel_id),
                 workspace=str(guild_id) if guild_id else None, thread=thread)


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
        if attachment_kind(att.content_type, att.filename) == kind:
            return att
    return None


def parse_seconds(raw: str) -> float | None:
    raw = raw.strip().lower().removesuffix("s").strip()
    if not raw:
        return None
    return float(raw.replace(",", "."))


# ---------------------------------------------------------------- UI: buttons and modals


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
        frontend = _frontend_of(interaction)
        await frontend.on_button(interaction, self.job_id, self.kind)


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
    ) -> None:
        super().__init__(title=title[:45], timeout=MODAL_TIMEOUT)
        self._on_done = on_done
        self.prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, required=prompt_required,
            max_length=2000, placeholder="What happens in the video?", default=prompt_default)
        self.add_item(self.prompt)
        self.seconds: discord.ui.TextInput[Any] | None = None
        self.aspect: discord.ui.TextInput[Any] | None = None
        if ask_shape:
            self.seconds = discord.ui.TextInput(label="Seconds", required=False, max_length=6,
                                                placeholder="e.g. 5")
            self.aspect = discord.ui.TextInput(label="Aspect ratio", required=False, max_length=5,
                                               placeholder=", ".join(ASPECT_CHOICES[:5]))
            self.add_item(self.seconds)
            self.add_item(self.aspect)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._on_done(interaction, self)

    async def on_error(  # type: ignore[override]  # discord.py's Modal narrows BaseView's signature
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await _frontend_of(interaction).report(interaction, error, "modal submit")


def _frontend_of(interaction: discord.Interaction[Any]) -> DiscordFrontend:
    frontend = getattr(interaction.client, "frontend", None)
    if not isinstance(frontend, DiscordFrontend):
        raise RuntimeError("interaction from a client without an ltx-bot frontend")
    return frontend


# ---------------------------------------------------------------- the frontend


class DiscordFrontend:
    """Turns interactions and messages into Invocations; owns no Discord connection itself."""

    def __init__(self, client: LtxClient, settings: Settings, handle: Handle, port: DiscordPort) -> None:
        self.client = client
        self.settings = settings
        self.handle = handle
        self.port = port
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ common path

    def user_of(self, interaction: discord.Interaction[Any]) -> User:
        return to_user(interaction.user, self.settings)

    def place_of(self, interaction: discord.Interaction[Any]) -> Place:
        channel_id = interaction.channel_id or 0
        return to_place(channel_id, interaction.guild_id, interaction.channel)

    async def gate(self, interaction: discord.Interaction[Any]) -> tuple[User, Place] | None:
        """Refuse at once (ephemeral, says what is required) or return who and where."""
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
        who = who or await self.gate(interaction)
        if who is None:
            return
        user, place = who
        original_id: int | None = None
        # Acknowledge first: everything after this may take longer than Discord's 3 seconds.
        if mode == "public":
            response = await interaction.response.defer(thinking=True)
            original_id = response.message_id if response is not None else None
        elif mode == "ephemeral":
            response = await interaction.response.defer(thinking=True, ephemeral=True)
            original_id = response.message_id if response is not None else None
        elif mode == "update":
            await interaction.response.defer()
        live = self.port.remember_interaction(interaction, user.id, place.channel, mode, original_id)
        inv = Invocation(
            user=user,
            place=place,
            command=command,
            text=text,
            options=dict(options or {}),
            attachments=list(attachments or []),
            interaction=InteractionInfo(
                token=interaction.token, expires_at=interaction.expires_at,
                application_id=str(interaction.application_id), id=str(interaction.id)),
            status_message=live.status_ref(place.channel) if mode == "public" else None,
            event_id=str(interaction.id),
        )
        await self.run(inv)

    async def run(self, inv: Invocation) -> None:
        try:
            await self.handle(inv, self.port)
        except Exception as exc:  # the core never raises; this guards the adapter's own wiring
            text = report_unexpected(log, exc, f"discord {inv.command}")
            with contextlib.suppress(Exception):
                await self.port.tell(inv.user, inv.place, text)

    async def report(self, interaction: discord.Interaction[Any], error: BaseException, context: str) -> None:
        text = report_unexpected(log, error, f"discord {context}")
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user about error; it is logged above")

    # ------------------------------------------------------------ slash commands

    async def video(self, interaction: discord.Interaction[Any], prompt: str, *,
                    image: discord.Attachment | None, end_image: discord.Attachment | None,
                    options: dict[str, Any], advanced: str | None) -> None:
        attachments = [to_attachment(a) for a in (image, end_image) if a is not None]
        await self.invoke(interaction, "video", text=join_text(prompt, advanced), options=options,
                          attachments=attachments)

    async def keyframes(self, interaction: discord.Interaction[Any], prompt: str,
                        images: list[discord.Attachment], options: dict[str, Any],
                        advanced: str | None) -> None:
        await self.invoke(interaction, "keyframes", text=join_text(prompt, advanced), options=options,
                          attachments=[to_attachment(a) for a in images])

    async def extend(self, interaction: discord.Interaction[Any], video: discord.Attachment,
                     prompt: str, options: dict[str, Any], advanced: str | None) -> None:
        await self.invoke(interaction, "extend", text=join_text(prompt, advanced), options=options,
                          attachments=[to_attachment(video)])

    async def private(self, interaction: discord.Interaction[Any], command: str, text: str = "",
                      options: dict[str, Any] | None = None) -> None:
        await self.invoke(interaction, command, text=text, options=options, mode="ephemeral")

    async def admin(self, interaction: discord.Interaction[Any], sub: str, text: str,
                    options: dict[str, Any]) -> None:
        who = await self.gate(interaction)
        if who is None:
            return
        if not who[0].is_admin:
            # default_permissions only hides the command; server admins can re-grant it to anyone.
            await interaction.response.send_message(admin_refusal(self.settings), ephemeral=True)
            return
        await self.invoke(interaction, "admin", text=text, options={"sub": sub, **options},
                          mode="ephemeral", who=who)

    # ------------------------------------------------------------ context menus

    async def animate_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await self._menu(interaction, message, kind="image", command="video", title="Animate image")

    async def extend_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await self._menu(interaction, message, kind="video", command="extend", title="Extend video")

    async def _menu(self, interaction: discord.Interaction[Any], message: discord.Message, *,
                    kind: AttachmentKind, command: str, title: str) -> None:
        who = await self.gate(interaction)
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
            options: dict[str, Any] = {}
            if modal.seconds is not None and modal.seconds.value.strip():
                try:
                    options["seconds"] = parse_seconds(modal.seconds.value)
                except ValueError:
                    await inner.response.send_message(
                        f"Seconds must be a number like 5, not {modal.seconds.value!r}.", ephemeral=True)
                    return
            if modal.aspect is not None and modal.aspect.value.strip():
                options["aspect"] = modal.aspect.value.strip()
            await self.invoke(inner, command, text=modal.prompt.value, options=options,
                              attachments=[attachment])

        await self.open_modal(interaction, PromptModal(title, submitted, ask_shape=True))

    async def open_modal(self, interaction: discord.Interaction[Any], modal: PromptModal) -> None:
        await interaction.response.send_modal(modal)
        # Lets tests (and metrics) await the moment the modal can be submitted.
        self.client.dispatch("ltx_modal_opened", modal)

    # ------------------------------------------------------------ buttons

    async def on_button(self, interaction: discord.Interaction[Any], job_id: int, kind: str) -> None:
        options = {"action": kind, "job_id": job_id}
        if kind in ("extend", "continue"):
            who = await self.gate(interaction)
            if who is None:
                return

            async def submitted(inner: discord.Interaction[Any], modal: PromptModal) -> None:
                await self.invoke(inner, "action", text=modal.prompt.value, options=options)

            title = f"{'Extend' if kind == 'extend' else 'Continue'} job #{job_id}"
            await self.open_modal(
                interaction, PromptModal(title, submitted, ask_shape=False, prompt_required=False))
            return
        # Re-roll makes a new job: its "thinking" message becomes the new status message.
        # Cancel and Delete change existing messages: acknowledge without a new one.
        await self.invoke(interaction, "action", options=options,
                          mode="public" if kind == "reroll" else "update")

    # ------------------------------------------------------------ mentions

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        if not any(u.id == me.id for u in message.mentions):
            return
        user = to_user(message.author, self.settings)
        # The guild may be missing from the cache (not yet streamed): the channel still knows it.
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        place = to_place(message.channel.id, guild_id, message.channel)
        why = refusal(self.settings, user, place, parent_id=parent_channel_id(message.channel))
        if why is not None and (parent := await self._uncached_parent(message.channel, place)):
            why = refusal(self.settings, user, place, parent_id=parent)
        if why is not None:
            await self.port.tell(user, place, why)
            return
        # The same leading words as the console and Slack: `@LTX extend more waves`, `@LTX quota`.
        command, text = leading_command(strip_mentions(message.content, me.id))
        attachments = [to_attachment(a) for a in message.attachments]
        if command in MEDIA_COMMANDS and not attachments and message.reference is not None:
            referenced = await self._referenced(message)
            if referenced is not None:
                attachments = [to_attachment(a) for a in referenced.attachments]
                if (not attachments and referenced.author.id != me.id
                        and not self.client.intents.message_content):
                    await self.port.tell(user, place, (
                        "I can't see the attachments of someone else's message from a reply "
                        "(that needs Discord's message content intent, which this bot doesn't use). "
                        "Right-click the message and use Apps → Animate image / Extend video instead."))
                    return
        inv = Invocation(
            user=user, place=place, command=command, text=text, attachments=attachments,
            reply_to=MessageRef(platform=PLATFORM, channel=str(message.channel.id), id=str(message.id)),
            event_id=str(message.id),
        )
        await self.run(inv)

    async def _uncached_parent(self, channel: Any, place: Place) -> int | None:
        """The parent of a thread the cache does not know yet (it arrives as a bare
        PartialMessageable), looked up with the bot token; None when it is not a thread."""
        if place.workspace is None or not isinstance(channel, discord.PartialMessageable):
            return None
        try:
            fetched = await self.client.fetch_channel(int(place.channel))
        except discord.HTTPException as exc:
            log.info("could not fetch channel %s (HTTP %s, code %s)", place.channel, exc.status, exc.code)
            return None
        return parent_channel_id(fetched)

    async def _referenced(self, message: discord.Message) -> discord.Message | None:
        ref = message.reference
        if ref is None or ref.message_id is None:
            return None
        if isinstance(ref.resolved, discord.Message):
            return ref.resolved
        # Not in the event (too old or not cached): fetch it with the bot token.
        channel_id = ref.channel_id or message.channel.id
        try:
            channel = self.client.get_partial_messageable(channel_id, guild_id=ref.guild_id)
            return await channel.fetch_message(ref.message_id)
        except discord.HTTPException as exc:
            log.info("could not fetch the replied-to message (HTTP %s, code %s)", exc.status, exc.code)
            return None


# ---------------------------------------------------------------- the client


class LtxTree(app_commands.CommandTree["LtxClient"]):
    async def on_error(self, interaction: discord.Interaction[LtxClient],
                       error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure | app_commands.TransformerError):
            text = "I couldn't read one of the options: " + (str(error) or type(error).__name__)
            with contextlib.suppress(discord.HTTPException):
                if interaction.response.is_done():
                    await interaction.followup.send(text, ephemeral=True)
                else:
                    await interaction.response.send_message(text, ephemeral=True)
            return
        original = getattr(error, "original", error)
        await interaction.client.frontend.report(interaction, original, "app command")


def intents_for(settings: Settings) -> discord.Intents:
    """Only what the bot uses. Mentions carry their content without the message content intent."""
    intents = discord.Intents.none()
    intents.guilds = True  # guild cache: roles by name, boost level (upload limit), channels
    intents.guild_messages = True  # messages that mention the bot
    intents.dm_messages = settings.discord.allow_dms
    # Only for replying to *other people's* images with a mention: without it Discord blanks
    # the attachments of messages that don't mention the bot.
    intents.message_content = settings.discord.message_content_intent
    return intents


class LtxClient(discord.Client):
    def __init__(self, settings: Settings, handle: Handle, *, port: DiscordPort | None = None,
                 sync_commands: bool = True, **kwargs: Any) -> None:
        super().__init__(intents=intents_for(settings),
                         allowed_mentions=discord.AllowedMentions.none(), **kwargs)
        self.settings = settings
        self.sync_commands = sync_commands
        self.port = port or DiscordPort(self, settings)
        self.frontend = DiscordFrontend(self, settings, handle, self.port)
        # Where the commands show up: servers, plus the bot's DMs when allow_dms (a guild install;
        # group DMs need a user install, which this bot does not offer).
        self.tree = LtxTree(self, allowed_contexts=app_commands.AppCommandContext(
            guild=True, dm_channel=settings.discord.allow_dms, private_channel=False))
        add_commands(self.tree, self.frontend)
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)
        if not self.sync_commands:
            return
        # Sync once here, never in on_ready (which runs again on every reconnect).
        guild_ids = self.settings.discord.dev_guild_ids
        try:
            if guild_ids:
                for gid in guild_ids:
                    guild = discord.Object(id=gid)
                    self.tree.copy_global_to(guild=guild)
                    self.synced += await self.tree.sync(guild=guild)
                log.info("commands synced to %d development guild(s)", len(guild_ids))
            else:
                self.synced = await self.tree.sync()
                log.info("%d global commands synced (may take up to an hour to show)", len(self.synced))
        except discord.HTTPException as exc:
            log.error("command sync failed (HTTP %s, code %s): was the bot invited with the "
                      "applications.commands scope?", exc.status, exc.code)

    async def on_message(self, message: discord.Message) -> None:
        await self.frontend.on_message(message)

    async def close(self) -> None:
        await self.port.close()
        await super().close()


def add_commands(tree: app_commands.CommandTree[Any], fe: DiscordFrontend) -> None:
    """The command set; built per client so a restarted client gets fresh objects."""

    @app_commands.command(name="video", description="Make a video from a prompt, optionally starting from an image")
    @app_commands.describe(
        prompt="What happens in the video",
        image="Start image (image-to-video)",
        end_image="End image (LTX-2)",
        model="Which LTX model",
        duration="Length in seconds",
        aspect_ratio="Aspect ratio",
        resolution="Resolution",
        seed="Seed for repeatable results",
        audio="Generate an audio track (LTX-2)",
        camera="Camera movement (LTX-2)",
        negative_prompt="What to avoid",
        advanced="More flags, e.g. --fps 24 --steps 30",
    )
    @app_commands.choices(
        model=[Choice(name=m, value=m) for m in MODEL_CHOICES],
        aspect_ratio=[Choice(name=a, value=a) for a in ASPECT_CHOICES],
        resolution=[Choice(name=r, value=r) for r in RESOLUTION_CHOICES],
        camera=[Choice(name=c, value=c) for c in CAMERA_CHOICES],
    )
    async def video(
        interaction: discord.Interaction[Any],
        prompt: Range[str, 1, 2000],
        image: discord.Attachment | None = None,
        end_image: discord.Attachment | None = None,
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
        await fe.video(interaction, prompt, image=image, end_image=end_image, options=options,
                       advanced=advanced)

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
        await fe.keyframes(interaction, prompt, images, options, advanced)

    @app_commands.command(name="extend", description="Continue a video clip")
    @app_commands.describe(video="The clip to extend", prompt="What happens next",
                           from_frame="Frame of the clip to continue from",
                           advanced="More flags, e.g. --seed 42")
    async def extend(
        interaction: discord.Interaction[Any],
        video: discord.Attachment,
        prompt: Range[str, 1, 2000],
        from_frame: Range[int, 0, 100000] | None = None,
        advanced: str | None = None,
    ) -> None:
        options: dict[str, Any] = {} if from_frame is None else {"start_frame": from_frame}
        await fe.extend(interaction, video, prompt, options, advanced)

    @app_commands.command(name="quota", description="Your credits left and when they reset")
    async def quota(interaction: discord.Interaction[Any]) -> None:
        await fe.private(interaction, "quota")

    @app_commands.command(name="jobs", description="Your recent jobs")
    async def jobs(interaction: discord.Interaction[Any]) -> None:
        await fe.private(interaction, "jobs")

    @app_commands.command(name="cancel", description="Cancel one of your jobs")
    @app_commands.describe(job="Job number (see /jobs)")
    async def cancel(interaction: discord.Interaction[Any], job: Range[int, 1, 2**53]) -> None:
        await fe.private(interaction, "cancel", str(job), {"job_id": job})

    @app_commands.command(name="ltx-help", description="How to use the LTX video bot")
    async def ltx_help(interaction: discord.Interaction[Any]) -> None:
        await fe.private(interaction, "help")

    admin = app_commands.Group(
        name="ltx-admin", description="Administer the LTX video bot",
        default_permissions=discord.Permissions(administrator=True), guild_only=True)

    @admin.command(name="grant", description="Give a user extra credits")
    async def grant(interaction: discord.Interaction[Any], user: discord.User,
                    credits: Range[int, -1_000_000, 1_000_000]) -> None:
        await fe.admin(interaction, "grant", "", {"user": f"{PLATFORM}:{user.id}", "credits": credits})

    @admin.command(name="tier", description="Put a user on a quota tier (none to clear)")
    async def tier(interaction: discord.Interaction[Any], user: discord.User, name: str) -> None:
        await fe.admin(interaction, "tier", "", {"user": f"{PLATFORM}:{user.id}", "tier": name})

    @admin.command(name="block", description="Stop a user from making videos")
    async def block(interaction: discord.Interaction[Any], user: discord.User) -> None:
        await fe.admin(interaction, "block", "", {"user": f"{PLATFORM}:{user.id}"})

    @admin.command(name="unblock", description="Let a blocked user make videos again")
    async def unblock(interaction: discord.Interaction[Any], user: discord.User) -> None:
        await fe.admin(interaction, "unblock", "", {"user": f"{PLATFORM}:{user.id}"})

    @admin.command(name="usage", description="Spending per user or per server")
    @app_commands.choices(scope=[Choice(name="users", value="users"),
                                 Choice(name="servers", value="workspaces")])
    async def usage(interaction: discord.Interaction[Any], scope: str = "users",
                    days: Range[int, 1, 366] = 30) -> None:
        await fe.admin(interaction, "usage", "", {"scope": scope, "days": days})

    @app_commands.context_menu(name="Animate image")
    async def animate_menu(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await fe.animate_menu(interaction, message)

    @app_commands.context_menu(name="Extend video")
    async def extend_menu(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await fe.extend_menu(interaction, message)

    commands: tuple[Any, ...] = (video, keyframes, extend, quota, jobs, cancel, ltx_help, admin,
                                 animate_menu, extend_menu)
    for command in commands:
        tree.add_command(command)


# ---------------------------------------------------------------- running


class DiscordRunner:
    """Owns the Discord client: `await start()` logs in, syncs commands and connects in the
    background; `await close()` disconnects.

    The port is registered with the app only once `login()` has finished: a registered port
    lets the job runner resume this platform's jobs at once, and delivering them needs
    discord.py's HTTP session and token, which exist only after login. Registering after
    `app.start()` is fine: jobs waiting for their platform resume when its port arrives."""

    def __init__(self, app: Any, settings: Settings, *, client: LtxClient | None = None) -> None:
        self.app = app
        self.settings = settings

        async def handle(inv: Invocation, port: ChatPort) -> None:
            await app.bot.handle(inv, port)

        self.client = client or LtxClient(settings, handle)
        self.port = self.client.port
        self.registered = False
        self._task: asyncio.Task[None] | None = None

    async def login(self) -> None:
        token = self.settings.discord.token
        if token is None or not token.get_secret_value():
            raise RuntimeError("Discord is not configured: set DISCORD_TOKEN (or discord.token).")
        apply_api_url(self.settings.discord.api_url)
        apply_gateway_url(self.settings.discord.gateway_url)
        await self.client.login(token.get_secret_value().strip())
        if not self.registered:
            self.app.register_port(self.port)
            self.registered = True

    async def start(self) -> None:
        await self.login()
        self._task = asyncio.create_task(self._connect(), name="discord-gateway")

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except discord.PrivilegedIntentsRequired:
            log.error("Discord refused the message content intent: enable it for the bot in the "
                      "Developer Portal or set discord.message_content_intent = false.")
        except Exception as exc:
            report_unexpected(log, exc, "the Discord gateway connection")

    async def close(self) -> None:
        await self.client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def apply_api_url(api_url: str | None) -> None:
    """Point discord.py (REST and webhooks) at a rate-limit proxy, e.g. http://proxy:8080/api/v10."""
    if api_url:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"discord.api_url must be an http(s) URL, not {api_url!r}")
        discord.http.Route.BASE = api_url.rstrip("/")


def apply_gateway_url(gateway_url: str | None) -> None:
    """Point discord.py's gateway WebSocket at a gateway proxy, e.g. ws://gateway-proxy:7878.

    discord.py 2.x's Client connects to `DiscordWebSocket.DEFAULT_GATEWAY` (it does not ask
    GET /gateway/bot, so api_url alone never moves it) and falls back to it whenever a session
    is invalidated; resumes go to the `resume_gateway_url` that READY names, which a gateway
    proxy rewrites to itself."""
    if gateway_url:
        parts = urlsplit(gateway_url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError(f"discord.gateway_url must be a ws(s) URL, not {gateway_url!r}")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


async def start_discord(app: Any, settings: Settings) -> DiscordRunner:
    runner = DiscordRunner(app, settings)
    await runner.start()
    return runner

