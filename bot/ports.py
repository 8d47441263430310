"""The neutral types adapters speak, and the ChatPort protocol each one implements.

Nothing here knows a platform. An adapter turns a platform event into an
`Invocation`, hands it to the core, and renders the `StatusCard`s the core
sends back through its `ChatPort`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

AttachmentKind = Literal["image", "video", "audio", "unknown"]
# "forget" is the Forget me button of a forget-me confirmation (job id 0: it names no job);
# "modblock" and "moddelete" are the moderation log's buttons.
ActionKind = Literal["cancel", "reroll", "extend", "retake", "continue", "delete", "restyle",
                     "forget", "report", "modblock", "moddelete"]
# The one list of action kinds, in the order their buttons appear.
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
Markup = Literal["markdown", "mrkdwn", "plain"]
Tone = Literal["info", "success", "warning", "error"]


@dataclass(frozen=True)
class PlatformTraits:
    """What differs by platform, supplied by the port so the core never names one.

    The core words its replies from these: how a user types a command, what a
    group of channels is called, where the operator lists admins, and so on.
    """

    command_prefix: str = "/"  # "/video", or "/ltx " where one slash command carries all words
    workspace_word: str = "workspace"  # what users call a group of channels: server, workspace
    admin_setting: str = "the bot's config"  # where the operator lists this platform's admins
    local_files: bool = False  # whether a path on this machine may stand for an attachment
    mention_pattern: str = r"<@!?(?P<id>[A-Za-z0-9]+)(\|[^>]*)?>"  # a user mention in text
    markup: Markup = "plain"  # how help and lists are formatted
    min_edit_seconds: float = 0.0  # the platform's floor between two edits of one message
    # Commands this surface reads beyond the core's (a card's buttons typed as words,
    # leaving a session), as (how to type it, what it does): `help` lists them.
    own_commands: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class User:
    platform: str
    id: str
    name: str
    roles: tuple[str, ...] = ()
    is_admin: bool = False  # one of the operator's admins (config): every admin command
    # An admin of the workspace this command came from, as the platform says (the
    # adapters document which permission counts): that workspace's own settings only.
    is_workspace_admin: bool = False

    @property
    def key(self) -> str:
        """`platform:id`, the form config lists users in."""
        return f"{self.platform}:{self.id}"


@dataclass(frozen=True)
class Place:
    """Where a conversation happens. `workspace` is the server or team the channel belongs to (None in DMs)."""

    platform: str
    channel: str
    workspace: str | None = None
    thread: str | None = None
    # Facts the adapter knows at command time (not stored with a job): a direct message
    # with the bot, the channel a thread belongs to, and whether the channel is marked
    # age-restricted (None where the platform has no such mark).
    direct: bool = False
    parent: str | None = None
    age_restricted: bool | None = None


@dataclass(frozen=True)
class Credential:
    """An auth header that may be sent only to `hosts` (and their subdomains when `subdomains`).

    An entry may name a port ("127.0.0.1:8443", "[::1]:8443"): it then matches that
    host on that port only (an origin, as browsers scope credentials), never subdomains.
    """

    header: str
    value: str = field(repr=False)
    hosts: tuple[str, ...] = ()
    subdomains: bool = True

    def allows(self, host: str, port: int | None = None) -> bool:
        host = host.lower().rstrip(".").strip("[]")
        for allowed in self.hosts:
            allowed = allowed.lower()
            name, sep, entry_port = allowed.rpartition(":")
            if sep and entry_port.isdigit() and (":" not in name or name.startswith("[")):
                if port is not None and int(entry_port) == port and host == name.strip("[]"):
                    return True
                continue
            if host == allowed or (self.subdomains and host.endswith("." + allowed)):
                return True
        return False


@dataclass(frozen=True)
class Attachment:
    """A file the user attached or pointed at. `url` is http(s) or, where `traits.local_files`, a local path."""

    url: str
    filename: str = ""
    content_type: str | None = None
    size: int | None = None
    kind: AttachmentKind = "unknown"  # a hint from the platform; bot/media/sniff.py judges the bytes
    credential: Credential | None = None
    role: str | None = None  # "end": the end image of a first-to-last-frame clip


@dataclass(frozen=True)
class MessageRef:
    """A message the bot posted, enough to edit it later (also after a restart)."""

    platform: str
    channel: str
    id: str
    # Adapter-specific bits: interaction token and its expiry, thread ts, webhook id...
    # Two are neutral and read by the core: "path", the local file a surface saved the
    # message's video to (a terminal saves where a chat posts), and "deleted", set when
    # the Delete button removed the message, so a job list can say so.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def saved_path(self) -> str | None:
        """The local file this message's video was saved to, where the surface saves files."""
        path = self.extra.get("path")
        return path if isinstance(path, str) else None

    @property
    def deleted(self) -> bool:
        return bool(self.extra.get("deleted"))

    def as_deleted(self) -> MessageRef:
        """This reference, marked as deleted (what the store keeps after the Delete button)."""
        return replace(self, extra={**self.extra, "deleted": True})

    def __repr__(self) -> str:
        # Interaction tokens ride in `extra`; a logged reference must not leak them.
        shown = {k: ("<redacted>" if "token" in k.lower() else v) for k, v in self.extra.items()}
        return f"MessageRef(platform={self.platform!r}, channel={self.channel!r}, id={self.id!r}, extra={shown!r})"


@dataclass(frozen=True)
class InteractionInfo:
    """A platform interaction the first reply can ride on (e.g. a token valid 15 minutes)."""

    token: str = field(repr=False)
    expires_at: datetime
    application_id: str | None = None
    id: str | None = None


@dataclass
class Invocation:
    """One command from one user, already stripped of platform details."""

    user: User
    place: Place
    command: str  # a command word (grammar.COMMAND_WORDS), "ltx-help", or "action" for buttons
    text: str = ""  # free text: prompt and --flags (or the arguments of quota/cancel/admin)
    options: dict[str, Any] = field(default_factory=dict)  # structured options (slash commands)
    attachments: list[Attachment] = field(default_factory=list)
    interaction: InteractionInfo | None = None
    reply_to: MessageRef | None = None
    # Set by the adapter when the platform already shows a "thinking" message it can edit.
    status_message: MessageRef | None = None
    event_id: str | None = None  # for de-duplicating retried platform events
    # A scripted session (piped terminal input): wait out cooldown and concurrency limits
    # instead of refusing, as a person would wait before typing the next command.
    patient: bool = False


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    job_id: int
    label: str

    @property
    def custom_id(self) -> str:
        """Stable id that survives restarts: the adapter rebuilds the handler from it."""
        return f"ltx:job:{self.job_id}:{self.kind}"


FactKind = Literal["stage", "local_position", "fal_position", "progress", "elapsed", "eta"]


@dataclass(frozen=True)
class Fact:
    """One live fact of a card in progress: a label and its value in plain words."""

    kind: FactKind
    label: str  # "Stage", "Place in line", "fal queue", "Progress", "Elapsed", "ETA"
    value: str  # "Generating", "#2", "#1", "40%", "1m 05s", "30s"

    @property
    def plain(self) -> str:
        """`Generating`, `40%`, `Place in line #2`, `ETA 30s`: the fact as one phrase."""
        return self.value if self.kind in ("stage", "progress") else f"{self.label} {self.value}"


@dataclass
class StatusCard:
    """Platform-neutral progress/result message. Adapters only render it.

    Live facts travel only in their fields, narrative (the prompt, how it ended)
    only in `lines`, so every renderer shows each fact exactly once. `facts()`
    lists the live facts in the order renderers show them; a final card has none.
    Positions count from 1, as people do: 1 means next.
    """

    title: str
    lines: list[str] = field(default_factory=list)
    job_id: int | None = None
    state: str | None = None
    stage: str | None = None  # what is happening now, in words: "Generating"
    progress: float | None = None  # 0..1 when known
    local_position: int | None = None  # place in the bot's own line for a free slot
    fal_position: int | None = None  # place in fal's queue
    elapsed_since: datetime | None = None  # when the job was accepted
    eta: datetime | None = None
    actions: list[Action] = field(default_factory=list)
    tone: Tone = "info"
    final: bool = False
    link: str | None = None  # e.g. the fal URL when the video could not be uploaded

    def facts(self, now: datetime | None = None) -> list[Fact]:
        """The live facts to show, in order; none on a final card."""
        if self.final:
            return []
        now = now or datetime.now(UTC)
        facts: list[Fact] = []
        if self.stage:
            facts.append(Fact("stage", "Stage", self.stage))
        if self.local_position is not None:
            facts.append(Fact("local_position", "Place in line", f"#{self.local_position}"))
        if self.fal_position is not None:
            facts.append(Fact("fal_position", "fal queue", f"#{self.fal_position}"))
        if self.progress is not None:
            facts.append(Fact("progress", "Progress", f"{percent(self.progress)}%"))
        if self.elapsed_since is not None:
            elapsed = (now - _aware(self.elapsed_since)).total_seconds()
            facts.append(Fact("elapsed", "Elapsed", format_duration(elapsed)))
        if self.eta is not None:
            facts.append(Fact("eta", "ETA", format_duration((_aware(self.eta) - now).total_seconds())))
        return facts

    def text(self, now: datetime | None = None) -> str:
        """The one plain-text rendering (terminals, notifications, fallbacks)."""
        parts = [self.title, *self.lines]
        facts = self.facts(now)
        if facts:
            parts.append(" · ".join(fact.plain for fact in facts))
        if self.link:
            parts.append(self.link)
        return "\n".join(parts)


def _aware(when: datetime) -> datetime:
    # The store hands back naive UTC datetimes; the core makes aware ones.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def percent(fraction: float) -> int:
    """Whole percent, truncated: a bar never reads 100% before the end (0.29 is 29, not 28)."""
    return int(min(1.0, max(0.0, fraction)) * 100 + 1e-9)


def progress_bar(fraction: float, width: int = 12, full: str = "█", empty: str = "░") -> str:
    """`████░░░░ 50%`."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return full * filled + empty * (width - filled) + f" {percent(fraction)}%"


def format_duration(seconds: float) -> str:
    """`5s`, `2m 05s`, `1h 02m`: short enough for a status line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@runtime_checkable
class ChatPort(Protocol):
    """What the core needs from a chat platform. Every return value is named."""

    platform: str
    traits: PlatformTraits

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        """Post the one status message of a job (or any card) and return its reference."""
        ...

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        """Replace the message's content with `card`. Returns the (possibly new) reference:
        an adapter may have to post a fresh message when the old one can no longer be edited."""
        ...

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        """Upload a finished video (already fitted under `upload_limit`) with its summary."""
        ...

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        """Upload an image (the poster frame when a video cannot fit) with its card."""
        ...

    async def delete(self, ref: MessageRef) -> None:
        """Delete a message the bot posted (the Delete button)."""
        ...

    def upload_limit(self, place: Place) -> int:
        """Bytes the platform accepts in one upload here, now."""
        ...

    async def tell(self, user: User, place: Place, text: str) -> None:
        """A private or ephemeral note to one user (errors, quota, lists)."""
        ...


@runtime_checkable
class PrivateFiles(Protocol):
    """A port that can hand one user a file only they see (`my-data`): an ephemeral reply
    or a direct message in a chat, a private file where the surface saves files."""

    async def send_private_file(self, user: User, place: Place, filename: str, data: bytes,
                                text: str) -> None:
        ...


@runtime_checkable
class AdminNotices(Protocol):
    """A port that can tell the bot's operator admins something no command asked for: the
    fal account failing, a budget alert with nowhere else to go. Where it lands is the
    adapter's business (an admin channel, direct messages, the terminal)."""

    async def notify_admins(self, text: str) -> int:
        """Tell the operator admins `text`; how many admins (or admin channels) were told.
        One admin that cannot be reached is logged and does not stop the others."""
        ...


@runtime_checkable
class PrivateCards(Protocol):
    """A port that can show one user a card with buttons no one else sees (the forget-me
    confirmation), where its `post` would show it to the whole channel: an ephemeral
    message. Ports whose `post` is already private there (an ephemeral interaction
    reply, a terminal) need not have it."""

    async def post_private(self, user: User, place: Place, card: StatusCard) -> None:
        ...


class Core(Protocol):
    """The command core as every adapter sees it (`bot.commands.Bot`): one entry point."""

    async def handle(self, inv: Invocation, port: ChatPort) -> None:
        """Run one command to its end; user errors and failures are told through `port`."""
        ...

    async def first_seen(self, event_id: str) -> bool:
        """Claim a platform event id in the store: True the first time, False for a repeat
        (also after a restart). For adapters that must drop a replayed interaction before
        acknowledging it; what they hand to `handle` afterwards carries no `event_id`."""
        ...
