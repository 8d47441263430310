"""The Discord ChatPort: posts, edits and uploads through discord.py's REST layer.

A job's status message is usually the interaction's original response (the
"thinking" message of a deferred slash command). While the interaction token
is valid (15 minutes) it is edited through the interaction webhook, which
needs no channel permissions; after that (or when Discord answers 401/50027)
the port edits the same message with the bot token, and when even that is not
possible it posts a fresh channel message and returns its reference.

A mention is answered in the channel, as a reply to the user's message: the
mention handler names that message (`replying_to`), the job's card is posted
with a `message_reference` to it, and the finished video replies to it too. The
reference rides in the card's stored `MessageRef`, so a job resumed after a
restart still delivers as a reply. `fail_if_not_exists: false` posts the card
anyway when the user deleted their message meanwhile.

The port does not pace edits: the core's one throttle (bot.throttle) sends at
most one edit per `traits.min_edit_seconds` and always the final card. Rate
limits (429) are retried by discord.py; a final card that still meets one is
retried here for up to two minutes, so a final state is never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import discord
from discord.http import HTTPClient, MultipartParameters, handle_message_parameters
from discord.webhook.async_ import async_context

from adapters.discord_notify import notify_admins
from adapters.discord_private import send_private_card, send_private_file
from adapters.discord_refs import (
    PLATFORM,
    DeferMode,
    LiveInteraction,
    UploadTooLarge,
    keep_reply,
    reply_reference,
)
from adapters.discord_render import CONTENT_LIMIT, render
from bot.config import Settings
from bot.ports import MessageRef, Place, PlatformTraits, StatusCard, User

log = logging.getLogger(__name__)

# Discord's rate limit on editing one message, roughly: the core paces a card's edits to it.
DISCORD_MIN_EDIT_INTERVAL = 3.0
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
TOO_LARGE = 40005
FINAL_RETRY_SECONDS = 120.0

T = TypeVar("T")
# The message the command being handled answers (a mention), for the card `post` sends.
# A context variable: the core posts a job's first card from the handler's own task,
# and concurrent mentions in one channel must each reply to their own message.
_REPLYING_TO: contextvars.ContextVar[MessageRef | None] = contextvars.ContextVar(
    "discord_replying_to", default=None)


class DiscordPort:
    """ChatPort for Discord. Needs a logged-in `discord.Client` (its HTTP session and token)."""

    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        settings: Settings,
        *,
        min_edit_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`min_edit_interval` replaces Discord's floor between edits of one message (tests)."""
        self.client = client
        self.settings = settings
        self.traits = PlatformTraits(
            command_prefix="/", workspace_word="server",
            admin_setting="[discord] admin_users or admin_roles",
            mention_pattern=r"<@!?(?P<id>\d+)>", markup="markdown",
            min_edit_seconds=(DISCORD_MIN_EDIT_INTERVAL if min_edit_interval is None
                              else min_edit_interval),
        )
        self._clock = clock
        self._wall = wall
        self._aliases: dict[str, MessageRef] = {}
        self._live: dict[tuple[str, str], LiveInteraction] = {}
        self._live_by_token: dict[str, LiveInteraction] = {}
        self._limits: dict[str, int] = {}
        self._job_refs: dict[int, MessageRef] = {}
        self._replies: dict[int, str] = {}  # job id -> id of the message its answers reply to

    # ------------------------------------------------------------ bookkeeping

    def remember_interaction(
        self,
        interaction: discord.Interaction[Any],
        user_id: str,
        channel: str,
        mode: DeferMode,
        original_id: int | None = None,
    ) -> LiveInteraction:
        """Record an interaction the adapter deferred: tell() and the status card ride on it."""
        live = LiveInteraction(
            application_id=interaction.application_id,
            token=interaction.token,
            interaction_id=interaction.id,
            user_id=user_id,
            channel=channel,
            expires_at=interaction.expires_at.timestamp(),
            mode=mode,
            resolved=mode in ("update", "none"),
            original_id=str(original_id) if original_id else None,
            upload_limit=interaction.filesize_limit,
        )
        self._live[(user_id, channel)] = live
        self._live_by_token[live.token] = live
        self.note_upload_limit(channel, interaction.filesize_limit)
        self._prune()
        return live

    @contextlib.contextmanager
    def replying_to(self, message: MessageRef | None) -> Iterator[None]:
        """While the core handles a command, cards it posts reply to `message`."""
        token = _REPLYING_TO.set(message)
        try:
            yield
        finally:
            _REPLYING_TO.reset(token)

    def note_upload_limit(self, channel: str, limit: int) -> None:
        """Every interaction carries the real limit for its channel (boosts change it)."""
        self._limits[channel] = limit

    def _learn(self, ref: MessageRef) -> None:
        """An adopted job brings its channel's upload limit in its card's reference (this
        process may have seen no interaction there, nor the guild on another shard)."""
        limit = ref.extra.get("upload_limit")
        if isinstance(limit, int) and limit > 0:
            self._limits.setdefault(ref.channel, limit)

    def _prune(self) -> None:
        now = self._wall()
        for key, live in list(self._live.items()):
            if now >= live.expires_at:
                del self._live[key]
        for token, live in list(self._live_by_token.items()):
            if now >= live.expires_at:
                del self._live_by_token[token]

    def live_for(self, user_id: str, channel: str) -> LiveInteraction | None:
        live = self._live.get((user_id, channel))
        if live is not None and live.usable(self._wall()):
            return live
        return None

    def _live_of(self, ref: MessageRef) -> LiveInteraction | None:
        """The interaction a reference rides on; rebuilt from `extra` after a restart."""
        token = ref.extra.get("token")
        if not token:
            return None
        live = self._live_by_token.get(token)
        if live is None:
            try:
                live = LiveInteraction(
                    application_id=int(ref.extra["application_id"]),
                    token=str(token),
                    interaction_id=int(ref.extra.get("interaction_id") or 0),
                    user_id="",
                    channel=ref.channel,
                    expires_at=float(ref.extra["expires_at"]),
                    mode="public",
                    resolved=True,  # a stored reference was already used for a card
                    original_id=None if ref.id == "@original" else ref.id,
                )
            except (KeyError, TypeError, ValueError):
                return None
            self._live_by_token[live.token] = live
        return live

    @staticmethod
    def _key(ref: MessageRef) -> str:
        token = ref.extra.get("token")
        if ref.extra.get("original") and token:
            # The original response may be known as "@original" or by its id.
            return f"original:{ref.extra.get('interaction_id') or token[-12:]}"
        return f"{ref.channel}:{ref.id}"

    def _current(self, ref: MessageRef) -> MessageRef:
        seen: set[str] = set()
        key = self._key(ref)
        while key in self._aliases and key not in seen:
            seen.add(key)
            ref = self._aliases[key]
            key = self._key(ref)
        return ref

    @property
    def http(self) -> HTTPClient:
        return self.client.http

    def _session(self) -> aiohttp.ClientSession:
        # discord.py keeps the session private; Interaction itself reads it the same way.
        session: aiohttp.ClientSession = self.http._HTTPClient__session  # type: ignore[attr-defined]
        return session

    async def _webhook(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        # The webhook adapter is typed as returning models; it really returns the JSON payload.
        http = self.http
        return await call(*args, session=self._session(), proxy=http.proxy,
                          proxy_auth=http.proxy_auth, **kwargs)

    # ------------------------------------------------------------ ChatPort

    def upload_limit(self, place: Place) -> int:
        """What the last interaction here said, else the guild's boost level, else the config."""
        if place.channel in self._limits:
            return self._limits[place.channel]
        if place.workspace and place.workspace.isdigit():
            guild = self.client.get_guild(int(place.workspace))
            if guild is not None:
                return guild.filesize_limit
        return self.settings.discord.default_upload_limit_bytes

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        rendered = render(card)
        answering = _REPLYING_TO.get()
        reply = answering.id if answering is not None and answering.channel == place.channel else None
        params = handle_message_parameters(embed=rendered.embed, view=rendered.view,
                                           allowed_mentions=discord.AllowedMentions.none(),
                                           **reply_reference(place.channel, reply))
        data = await self._retrying(lambda: self.http.send_message(int(place.channel), params=params),
                                    final=True)
        ref = MessageRef(platform=PLATFORM, channel=str(data["channel_id"]), id=str(data["id"]),
                         extra={"reply_to": reply} if reply else {})
        self._note_job(card, ref)
        return ref

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        """Edit the message (or its re-post: an old reference follows it). A progress edit
        that fails raises (the core tries its newest card again); a final one is retried."""
        self._learn(ref)
        old = self._current(ref)
        new_ref = keep_reply(old, await self._retrying(lambda: self._send_edit(old, card),
                                                        final=card.final))
        if self._key(new_ref) != self._key(old):
            self._aliases[self._key(old)] = new_ref
        self._note_job(card, new_ref)
        return new_ref

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._upload(place, path, card)

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._upload(place, path, card)

    async def delete(self, ref: MessageRef) -> None:
        ref = self._current(ref)
        live = self._live_of(ref)
        adapter = async_context.get()
        if live is not None and live.usable(self._wall()):
            try:
                if ref.extra.get("original"):
                    await self._webhook(adapter.delete_original_interaction_response,
                                        live.application_id, live.token)
                else:
                    await self._webhook(adapter.delete_webhook_message, live.application_id,
                                        live.token, int(ref.id))
                return
            except discord.NotFound:
                return
            except discord.HTTPException as exc:
                if not self._token_failed(exc, live):
                    raise
        if not ref.id.isdigit():
            log.warning("cannot delete an interaction response whose token expired and id is unknown")
            return
        with contextlib.suppress(discord.NotFound):
            await self.http.delete_message(int(ref.channel), int(ref.id))

    async def tell(self, user: User, place: Place, text: str) -> None:
        text = text if len(text) <= CONTENT_LIMIT else text[: CONTENT_LIMIT - 1] + "…"
        live = self.live_for(user.id, place.channel)
        if live is not None:
            try:
                await self._tell_interaction(live, text)
                return
            except discord.HTTPException as exc:
                if not self._token_failed(exc, live):
                    log.warning("ephemeral note failed (HTTP %s, code %s); sending it another way",
                                exc.status, exc.code)
        await self._tell_elsewhere(user, place, text)

    async def send_private_file(self, user: User, place: Place, filename: str, data: bytes,
                                text: str) -> None:
        await send_private_file(self, user, place, filename, data, text)  # my-data

    async def notify_admins(self, text: str) -> int:
        return await notify_admins(self, text)  # the fal account, budget alerts

    async def post_private(self, user: User, place: Place, card: StatusCard) -> None:
        await send_private_card(self, user, place, card)  # the forget-me confirmation

    # ------------------------------------------------------------ helpers: notes

    async def _tell_interaction(self, live: LiveInteraction, text: str) -> None:
        adapter = async_context.get()
        mentions = discord.AllowedMentions.none()
        if live.mode == "ephemeral" and not live.resolved:
            # The deferred (already ephemeral) loading message becomes the note.
            params = handle_message_parameters(content=text, allowed_mentions=mentions)
            await self._webhook(adapter.edit_original_interaction_response, live.application_id,
                                live.token, payload=params.payload)
            live.resolved = True
            return
        if live.mode == "public" and not live.resolved:
            # A first followup would *become* the public loading message (Discord keeps the
            # defer's visibility). Resolve the loading state, send the private note, then
            # remove the public placeholder so only the user sees what went wrong.
            params = handle_message_parameters(content="…", allowed_mentions=mentions)
            await self._webhook(adapter.edit_original_interaction_response, live.application_id,
                                live.token, payload=params.payload)
            live.resolved = True
            await self._followup(live, text, ephemeral=True)
            with contextlib.suppress(discord.HTTPException):
                await self._webhook(adapter.delete_original_interaction_response,
                                    live.application_id, live.token)
            return
        await self._followup(live, text, ephemeral=True)

    async def _followup(self, live: LiveInteraction, text: str, *, ephemeral: bool) -> dict[str, Any]:
        adapter = async_context.get()
        params = handle_message_parameters(
            content=text, flags=discord.MessageFlags(ephemeral=ephemeral),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        data: dict[str, Any] = await self._webhook(adapter.execute_webhook, live.application_id,
                                                   live.token, payload=params.payload, wait=True)
        return data

    async def _tell_elsewhere(self, user: User, place: Place, text: str) -> None:
        """No live interaction: a DM keeps it private; a closed DM falls back to a mention."""
        if place.workspace is None:
            await self.http.send_message(int(place.channel), params=handle_message_parameters(
                content=text, allowed_mentions=discord.AllowedMentions.none()))
            return
        try:
            dm = await self.http.start_private_message(int(user.id))
            await self.http.send_message(int(dm["id"]), params=handle_message_parameters(
                content=text, allowed_mentions=discord.AllowedMentions.none()))
            return
        except discord.HTTPException as exc:
            log.info("DM to a user failed (HTTP %s, code %s); mentioning them in the channel",
                     exc.status, exc.code)
        content = f"<@{user.id}> {text}"[:CONTENT_LIMIT]
        await self.http.send_message(int(place.channel), params=handle_message_parameters(
            content=content,
            allowed_mentions=discord.AllowedMentions(users=[discord.Object(int(user.id))],
                                                     everyone=False, roles=False)))

    # ------------------------------------------------------------ helpers: edits

    def _note_job(self, card: StatusCard, ref: MessageRef) -> None:
        if card.job_id is not None:
            self._job_refs[card.job_id] = ref
            if ref.extra.get("reply_to"):
                self._replies[card.job_id] = str(ref.extra["reply_to"])

    async def _retrying(self, send: Callable[[], Awaitable[T]], *, final: bool) -> T:
        """discord.py already retried 429s five times; a final state deserves more patience."""
        deadline = self._clock() + (FINAL_RETRY_SECONDS if final else 0.0)
        delay = 0.25
        while True:
            try:
                return await send()
            except discord.HTTPException as exc:
                if not (final and _retryable(exc)) or self._clock() + delay > deadline:
                    raise
                log.warning("Discord answered HTTP %s; retrying a final update in %.2fs",
                            exc.status, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _token_failed(self, exc: discord.HTTPException, live: LiveInteraction) -> bool:
        """401/50027 (expired) or an unknown webhook: stop using this token."""
        if exc.status == 401 or exc.code in (INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK):
            live.dead = True
            return True
        return False

    async def _send_edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        rendered = render(card)
        params = handle_message_parameters(content=None, embed=rendered.embed, view=rendered.view,
                                           allowed_mentions=discord.AllowedMentions.none())
        live = self._live_of(ref)
        if live is not None and live.usable(self._wall()):
            try:
                data = await self._webhook_edit(live, ref, params)
            except discord.NotFound as exc:
                if exc.code == UNKNOWN_MESSAGE:
                    return await self._repost(ref, params, card)
                if not self._token_failed(exc, live):
                    raise
            except discord.HTTPException as exc:
                if not self._token_failed(exc, live):
                    raise
            else:
                if ref.extra.get("original"):
                    live.resolved = True
                    live.original_id = str(data["id"])
                extra = dict(ref.extra)
                return MessageRef(platform=PLATFORM, channel=str(data.get("channel_id") or ref.channel),
                                  id=str(data["id"]), extra=extra)
        if ref.id.isdigit():
            try:
                edited = await self.http.edit_message(int(ref.channel), int(ref.id), params=params)
            except (discord.NotFound, discord.Forbidden) as exc:
                log.info("cannot edit message with the bot token (HTTP %s, code %s); posting anew",
                         exc.status, exc.code)
            else:
                return MessageRef(platform=PLATFORM, channel=str(edited["channel_id"]), id=str(edited["id"]))
        return await self._repost(ref, params, card)

    async def _webhook_edit(
        self, live: LiveInteraction, ref: MessageRef, params: MultipartParameters
    ) -> dict[str, Any]:
        adapter = async_context.get()
        if ref.extra.get("original"):
            data: dict[str, Any] = await self._webhook(
                adapter.edit_original_interaction_response, live.application_id, live.token,
                payload=params.payload, multipart=params.multipart, files=params.files)
        else:
            data = await self._webhook(
                adapter.edit_webhook_message, live.application_id, live.token, int(ref.id),
                payload=params.payload, multipart=params.multipart, files=params.files)
        return data

    async def _repost(self, ref: MessageRef, params: MultipartParameters, card: StatusCard) -> MessageRef:
        data = await self.http.send_message(int(ref.channel), params=params)
        new_ref = MessageRef(platform=PLATFORM, channel=str(data["channel_id"]), id=str(data["id"]))
        log.info("status message of job %s re-posted as a channel message", card.job_id)
        return new_ref

    # ------------------------------------------------------------ helpers: uploads

    async def _upload(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        limit = self.upload_limit(place)
        if size > limit:
            # Never send what Discord will refuse: a 413 costs the whole upload.
            raise UploadTooLarge(size, limit)
        rendered = render(card)
        # Interaction followups answer the command already; a channel message replies to
        # the message its job answers (a mention), as the card did.
        reply = self._replies.get(card.job_id) if card.job_id is not None else None

        def params(*, channel: bool = False) -> MultipartParameters:
            # A fresh File per attempt: a retried request must re-read from the start.
            return handle_message_parameters(
                embed=rendered.embed, view=rendered.view, file=discord.File(path, filename=path.name),
                allowed_mentions=discord.AllowedMentions.none(),
                **reply_reference(place.channel, reply if channel else None))

        live = self._upload_interaction(place, card)
        try:
            if live is not None:
                try:
                    data = await self._retrying(lambda: self._followup_file(live, params()), final=True)
                    ref = MessageRef(platform=PLATFORM, channel=str(data.get("channel_id") or place.channel),
                                     id=str(data["id"]), extra=self._followup_extra(live))
                    self._note_job(card, ref)
                    return ref
                except discord.HTTPException as exc:
                    if exc.status == 413 or exc.code == TOO_LARGE or not self._token_failed(exc, live):
                        raise
            data = await self._retrying(
                self._channel_file(place, partial(params, channel=True)), final=True)
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == TOO_LARGE:
                self._limits[place.channel] = min(limit, size - 1)
                raise UploadTooLarge(size, limit) from None
            raise
        ref = MessageRef(platform=PLATFORM, channel=str(data["channel_id"]), id=str(data["id"]))
        self._note_job(card, ref)
        return ref

    def _channel_file(
        self, place: Place, params: Callable[[], MultipartParameters]
    ) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def send() -> dict[str, Any]:
            with params() as p:
                data: dict[str, Any] = await self.http.send_message(  # type: ignore[assignment]
                    int(place.channel), params=p)
                return data
        return send

    async def _followup_file(self, live: LiveInteraction, params: MultipartParameters) -> dict[str, Any]:
        adapter = async_context.get()
        with params as p:
            data: dict[str, Any] = await self._webhook(
                adapter.execute_webhook, live.application_id, live.token,
                payload=p.payload, multipart=p.multipart, files=p.files, wait=True)
            return data

    def _upload_interaction(self, place: Place, card: StatusCard) -> LiveInteraction | None:
        """The job's interaction, when its token is good for a while: followups need no channel
        permissions. Only once the loading message is resolved, or the upload would replace it."""
        if card.job_id is None or card.job_id not in self._job_refs:
            return None
        ref = self._current(self._job_refs[card.job_id])
        live = self._live_of(ref)
        if live is None or not live.usable(self._wall()) or not live.resolved:
            return None
        if ref.channel != place.channel:
            return None
        return live

    @staticmethod
    def _followup_extra(live: LiveInteraction) -> dict[str, Any]:
        return {"token": live.token, "application_id": str(live.application_id),
                "interaction_id": str(live.interaction_id), "expires_at": live.expires_at}

    async def close(self) -> None:
        """Nothing to release: the port queues no edits (the core paces them)."""


def _retryable(exc: discord.HTTPException) -> bool:
    return exc.status == 429 or exc.status >= 500
