"""A terminal chat on the same core as Discord and Slack (`ltx-bot chat`).

Each input line is one command (`adapters.console_lines`): `a paper boat --seconds 4`,
`/video --image cat.png the cat yawns`, `cancel 3`, `quota`, `quit`...

On an interactive terminal the line is edited with prompt_toolkit
(`adapters.console_prompt`): history, completion, and the progress of running
jobs kept above the input line. Otherwise (piped input, or output to a file)
every change is one plain line, so scripts and tests read stable text, and the
chat reads every line, then waits for every unfinished job of its user that this
process drives (its own and those it adopted; never another running process's)
and exits. A finished video is copied into `media.output_dir` and
announced as `saved: <path>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import itertools
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from adapters.console_lines import LEAVE, ParsedLine, is_leave, parse_line
from adapters.console_render import (
    PlainRenderer,
    Renderer,
    TerminalRenderer,
    card_text,
    status_line,
)
from bot import grammar
from bot.boundary import boundary
from bot.config import Settings, redacted_dump
from bot.ports import Invocation, MessageRef, Place, PlatformTraits, StatusCard, User
from bot.private_files import copy_private, private_dir

if TYPE_CHECKING:
    from bot.app import App

__all__ = ["CONSOLE_PLACE", "ConsolePort", "console_user", "parse_line", "run_console"]

log = logging.getLogger(__name__)

PLATFORM = "console"
CHANNEL = "console"
# What the console reads beyond the core's commands, for `help` (see console_lines).
OWN_COMMANDS = (
    ("/reroll <id>", "the same job again with a new seed"),
    ("/extend #<id> <prompt>", "continue a finished video with a new prompt"),
    ("/retake #<id> <prompt> --from S --to S", "redo seconds S to S of a finished video"),
    ("/continue #<id> <prompt>", "a new video from the last frame of a finished one"),
    ("/delete <id>", "delete the saved video of a job"),
    ("/report <id>", "report a finished video to the moderators"),
    ("/modblock <id>", "moderators: block the job's user here (a log entry's Block user)"),
    ("/moddelete <id>", "moderators: delete the job's video (a log entry's Delete video)"),
    ("/quit", "leave (also /exit or Ctrl-D); unfinished jobs resume on the next start"),
)
ADMIN_NOTICE = "For the bot's admins: "
TRAITS = PlatformTraits(admin_setting="[console] admin_users", local_files=True,
                        own_commands=OWN_COMMANDS)


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


# ---------------------------------------------------------------- the port


@dataclass
class ConsoleMessage:
    """What the terminal shows for one message: its latest card, file and buttons."""

    text: str
    files: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)
    deleted: bool = False


class ConsolePort:
    """ChatPort for a terminal: cards become status lines, videos become files.

    It also keeps what each message shows now (`messages`) and the notes told
    to each user (`notes`), as a platform would: tests and the contract harness
    read them. A chat shows a job's status message and its video as two messages;
    a terminal prints both in one stream, so once a job's video is printed (with
    its summary), the status message's final card is kept but not printed again.
    """

    platform = PLATFORM

    def __init__(self, settings: Settings, out: TextIO | None = None, *, live: bool | None = None,
                 renderer: Renderer | None = None) -> None:
        self.settings = settings
        self.traits = TRAITS
        self.out = out or sys.stdout
        if renderer is None:
            live = self.out.isatty() if live is None else live
            renderer = TerminalRenderer(self.out) if live else PlainRenderer(self.out)
        self.renderer = renderer
        self.output_dir = Path(settings.media.output_dir)
        self._ids = itertools.count(1)
        self.saved: list[Path] = []
        self.messages: dict[str, ConsoleMessage] = {}
        self.notes: dict[str, deque[str]] = {}
        self._delivered: set[int] = set()  # jobs whose video (or poster) was printed here
        self.admin_notices: list[str] = []

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
        if not (card.final or card.job_id is None):
            self.renderer.progress(key, card)
            return
        self.renderer.done(key)
        if card.job_id not in self._delivered:
            self.renderer.line(card_text(card))

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
        # The job when there is one, so a card re-posted after a restart keeps its line.
        return f"job-{card.job_id}" if card.job_id is not None else ref.id

    async def _send_file(self, path: Path, card: StatusCard, what: str) -> MessageRef:
        dest = await asyncio.to_thread(self._save, path, card, what)
        self.renderer.done(f"job-{card.job_id}")
        self.renderer.line(f"saved: {_shown_path(dest)}")
        self.renderer.line(card_text(card))
        if card.job_id is not None:
            self._delivered.add(card.job_id)
        # "path" is the neutral MessageRef key for a saved file: `jobs` lists it.
        ref = self._ref("file", path=str(dest))
        self._record(ref, card, [dest.name])
        return ref

    async def send_video(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send_file(path, card, "video")

    async def send_image(self, place: Place, path: Path, card: StatusCard) -> MessageRef:
        return await self._send_file(path, card, "poster")

    def _save(self, src: Path, card: StatusCard, what: str) -> Path:
        private_dir(self.output_dir)
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
        copy_private(src, dest)  # 0600: a user's video is theirs until they share it
        self.saved.append(dest.resolve())
        return dest.resolve()

    async def delete(self, ref: MessageRef) -> None:
        message = self.messages.get(ref.id)
        if message is not None:
            message.deleted = True
        path = ref.saved_path
        if path is not None:
            # The Delete button of a finished video removes the saved file.
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(Path(path).unlink)
            self.renderer.line(f"deleted: {path}")

    def upload_limit(self, place: Place) -> int:
        return self.settings.console.upload_limit_bytes

    async def send_private_file(self, user: User, place: Place, filename: str, data: bytes,
                                text: str) -> None:
        """`my-data`: a file in the output folder that only this machine's user can read."""
        dest = self.output_dir / filename
        await asyncio.to_thread(_write_private, dest, data)
        self.saved.append(dest.resolve())
        self.renderer.line(f"{text} saved: {_shown_path(dest)}")

    async def tell(self, user: User, place: Place, text: str) -> None:
        self.notes.setdefault(user.key, deque(maxlen=100)).append(text)
        self.renderer.line(text)

    async def notify_admins(self, text: str) -> int:
        """The fal account failing, a budget alert: whoever runs the terminal operates the
        bot, so it is printed in the chat (and kept in `admin_notices`)."""
        self.admin_notices.append(text)
        self.renderer.line(f"{ADMIN_NOTICE}{text}")
        return 1

    def close(self) -> None:
        self.renderer.close()


# ---------------------------------------------------------------- the chat loop


def _write_private(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(dest, 0o600)  # a file made before with a wider mode


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


class Screen(Protocol):
    """Where lines come from and progress goes: the prompt on a terminal, or a pipe."""

    @property
    def renderer(self) -> Renderer: ...

    async def read(self) -> str | None:
        """The next line; None at the end of input."""
        ...

    async def end_input(self) -> None:
        """Takes no more lines (after a line that leaves, or when the chat stops)."""
        ...

    def waiting(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Shows the jobs' progress while the chat waits for them at the end."""
        ...


class PipedScreen:
    """Lines from a blocking stream (a pipe, a file, or a terminal when the output is not one),
    read by a daemon thread: a read blocked on a terminal must not keep the process alive
    after a signal asked it to stop."""

    def __init__(self, stream: TextIO, renderer: Renderer) -> None:
        self.renderer = renderer
        self._stream = stream
        self._queue: asyncio.Queue[str | None] | None = None

    def _start(self) -> asyncio.Queue[str | None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:
            try:
                for line in iter(self._stream.readline, ""):
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            except (OSError, ValueError):
                pass
            finally:
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        return queue

    async def read(self) -> str | None:
        if self._queue is None:
            self._queue = self._start()
        return await self._queue.get()

    async def end_input(self) -> None:
        pass  # the reading thread is a daemon: it ends with the process

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        yield  # every change is printed as a line anyway


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
            if parsed is not None and parsed.command != LEAVE:
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

    async def run(self, screen: Screen, stop: asyncio.Event, *, interactive: bool = False) -> int:
        """Read and handle lines until the end of input or `quit`, then wait for the user's
        jobs. Reading goes on while a line is handled (one at a time, in order), so the
        prompt stays up and keys typed meanwhile reach it."""
        self.patient = not interactive
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        tasks = [asyncio.create_task(self._read(screen, lines)),
                 asyncio.create_task(self._work(lines, stop)),
                 asyncio.create_task(stop.wait())]
        reader, worker, stop_wait = tasks
        try:
            await asyncio.wait({worker, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                # The line being handled ends first (a job half made would only resume later).
                reader.cancel()
                await screen.end_input()  # the prompt gives the terminal back first
                lines.put_nowait(None)
                await asyncio.wait({worker})
                await self.say_stopped()
                return 0
            worker.result()
            if not await self.unfinished():
                return 0
            async with screen.waiting():
                waiting = asyncio.create_task(self.wait_for_jobs())
                tasks.append(waiting)
                await asyncio.wait({waiting, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                # Stopped while waiting: the jobs stay in the database and resume next start.
                await self.say_stopped()
            return 0
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await screen.end_input()

    @staticmethod
    async def _read(screen: Screen, lines: asyncio.Queue[str | None]) -> None:
        """Lines into `lines` until the end of input or a line that leaves (then None)."""
        while True:
            line = await screen.read()
            if line is None or is_leave(line):
                lines.put_nowait(None)
                await screen.end_input()
                return
            lines.put_nowait(line)

    async def _work(self, lines: asyncio.Queue[str | None], stop: asyncio.Event) -> None:
        while (line := await lines.get()) is not None and not stop.is_set():
            await self.handle_line(line)

    async def say_stopped(self) -> None:
        ids = await self.unfinished()
        if ids:
            listed = ", ".join(f"#{i}" for i in ids)
            self.port.renderer.line(
                f"stopped: unfinished job(s) {listed} are kept and resume on the next start"
            )


def banner(settings: Settings, user: User, *, interactive: bool) -> str:
    backend = _backend_words(settings)
    admin = ", admin" if user.is_admin else ""
    keys = ("Tab completes, Up/Down recall earlier lines. " if interactive else "")
    return (
        f"ltx-bot console as {user.name}{admin}, backend: {backend}. "
        f"Videos are saved in {Path(settings.media.output_dir).resolve()}.\n"
        f"Type a prompt (or help). {keys}quit or Ctrl-D to leave."
    )


def _backend_words(settings: Settings) -> str:
    """What makes the videos, as `check-config` names it: a keyless server on this machine
    is not fal (the user is not spending anything there)."""
    if settings.uses_simulator:
        return "SIMULATED videos (no fal key)"
    if settings.backend.local_server and not settings.backend.has_key:
        url = redacted_dump(settings)["backend"]["fal_queue_url"]
        return f"the fal-compatible server at {url} (no fal key)"
    return "fal"


async def run_console(
    app: App,
    *,
    user_name: str | None = None,
    stream: TextIO | None = None,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the console chat on `app` (not yet started): start, read, wait, stop.

    prompt_toolkit edits the lines when both `stream` and `out` are a terminal."""
    stream = stream or sys.stdin
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    user = console_user(user_name or local_user_name(), app.settings)
    if stream.isatty() and out.isatty():
        from adapters.console_prompt import prompt_screen  # the terminal UI only on a terminal

        async with prompt_screen(app.settings.data_dir, user.name, stop) as screen:
            return await _chat(app, user, screen, stop, interactive=True, greet=True)
    # A person typing into a terminal whose output goes to a file is greeted too.
    piped = PipedScreen(stream, PlainRenderer(out))
    return await _chat(app, user, piped, stop, interactive=False, greet=stream.isatty())


async def _chat(app: App, user: User, screen: Screen, stop: asyncio.Event, *,
                interactive: bool, greet: bool) -> int:
    port = ConsolePort(app.settings, renderer=screen.renderer)
    app.register_port(port)
    await app.start()
    try:
        if greet:
            port.renderer.line(banner(app.settings, user, interactive=interactive))
        return await ConsoleAdapter(app, port, user).run(screen, stop, interactive=interactive)
    finally:
        await app.stop()
        port.close()
