"""What the Discord port keeps about its messages: a live interaction it may still answer
through, the reference a card's message carries between processes (reply target and
upload limit included), and the refusal of a file too large for the channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import discord

from bot.errors import MediaError
from bot.ports import MessageRef

PLATFORM = "discord"
# Stop using a token a little before Discord does: a request in flight at the
# 15-minute mark would fail and cost a retry.
TOKEN_MARGIN_SECONDS = 30.0
DeferMode = Literal["public", "ephemeral", "update", "none"]


class UploadTooLarge(MediaError):
    """The file is larger than Discord accepts here; the runner falls back to a poster + link."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The video is {size / 1_048_576:.1f} MB; this Discord server accepts uploads up to "
            f"{limit / 1_048_576:.1f} MB."
        )
        self.size = size
        self.limit = limit


@dataclass
class LiveInteraction:
    """An interaction the port may still answer through (token valid 15 minutes)."""

    application_id: int
    token: str = field(repr=False)
    interaction_id: int
    user_id: str
    channel: str
    expires_at: float  # UNIX seconds
    mode: DeferMode
    # A "thinking" defer shows a loading message until the original response is
    # edited; until then Discord turns the first followup into that response.
    resolved: bool = False
    original_id: str | None = None
    dead: bool = False
    upload_limit: int | None = None  # what the interaction said its channel accepts

    def usable(self, now: float) -> bool:
        return not self.dead and now < self.expires_at - TOKEN_MARGIN_SECONDS

    def status_ref(self, channel: str) -> MessageRef:
        return MessageRef(
            platform=PLATFORM,
            channel=channel,
            id=self.original_id or "@original",
            extra={
                "token": self.token,
                "application_id": str(self.application_id),
                "interaction_id": str(self.interaction_id),
                "expires_at": self.expires_at,
                "original": True,
                # Stored with the job, so the process that finishes it knows the limit too.
                **({"upload_limit": self.upload_limit} if self.upload_limit else {}),
            },
        )



def reply_reference(channel: str, message_id: str | None) -> dict[str, Any]:
    """`message_reference` for a reply to `message_id` in `channel` ({} for none). With
    `fail_if_not_exists: false` Discord posts a plain message when the user has deleted
    theirs, instead of refusing the card or the video."""
    if not message_id:
        return {}
    reference = discord.MessageReference(message_id=int(message_id), channel_id=int(channel),
                                         fail_if_not_exists=False)
    # The payload takes the reference as a dict, as discord.py's own Messageable.send passes it.
    return {"message_reference": reference.to_dict()}


def keep_reply(old: MessageRef, new: MessageRef) -> MessageRef:
    """An edit may come back as a bare reference (or a re-post); keep what the card replies
    to and its upload limit, so a job resumed elsewhere delivers as a reply, at the right size."""
    kept = {key: old.extra[key] for key in ("reply_to", "upload_limit")
            if old.extra.get(key) and key not in new.extra}
    if not kept:
        return new
    return MessageRef(platform=new.platform, channel=new.channel, id=new.id,
                      extra={**new.extra, **kept})
