"""The ChatPort for Slack: status cards as Block Kit messages, videos via files_upload_v2.

The port does not pace edits: the core's one throttle (bot.throttle) sends at
most one `chat.update` per `traits.min_edit_seconds` and always the final card.
A message that can no longer be edited is posted anew.

Delivery: `files_upload_v2` cannot attach buttons, so the video goes up with
the summary as `initial_comment` and, when the card has actions, a small
message with the buttons follows in the same thread. The returned ref names
that message (`id` = its ts) and carries the uploaded file ids in
`extra["files"]`; `delete` removes both. Without actions the ref's id is the
file id and `extra["kind"] == "file"`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack_notify import notify_admins
from adapters.slack_render import (
    actions_block,
    card_blocks,
    fallback_text,
    note_text,
    summary_text,
)
from adapters.slack_translate import PLATFORM, error_code
from adapters.slack_workspaces import Workspaces
from bot.config import SlackSettings
from bot.errors import UserError
from bot.ports import MessageRef, Place, PlatformTraits, StatusCard, User

log = logging.getLogger(__name__)

# Errors after which a message can no longer be edited: post a fresh one instead.
GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed",
                  "msg_too_long"})
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
NOT_A_MEMBER_TEXT = ("I can't post in this channel yet. Invite me first (`/invite @LTX`), "
                     "then try again.")
ALREADY_GONE = frozenset({"message_not_found", "file_not_found", "file_deleted"})
# Response URLs are valid for 30 minutes after the command; keep a margin.
RESPONSE_URL_TTL = 25 * 60
# chat.update is Tier 3 (about 50 a minute): at most one edit per message every 3 s keeps
# a couple of running jobs inside it (429s beyond that are waited out by the retry handler).
# The same floor as Discord's, so a card ticks at the same pace on both; config may only
# make it slower.
SLACK_MIN_EDIT_INTERVAL = 3.0


class SlackPort:
    """ChatPort for Slack through the Web API (`client`; `upload_client` for files)."""

    platform = PLATFORM

    def __init__(
        self,
        client: AsyncWebClient,
        settings: SlackSettings,
        *,
        upload_client: AsyncWebClient | None = None,
        edit_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        workspaces: Workspaces | None = None,
    ) -> None:
        """`edit_interval` replaces Slack's floor between edits of one message; `workspaces`
        picks each workspace's clients when the app is installed in many (OAuth)."""
        self.client = client
        # A second client because files_upload_v2 uses the client's own timeout for the
        # upload POST; progress edits must not inherit a five-minute timeout.
        self.upload_client = upload_client or client
        self.settings = settings
        self.traits = PlatformTraits(
            command_prefix=settings.command.strip() + " ", workspace_word="workspace",
            admin_setting="[slack] admin_users",
            mention_pattern=r"<@(?P<id>[A-Z0-9]+)(\|[^>]*)?>", markup="mrkdwn",
            min_edit_seconds=SLACK_MIN_EDIT_INTERVAL if edit_interval is None else edit_interval,
        )
        self.clock = clock
        self._response_urls: dict[tuple[str, str], tuple[str, float]] = {}
        self.workspaces = workspaces if workspaces is not None and workspaces.many else None

    async def _clients(self, team: str | None) -> tuple[AsyncWebClient, AsyncWebClient]:
        """The clients holding the bot token of workspace `team`."""
        if self.workspaces is None:
            return self.client, self.upload_client
        found = await self.workspaces.for_team(team)
        return found.client, found.upload_client

    def _team_extra(self, place: Place) -> dict[str, Any]:
        # With many workspaces a reference must say whose token edits or deletes it later
        # (in whichever process finishes the job).
        return {"team": place.workspace} if self.workspaces is not None and place.workspace else {}

    # ------------------------------------------------------------ status message

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        client, _ = await self._clients(place.workspace)
        try:
            resp = await client.chat_postMessage(
                channel=place.channel, thread_ts=place.thread, text=fallback_text(card),
                blocks=card_blocks(card), unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            if error_code(exc) in NOT_A_MEMBER:
                raise UserError(NOT_A_MEMBER_TEXT) from None
            raise
        ts = str(resp["ts"])
        channel = str(resp.get("channel") or place.channel)
        extra = {"thread_ts": place.thread} if place.thread else {}
        return MessageRef(PLATFORM, channel, ts, {**extra, **self._team_extra(place)})

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        if ref.extra.get("kind") == "file":
            return ref  # an uploaded file has no editable card
        team = ref.extra.get("team")
        client, _ = await self._clients(team)
        try:
            await client.chat_update(channel=ref.channel, ts=ref.id,
                                          text=fallback_text(card), blocks=card_blocks(card))
        except SlackApiError as exc:
            if error_code(exc) not in GONE:
                raise
            # The message was deleted or can't be edited any more: show the card anew.
            return await self.post(Place(PLATFORM, ref.channel, team,
                                         thread=ref.extra.get("thread_ts")), card)
        return ref

    async def close(self) -> None:
        """Nothing to release: the port queues no edits (the core paces them)."""

    # ------------------------------------------------------------ delivery

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send_file(place, path, card)

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send_file(place, path, card)

    async def _send_file(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        client, upload_client = await self._clients(place.workspace)
        resp = await upload_client.files_upload_v2(
            file=str(path), filename=path.name, title=card.title[:250] or path.name,
            channel=place.channel, thread_ts=place.thread, initial_comment=summary_text(card))
        files = resp.get("files") or []
        file_ids = [str(f["id"]) for f in files if isinstance(f, dict) and f.get("id")]
        extra: dict[str, Any] = {"files": file_ids, "filename": path.name,
                                 **self._team_extra(place)}
        if place.thread:
            extra["thread_ts"] = place.thread
        block = actions_block(card.actions, block_id=f"ltx_result_{card.job_id}"
                              if card.job_id else None)
        if block is None:
            return MessageRef(PLATFORM, place.channel, file_ids[0] if file_ids else "",
                              {**extra, "kind": "file"})
        label = f"Job #{card.job_id}" if card.job_id else "What next?"
        msg = await client.chat_postMessage(
            channel=place.channel, thread_ts=place.thread, text=label,
            blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": label}]}, block])
        return MessageRef(PLATFORM, str(msg.get("channel") or place.channel), str(msg["ts"]),
                          {**extra, "kind": "buttons"})

    async def send_private_file(self, user: User, place: Place, filename: str, data: bytes,
                                text: str) -> None:
        """`my-data`: the file in the user's direct messages with the bot, which only they see
        (an ephemeral message cannot carry a file)."""
        try:
            opened = await self.client.conversations_open(users=user.id)
        except SlackApiError as exc:
            log.warning("my-data: cannot open a DM (%s); the app needs the im:write scope",
                        error_code(exc))
            raise UserError("I could not open a direct message with you to send the file; "
                            "ask the bot's operator (the Slack app needs im:write).") from None
        channel = str(opened["channel"]["id"])
        await self.upload_client.files_upload_v2(
            content=data, filename=filename, title=filename, channel=channel,
            initial_comment=text)
        if place.channel != channel:
            await self.tell(user, place, "I sent you the file in a direct message.")

    async def notify_admins(self, text: str) -> int:
        return await notify_admins(self, text)  # the fal account, budget alerts

    async def delete(self, ref: MessageRef) -> None:
        """Delete the card or the result (its file(s) and its button message). Idempotent."""
        client, _ = await self._clients(ref.extra.get("team"))
        for file_id in ref.extra.get("files") or []:
            await self._ignore_gone(client.files_delete(file=file_id))
        if ref.extra.get("kind") != "file" and ref.id:
            await self._ignore_gone(client.chat_delete(channel=ref.channel, ts=ref.id))

    async def _ignore_gone(self, call: Any) -> None:
        try:
            await call
        except SlackApiError as exc:
            if error_code(exc) not in ALREADY_GONE:
                raise

    def upload_limit(self, place: Place) -> int:
        return self.settings.upload_limit_bytes

    # ------------------------------------------------------------ notes

    def remember_response_url(self, user_id: str, channel: str, url: str) -> None:
        """Slash commands and interactions carry a response_url that works where
        chat.postEphemeral does not (DMs, channels the bot is not in)."""
        now = self.clock()
        self._response_urls[(user_id, channel)] = (url, now + RESPONSE_URL_TTL)
        for key, (_, expires) in list(self._response_urls.items()):
            if expires < now:
                del self._response_urls[key]

    async def tell(self, user: User, place: Place, text: str) -> None:
        await self._privately(user, place, note_text(text), None)

    async def post_private(self, user: User, place: Place, card: StatusCard) -> None:
        """A card with buttons only `user` sees (the forget-me confirmation): an ephemeral
        message, as `tell` sends a note. A press of its button reaches the app as any
        block_actions does (with a response_url; the message itself is not in it)."""
        await self._privately(user, place, fallback_text(card), card_blocks(card))

    async def drop_ephemeral(self, response_url: str) -> None:
        """Delete the ephemeral message a press came from (the forget-me card: its button
        has done its one job, and left there it would invite a second press)."""
        try:
            result = await AsyncWebhookClient(response_url, timeout=10).send_dict(
                {"delete_original": True})
            if result.status_code != 200:
                log.info("the pressed card was not deleted (HTTP %s)", result.status_code)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("the pressed card was not deleted (%s)", type(exc).__name__)

    async def _privately(self, user: User, place: Place, text: str,
                         blocks: list[dict[str, Any]] | None) -> None:
        """chat.postEphemeral; where Slack refuses it, the user's response URL here, and
        without one, a DM from the app."""
        client, _ = await self._clients(place.workspace)
        try:
            await client.chat_postEphemeral(channel=place.channel, user=user.id, text=text,
                                            blocks=blocks, thread_ts=place.thread)
            return
        except SlackApiError as exc:
            log.info("postEphemeral refused (%s); trying the response URL", error_code(exc))
            failure: Exception = exc
        entry = self._response_urls.get((user.id, place.channel))
        if entry is not None and entry[1] > self.clock():
            webhook = AsyncWebhookClient(entry[0], timeout=10)
            result = await webhook.send(text=text, blocks=blocks, response_type="ephemeral",
                                        replace_original=False)
            if result.status_code == 200:
                return
        elif entry is None:
            # No response URL here: it expired, or another process took the command (a job
            # adopted from it; the URL lived in that process's memory). A DM from the app
            # still reaches the user privately.
            try:
                await client.chat_postMessage(channel=user.id, text=text, blocks=blocks)
                return
            except SlackApiError as exc:
                log.info("DM to the user refused too (%s)", error_code(exc))
        raise failure
