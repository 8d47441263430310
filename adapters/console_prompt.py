"""The interactive terminal (prompt_toolkit): line editing, history, completion, and the
progress of running jobs drawn above the input line.

Used only when both stdin and stdout are a terminal; piped input keeps the plain
reader in `adapters.console`. Printed lines go through prompt_toolkit's stdout
proxy, so they appear above the prompt; stderr goes the same way, so a warning
never lands inside what is being typed. The prompt's message is a callable,
redrawn every `REFRESH_SECONDS`: one line per job in progress, then `> `.

Keys: the usual editing keys, Up/Down for earlier lines (kept per user in the
data directory, mode 0600), Tab completes command words, flags, model names,
choices and file paths, Ctrl-L clears the screen, Ctrl-C clears the line (and
on an empty line stops the chat, keeping unfinished jobs), Ctrl-D on an empty
line leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import TextIO, cast

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, get_app_or_none
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import FormattedTextControl, Layout, Window
from prompt_toolkit.patch_stdout import StdoutProxy

from adapters.console_lines import COMMANDS
from adapters.console_render import TerminalRenderer
from bot import catalog, grammar

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.5  # how often elapsed times and ETAs above the prompt tick
PROMPT = "> "
WAITING_HINT = "Waiting for your jobs; Ctrl-C stops (unfinished jobs resume on the next start)."


# ---------------------------------------------------------------- history


def history_path(data_dir: Path, user_name: str) -> Path:
    """data_dir/history/<user>.txt: one file per console user."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", user_name).lstrip(".") or "user"
    return data_dir / "history" / f"{safe}.txt"


def open_history(data_dir: Path, user_name: str) -> History:
    """The user's history file, created private (0600: prompts are the user's own); in
    memory only, with a warning, when the data directory cannot be written."""
    path = history_path(data_dir, user_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)  # a file made before, by hand or another umask
    except OSError as exc:
        log.warning("history is not kept: cannot write %s (%s)", path, exc.strerror)
        return InMemoryHistory()
    return FileHistory(str(path))


# ---------------------------------------------------------------- completion


class CommandCompleter(Completer):
    """Command words first, then flags, and a flag's values: model names, choices, paths."""

    def __init__(self) -> None:
        self._paths = PathCompleter(expanduser=True)
        self._long_flags = sorted(f for f in grammar.OPTION_BY_FLAG if len(f) > 1)

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        before = document.text_before_cursor[: len(document.text_before_cursor) - len(word)]
        previous = before.split()
        if not previous:
            yield from self._commands(word)
        elif word.startswith("-"):
            yield from self._flags(word)
        else:
            yield from self._values(previous[-1], word, complete_event)

    @staticmethod
    def _commands(word: str) -> Iterator[Completion]:
        slash = "/" if word.startswith("/") else ""
        typed = word[len(slash):].lower()
        for name in COMMANDS:
            if name.startswith(typed):
                yield Completion(slash + name, start_position=-len(word))

    def _flags(self, word: str) -> Iterator[Completion]:
        typed = word.lstrip("-").lower()
        for flag in self._long_flags:
            if flag.startswith(typed):
                spec = grammar.OPTION_BY_FLAG[flag]
                yield Completion(f"--{flag}", start_position=-len(word), display_meta=spec.help)

    def _values(self, flag: str, word: str, event: CompleteEvent) -> Iterator[Completion]:
        spec = grammar.OPTION_BY_FLAG.get(flag.lstrip("-").lower()) if flag.startswith("-") else None
        if spec is None:
            return
        if spec.kind == "media":
            yield from self._paths.get_completions(Document(word), event)
            return
        choices: Iterable[str] = catalog.all_names() if spec.name == "model" else spec.choices
        for choice in choices:
            if choice.startswith(word.lower()):
                yield Completion(choice, start_position=-len(word))


# ---------------------------------------------------------------- the screen


def _key_bindings(stop: asyncio.Event) -> KeyBindings:
    keys = KeyBindings()

    @keys.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        # A typo'd line is cleared, as in a shell; on an empty line Ctrl-C stops the chat.
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            stop.set()
            event.app.exit(result=None)

    return keys


class PromptScreen:
    """Reads lines with prompt_toolkit and keeps the running jobs above the input line."""

    def __init__(self, out: StdoutProxy, history: History, stop: asyncio.Event) -> None:
        self.renderer = TerminalRenderer(cast(TextIO, out), invalidate=_invalidate)
        self._stop = stop
        self._session: PromptSession[str | None] = PromptSession(
            history=history,
            completer=CommandCompleter(),
            complete_while_typing=False,  # Tab completes; typing a prompt stays quiet
            key_bindings=_key_bindings(stop),
            refresh_interval=REFRESH_SECONDS,
            # The prompt with its progress lines is erased when a line is taken; the line
            # is printed back as a record (`read`), so the transcript holds no stale bars.
            erase_when_done=True,
        )

    def _message(self) -> str:
        app = get_app_or_none()
        width = app.output.get_size().columns if app is not None else 80
        return "".join(line + "\n" for line in self.renderer.status_lines(width)) + PROMPT

    async def read(self) -> str | None:
        """The next line; None at Ctrl-D (end of input) or when Ctrl-C stopped the chat."""
        try:
            # handle_sigint=False: the bot's own SIGINT handler stays installed.
            line = await self._session.prompt_async(self._message, handle_sigint=False)
        except EOFError:
            return None
        if line is not None:
            self.renderer.line(PROMPT + line)
        return line

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """While the chat waits for the user's jobs at the end: their progress and a hint,
        no input line; Ctrl-C stops."""
        keys = KeyBindings()

        @keys.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            self._stop.set()

        def text() -> str:
            app = get_app_or_none()
            width = app.output.get_size().columns if app is not None else 80
            return "".join(line + "\n" for line in self.renderer.status_lines(width)) + WAITING_HINT

        app: Application[None] = Application(
            layout=Layout(Window(FormattedTextControl(text), dont_extend_height=True)),
            key_bindings=keys, refresh_interval=REFRESH_SECONDS, erase_when_done=True,
        )
        running = asyncio.create_task(app.run_async(handle_sigint=False))
        try:
            yield
        finally:
            if app.is_running:
                app.exit()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await running


def _invalidate() -> None:
    app = get_app_or_none()
    if app is not None and app.is_running:
        app.invalidate()


@contextlib.contextmanager
def prompt_screen(data_dir: Path, user_name: str, stop: asyncio.Event) -> Iterator[PromptScreen]:
    """A PromptScreen with stdout and stderr drawn above its prompt while it is open."""
    history = open_history(data_dir, user_name)
    with StdoutProxy() as proxy, contextlib.redirect_stdout(proxy), contextlib.redirect_stderr(proxy):
        yield PromptScreen(proxy, history, stop)
