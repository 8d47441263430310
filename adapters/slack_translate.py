"""Slack payloads -> neutral Invocations. Pure functions, no I/O.

Each function takes a payload in Slack's documented shape (slash command form,
Events API `event`, interactivity `payload`) and returns the neutral pieces
the core speaks. Anything needing the Web API (files.info, views.open) lives
in `slack_app`; these stay trivially testable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from bot.config import SlackSettings
from bot.grammar import clean_text, leading_command
from bot.media import kind_from_hint
from bot.ports import Attachment, Credential, Place, User

PLATFORM = "slack"
MODAL_WORDS = frozenset({"animate"})
SLACK_HOSTS = ("slack.com",)
EXTEND_FLAG = re.compile(r"(^|\s)--extend(?=\s|$)")


def to_user(user_id: str, name: str | None, settings: SlackSettings) -> User:
    admins = set(settings.admin_users)
    is_admin = user_id in admins or f"{PLATFORM}:{user_id}" in admins
    # The display name is shown on cards ("Cancelled by ..."): no control or bidi characters.
    return User(platform=PLATFORM, id=user_id, name=clean_text(str(name or "")) or user_id,
                is_admin=is_admin)


def to_place(channel: str, team: str | None, thread: str | None = None) -> Place:
    # Slack's direct-message channel ids start with D (channels C, private groups G).
    return Place(platform=PLATFORM, channel=channel, workspace=team or None, thread=thread or None,
                 direct=channel.startswith("D"))


def is_workspace_admin(info: Mapping[str, Any]) -> bool:
    """A users.info `user`: an admin or owner of the workspace."""
    return any(bool(info.get(k)) for k in ("is_admin", "is_owner", "is_primary_owner"))


def is_direct_message(event: Mapping[str, Any]) -> bool:
    """A person's own message in a DM with the bot (not an edit, a join or a bot's post)."""
    return (event.get("channel_type") == "im" and not event.get("subtype")
            and not event.get("bot_id") and bool(event.get("user")))


def refusal(settings: SlackSettings, team: str | None, channel: str | None) -> str | None:
    """The text shown when this workspace or channel is not enabled, else None."""
    if settings.allowed_workspaces and team not in settings.allowed_workspaces:
        return (f"LTX is not enabled in this workspace (`{team or 'unknown'}`). An operator can add "
                "it to `slack.allowed_workspaces` in the bot's configuration.")
    if settings.allowed_channels and channel not in settings.allowed_channels:
        where = ", ".join(f"<#{c}>" for c in settings.allowed_channels)
        return f"LTX only works in {where}. Please use it there."
    return None


def split_command(text: str) -> tuple[str, str]:
    """`/ltx` text -> (command, rest). Empty text or `animate` means: open the modal.

    Otherwise the same leading words as mentions, Discord and the console."""
    stripped = text.strip()
    word, _, rest = stripped.partition(" ")
    if not stripped or word.lower() in MODAL_WORDS:
        return "modal", rest.strip()
    return leading_command(stripped)


def strip_mentions(text: str, bot_user_id: str | None) -> str:
    """Drop the bot's own `<@U…>` mention(s); other users' mentions stay in the prompt."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    else:
        text = re.sub(r"^\s*<@[A-Z0-9]+(\|[^>]*)?>", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def file_credential(bot_token: str, api_url: str | None) -> Credential:
    """The bot token as a header that media.py may send only to Slack's own hosts."""
    hosts = list(SLACK_HOSTS)
    if api_url:
        host = urlsplit(api_url).hostname
        if host and host not in hosts:
            hosts.append(host)
    return Credential(header="Authorization", value=f"Bearer {bot_token}", hosts=tuple(hosts),
                      subdomains=True)


def is_complete(file: Mapping[str, Any]) -> bool:
    """A file object with what we need; Slack sometimes sends stubs (`check_file_info`)."""
    return bool(file.get("url_private_download")) and file.get("file_access") != "check_file_info"


def to_attachment(file: Mapping[str, Any], credential: Credential) -> Attachment:
    size = file.get("size")
    return Attachment(
        url=str(file["url_private_download"]),
        filename=str(file.get("name") or file.get("title") or file.get("id") or "file"),
        content_type=file.get("mimetype") or None,
        size=size if isinstance(size, int) else None,
        kind=kind_from_hint(file.get("mimetype"), str(file.get("name") or ""),
                            filetype=file.get("filetype")),
        credential=credential,
    )


class MediaCommand(NamedTuple):
    command: str
    text: str


def media_command(text: str, attachments: Iterable[Attachment]) -> MediaCommand:
    """Which generation a message with files asks for.

    A clip with `--extend` extends it; several images (or images and a clip) are
    keyframes; otherwise a plain video (image-to-video with one image). The text
    is passed on untouched: the grammar knows `--extend` too.
    """
    atts = list(attachments)
    images = sum(1 for a in atts if a.kind == "image")
    videos = sum(1 for a in atts if a.kind == "video")
    if videos and EXTEND_FLAG.search(text):
        return MediaCommand("extend", text)
    if images >= 2 or (videos and images):
        return MediaCommand("keyframes", text)
    return MediaCommand("video", text)


def mention_command(text: str, attachments: list[Attachment]) -> MediaCommand:
    """A command the user named (`@LTX quota`, `@LTX extend more waves`), read as every
    platform reads it; without one, the files decide (see `media_command`)."""
    named, rest = leading_command(text, default="")
    if named:
        return MediaCommand(named, rest)
    return media_command(text, attachments)


def thread_of(message: Mapping[str, Any]) -> str | None:
    """The thread a reply to `message` belongs in: its own thread, else a new one under it."""
    thread = message.get("thread_ts") or message.get("ts")
    return str(thread) if thread else None


def team_of(body: Mapping[str, Any]) -> str | None:
    team = body.get("team_id") or body.get("team")
    if isinstance(team, Mapping):
        team = team.get("id")
    if not team:
        user = body.get("user")
        if isinstance(user, Mapping):
            team = user.get("team_id")
    if not team:
        view = body.get("view")
        if isinstance(view, Mapping):
            team = view.get("team_id")
    return str(team) if team else None


def user_fields(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """(id, display name) from an interactivity payload's `user`."""
    user = body.get("user") or {}
    if isinstance(user, Mapping):
        return str(user.get("id", "")), user.get("username") or user.get("name")
    return str(user), None


def who_and_where(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(user id, channel id) of any Slack payload, to tell someone about a failure."""
    event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
    assert isinstance(event, Mapping)
    user = body.get("user_id") or event.get("user") or user_fields(body)[0]
    channel_obj = body.get("channel")
    channel = (body.get("channel_id") or event.get("channel")
               or (channel_obj.get("id") if isinstance(channel_obj, Mapping) else None))
    return (str(user), str(channel)) if user and channel else None


def error_code(exc: Exception) -> str:
    """Slack's error code of a refused Web API call ("not_in_channel"); "" when the answer
    was not Slack's JSON."""
    data = getattr(getattr(exc, "response", None), "data", None)
    return str(data.get("error") or "") if isinstance(data, dict) else ""
