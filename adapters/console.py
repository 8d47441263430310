"""A terminal chat on the same core as Discord and Slack (`ltx-bot chat`).

Each input line is one command: `/video a paper boat --seconds 4`,
`/video --image cat.png the cat yawns`, `/cancel 3`, `/quota`... A line without
a slash is `/video`. `--image`/`--video` take a local file or an http(s) URL;
the console turns them into attachments the way a platform adapter turns
uploaded files into attachments, so the core treats them alike.

Progress is a live bar (rich) when stdout is a terminal and one plain line per
change when it is not, so piped runs and tests read stable text. A finished
video is copied into `media.output_dir` and announced as `saved: <path>`.

With piped input the chat reads every line, then waits for every unfinished
job of its user that this process drives (its own and those it adopted; never
another running process's) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import itertools
import logging
import os
import re
import shutil
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from adapters.console_render import LiveRenderer, PlainRenderer, Renderer, card_text, status_line
from bot import grammar
from bot.boundary import boundary
from bot.config import Settings
from bot.errors import UserError
from bot.model import MediaKind
from bot.ports import (
    Attachment,
    AttachmentKind,
    Invocation,
    MessageRef,
    Place,
    PlatformTraits,
    StatusCard,
    User,
)

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

PLATFORM = "console"
CHANNEL = "console"
COMMANDS = ("video", "keyframes", "extend", "quote", "quota", "jobs", "cancel", "help", "admin",
            "reroll", "continue", "delete")
# The buttons of a platform card, typed: `/reroll 9`, `/extend #9 prompt`, `/continue #9 prompt`.
ACTION_COMMANDS = ("reroll", "continue", "delete")
# Commands whose text goes through the generation grammar (and may carry --image/--video).
MEDIA_COMMANDS = ("video", "keyframes", "extend", "quote")
EXIT_WORDS = ("/quit", "/exit")
_DASHES = ("\u2014", "\u2013", "\u2212")


def local_user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers (uid without passwd entry)
        return "console"


def console_user(name: str, settings: Settings) -> User:
    # argv and the environment arrive surrogate-escaped when they are not UTF-8 (`--user
    # $'\xff'`): such a name could not be stored. Read its bytes as UTF-8, with replacements.
    name = grammar.clean_text(os.fsencode(name).decode("utf-8", "replace")).strip() or "console"
    return User(
        platform=PLATFORM,
        id=name,
        name=name,
        is_admin=name in settings.console.admin_users,
    )


CONSOLE_PLACE = Place(platform=PLATFORM, channel=CHANNEL)


# ---------------------------------------------------------------- line parsing


@dataclass
class ParsedLine:
    """One input line: the command, its text without media flags, and the attachments."""

    command: str
    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


_JOB_REF = re.compile(r"#?(\d+)(?:\s+(.*))?$", re.S)


def _action_line(action: str, rest: str, *, needs_hash: bool) -> ParsedLine | None:
    """`/reroll 9`, `/delete 9`, `/continue #9 prompt`, `/extend #9 prompt` as button presses."""
    if needs_hash and not rest.startswith("#"):
        return None
    match = _JOB_REF.match(rest)
    if not match:
        raise UserError(f"Which job? e.g. /{action} #12 (see /jobs for yours).")
    return ParsedLine(command="action", text=(match.group(2) or "").strip(),
                      options={"action": action, "job_id": int(match.group(1))})


def _media_flag(token: str) -> tuple[MediaKind, str | None] | None:
    """('image'|'video', inline value or None) when `token` is --image/--video (or an alias)."""
    for dash in _DASHES:
        if token.startswith(dash):
            token = "--" + token[len(dash) :]
    if token.startswith("--"):
        name = token[2:]
    elif token.startswith("-") and len(token) >= 2 and token[1].isalpha() and (
        len(token) == 2 or token[2] == "="
    ):
        name = token[1:]
    else:
        return None
    value: str | None = None
    if "=" in name:
        name, value = name.split("=", 1)
    spec = grammar.OPTION_BY_FLAG.get(name.lower())
    if spec is None or spec.kind != "media" or spec.media_kind is None:
        return None
    return spec.media_kind, value


def _requote(token: str, quoted: bool) -> str:
    # Re-emit a token so that grammar.tokenize reads it back exactly as before.
    if not quoted:
        return token
    quote = "'" if '"' in token else '"'
    return f"{quote}{token}{quote}"


def attachment_for(ref: str, kind: AttachmentKind, cwd: Path | None = None) -> Attachment:
    """An Attachment for a local path (made absolute) or an http(s) URL."""
    if ref.startswith(("http://", "https://")):
        name = ref.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return Attachment(url=ref, filename=name, kind=kind)
    path = Path(ref.removeprefix("file://")).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not path.is_file():
        raise UserError(f"There is no file at {ref}.")
    return Attachment(url=str(path), filename=path.name, size=path.stat().st_size, kind=kind)


def parse_line(line: str, *, cwd: Path | None = None) -> ParsedLine | None:
    """Split one input line into command, text and attachments. None for blank or comment lines.

    Raises UserError for an unknown command, an unclosed quote, a media flag
    without a value, or a file that does not exist.
    """
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    command = "video"
    rest = stripped
    if stripped.startswith("/"):
        head, _, rest = stripped[1:].partition(" ")
        command = head.lower()
        if command not in COMMANDS:
            raise UserError(f"I don't know the command /{head}. Type /help to see what I can do.")
        rest = rest.strip()
    if command in ACTION_COMMANDS:
        parsed = _action_line(command, rest, needs_hash=False)
        assert parsed is not None
        return parsed
    if command == "extend" and (action := _action_line("extend", rest, needs_hash=True)):
        # `/extend #9 ...` extends a finished job; `/extend --video clip.mp4 ...` a file.
        return action
    if command not in MEDIA_COMMANDS:
        return ParsedLine(command=command, text=rest)
    tokens = grammar.tokenize(rest)
    kept: list[str] = []
    attachments: list[Attachment] = []
    i = 0
    while i < len(tokens):
        token, quoted = tokens[i]
        media = None if quoted else _media_flag(token)
        if media is None:
            kept.append(_requote(token, quoted))
            i += 1
            continue
        kind, value = media
        if value is None:
            if i + 1 >= len(tokens):
                raise UserError(f"{token} needs a file or a URL, e.g. {token} cat.png.")
            value = tokens[i + 1][0]
            i += 1
        attachments.append(attachment_for(value, kind, cwd))
        i += 1
    return ParsedLine(command=command, text=" ".join(kept), attachments=attachments)


# ---------------------------------------------------------------- the port


@dataclass
class ConsoleMessage:
    """What the terminal shows for one message: its latest card, file and buttons."""

    text: str
    files: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)
    deleted: bool = False


class ConsolePort:
    """ChatPort for a terminal: cards become progress bars or lines, videos become files.

    It also keeps what each message shows now (`messages`) and the notes told
    to each user (`notes`), as a platform would: tests and the contract harness
    read them.
    """

    platform = PLATFORM

    def __init__(self, settings: Settings, out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.settings = settings
        self.traits = PlatformTraits(admin_setting="[console] admin_users", local_files=True)
        self.out = out or sys.stdout
        if live is None:
            live = self.out.isatty()
        self.renderer: Renderer = LiveRenderer(self.out) if live else PlainRenderer(self.out)
        self.output_dir = Path(settings.media.output_dir)
        self._ids = itertools.count(1)
        self.saved: list[Path] = []
        self.messages: dict[str, ConsoleMessage] = {}
        self.notes: dict[str, deque[str]] = {}

    def _ref(self, kind: str, **extra: Any) -> MessageRef:
        return MessageRef(platform=PLATFORM, channel=CHANNEL, id=f"{kind}-{next(self._ids)}", extra=extra)

    def _record(self, ref: MessageRef, card: StatusCard, files: list[str] | None = None) -> None:
        # What the terminal shows for this message now: a status line while in progress.
        shows_progress = not (card.final or card.job_id is None or files)
        self.messages[ref.id] = ConsoleMessage(
            text=status_line(card) if shows_progress else card_text(card),
            files=files or [],
            buttons=[a.custom_id for a in card.actions],
        )
        if len(self.messages) > 1000:  # a long session: forget the oldest
            del self.messages[next(iter(self.messages))]

    def _show(self, key: str, card: StatusCard) -> None:
        if card.final or card.job_id is None:
            self.renderer.done(key)
            self.renderer.line(card_text(card))
        else:
            self.renderer.progress(key, card)

    async def post(self, place: Place, card: StatusCard) -> MessageRef:
        ref = self._ref("status", job_id=card.job_id)
        self._record(ref, card)
        self._show(self._key(ref, card), card)
        return ref

    async def edit(self, ref: MessageRef, card: StatusCard) -> MessageRef:
        self._record(ref, card)
        self._show(self._key(ref, card), card)
        return ref

    @staticmethod
    def _key(ref: MessageRef, card: StatusCard) -> str:
        # The job when there is one, so a card re-posted after a restart keeps its bar.
        return f"job-{card.job_id}" if card.job_id is not None else ref.id

    async def _send_file(self, path: Path, card: StatusCard, what: str) -> MessageRef:
        dest = await asyncio.to_thread(self._save, path, card, what)
        self.renderer.done(f"job-{card.job_id}")
        self.renderer.line(f"saved: {_shown_path(dest)}")
        self.renderer.line(card_text(card))
        ref = self._ref("file", path=str(dest))
        self._record(ref, card, [dest.name])
        return ref

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send_file(path, card, "video")

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send_file(path, card, "poster")

    def _save(self, src: Path, card: StatusCard, what: str) -> Path:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        stem = f"ltx-{card.job_id}-{stamp}" if card.job_id is not None else f"ltx-{what}-{stamp}"
        if what == "poster":
            stem += "-poster"
        suffix = src.suffix or (".mp4" if what == "video" else ".png")
        dest = self.output_dir / f"{stem}{suffix}"
        for n in itertools.count(2):
            if not dest.exists():
                break
            dest = self.output_dir / f"{stem}-{n}{suffix}"
        # Copy, not move: the runner owns its temporary file and cleans it up itself.
        shutil.copyfile(src, dest)
        self.saved.append(dest.resolve())
        return dest.resolve()

    async def delete(self, ref: MessageRef) -> None:
        message = self.messages.get(ref.id)
        if message is not None:
            message.deleted = True
        path = ref.extra.get("path")
        if isinstance(path, str):
            # The Delete button of a finished video removes the saved file.
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(Path(path).unlink)
            self.renderer.line(f"deleted: {path}")

    def upload_limit(self, place: Place) -> int:
        return self.settings.console.upload_limit_bytes

    async def tell(self, user: User, place: Place, text: str) -> None:
        self.notes.setdefault(user.key, deque(maxlen=100)).append(text)
        self.renderer.line(text)

    def close(self) -> None:
        self.renderer.close()


# ---------------------------------------------------------------- the chat loop


def _shown_path(path: Path) -> Path:
    """`outputs/ltx-1-….mp4` when the file is under the working directory: short, and what
    a person can paste into the next command; the full path otherwise."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def invocation_for(parsed: ParsedLine, user: User, *, patient: bool = False) -> Invocation:
    return Invocation(
        user=user,
        place=CONSOLE_PLACE,
        command=parsed.command,
        text=parsed.text,
        options=dict(parsed.options),
        attachments=list(parsed.attachments),
        patient=patient,
    )


def _start_reader(stream: TextIO, queue: asyncio.Queue[str | None]) -> None:
    """Feed lines from a blocking stream into the loop.

    A daemon thread rather than `to_thread`: a read blocked on a terminal must
    not keep the process alive after a signal asked it to stop.
    """
    loop = asyncio.get_running_loop()

    def pump() -> None:
        try:
            for line in iter(stream.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()


class ConsoleAdapter:
    """The console's adapter: reads command lines, hands them to the core, and waits for
    the user's jobs at the end."""

    def __init__(self, app: App, port: ConsolePort, user: User, *, cwd: Path | None = None) -> None:
        self.app = app
        self.port = port
        self.user = user
        self.cwd = cwd
        # Piped input is a script: its commands wait out cooldown and concurrency limits
        # (the 2nd of two quick /video lines would otherwise be refused by default quotas).
        self.patient = False

    async def handle_line(self, line: str) -> None:
        async def tell(text: str) -> None:
            await self.port.tell(self.user, CONSOLE_PLACE, text)

        async with boundary(tell, "console line", logger=log):
            parsed = parse_line(line, cwd=self.cwd)
            if parsed is not None:
                inv = invocation_for(parsed, self.user, patient=self.patient)
                await self.app.bot.handle(inv, self.port)

    async def unfinished(self) -> list[int]:
        # Only the jobs this process drives (its own and those it adopted): another
        # process's job is that process's to finish, so waiting for it could hang.
        jobs = self.app.runner.driving()
        return sorted(job.id for job in jobs
                      if job.owner_key == self.user.key and not job.state.final)

    async def wait_for_jobs(self) -> None:
        # Loop: a job may finish while another starts (nothing here submits, but the
        # store is the truth, so ask it again until nothing of ours is left).
        while True:
            ids = await self.unfinished()
            if not ids:
                return
            noun = "job" if len(ids) == 1 else "jobs"
            self.port.renderer.line(
                f"waiting for {len(ids)} unfinished {noun}: {', '.join(f'#{i}' for i in ids)}"
            )
            await asyncio.gather(*(self.app.runner.wait(i) for i in ids))

    async def run(self, stream: TextIO, stop: asyncio.Event, *, interactive: bool = False) -> int:
        self.patient = not interactive
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        _start_reader(stream, queue)
        stop_wait = asyncio.create_task(stop.wait())
        try:
            while True:
                next_line = asyncio.create_task(queue.get())
                finished, _ = await asyncio.wait(
                    {next_line, stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                if stop_wait in finished:
                    next_line.cancel()
                    await self.say_stopped()
                    return 0
                line = next_line.result()
                if line is None or line.strip().lower() in EXIT_WORDS:
                    break
                await self.handle_line(line)
            waiting = asyncio.create_task(self.wait_for_jobs())
            finished, _ = await asyncio.wait(
                {waiting, stop_wait}, return_when=asyncio.FIRST_COMPLETED
            )
            if waiting in finished:
                waiting.result()
            else:
                # Stopped while waiting: the jobs stay in the database and resume next start.
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                await self.say_stopped()
            return 0
        finally:
            stop_wait.cancel()

    async def say_stopped(self) -> None:
        ids = await self.unfinished()
        if ids:
            listed = ", ".join(f"#{i}" for i in ids)
            self.port.renderer.line(
                f"stopped: unfinished job(s) {listed} are kept and resume on the next start"
            )


def banner(settings: Settings, user: User) -> str:
    backend = "SIMULATED videos (no fal key)" if settings.uses_simulator else "fal"
    admin = ", admin" if user.is_admin else ""
    return (
        f"ltx-bot console as {user.name}{admin}, backend: {backend}. "
        f"Videos are saved in {Path(settings.media.output_dir).resolve()}.\n"
        "Type a prompt (or /help); /quit or Ctrl-D to leave."
    )


async def run_console(
    app: App,
    *,
    user_name: str | None = None,
    stream: TextIO | None = None,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    live: bool | None = None,
) -> int:
    """Run the console chat on `app` (not yet started): start, read, wait, stop."""
    stream = stream or sys.stdin
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    settings = app.settings
    user = console_user(user_name or local_user_name(), settings)
    port = ConsolePort(settings, out, live=live)
    app.register_port(port)
    interactive = stream.isatty()
    await app.start()
    try:
        if interactive:
            port.renderer.line(banner(settings, user))
        adapter = ConsoleAdapter(app, port, user)
        return await adapter.run(stream, stop, interactive=interactive)
    finally:
        await app.stop()
        port.close()
