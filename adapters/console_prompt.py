"""The interactive terminal (prompt_toolkit): line editing, history, completion, and the
progress of running jobs drawn above the input line.

Used only when both stdin and stdout are a terminal; piped input keeps the plain
reader in `adapters.console`. One prompt runs for the whole session. Printed
lines, and stderr with them, go through `AbovePrompt`, so they appear above the
prompt and a warning never lands inside what is being typed. The prompt's message
is a callable, redrawn every `REFRESH_SECONDS`: one line per job in progress,
then `> `.

Keys: the usual editing keys, Up/Down for earlier lines (kept per user in the
data directory, mode 0600), Tab completes command words, flags, model names,
choices and file paths, Ctrl-L clears the screen, Ctrl-C clears the line (and
on an empty line stops the chat, keeping unfinished jobs), Ctrl-D on an empty
line leaves.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import TextIO, cast

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application, get_app_or_none, get_app_session
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import FormattedTextControl, Layout, Window
from prompt_toolkit.output import Output, create_output

from adapters.console_lines import COMMANDS
from adapters.console_render import TerminalRenderer
from bot import catalog, grammar
from bot.private_files import open_private, private_dir

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
        private_dir(path.parent)
        # Also narrows a file made before, by hand or under another umask.
        os.close(open_private(path, os.O_APPEND | os.O_WRONLY))
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


# ---------------------------------------------------------------- printing above the prompt


class AbovePrompt:
    """A stdout for the chat while a prompt_toolkit app runs: each complete line is printed
    above the app, which is then drawn again below it; with no app running, it is written
    straight through. Any thread may write; lines keep their order.

    prompt_toolkit's own StdoutProxy prints through `run_in_terminal`, which puts the
    terminal in cooked mode for each write: a Ctrl-C typed then turns into SIGINT and a
    Ctrl-D into an end of file nobody reads. This keeps the terminal raw throughout.
    Control characters in what is printed are escaped by the output (no escape sequence
    from a prompt reaches the terminal)."""

    def __init__(self, raw: TextIO, output: Output) -> None:
        self._raw = raw
        self._output = output
        self._session = get_app_session()
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._partial = ""
        self._printing = asyncio.Lock()
        self._pending: list[concurrent.futures.Future[None]] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            if "\n" not in self._partial:
                return len(text)
            lines, _, self._partial = self._partial.rpartition("\n")
            self._pending = [p for p in self._pending if not p.done()]  # a long session
            self._pending.append(asyncio.run_coroutine_threadsafe(self._print(lines + "\n"), self._loop))
        return len(text)

    def flush(self) -> None:
        pass  # a line is printed once it is complete

    async def drain(self) -> None:
        """Until everything written so far is printed (before the terminal is given back)."""
        with self._lock:
            if self._partial:
                rest, self._partial = self._partial + "\n", ""
                self._pending.append(asyncio.run_coroutine_threadsafe(self._print(rest), self._loop))
            pending, self._pending = self._pending, []
        for printed in pending:
            await asyncio.wrap_future(printed)

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    @property
    def encoding(self) -> str:
        return self._raw.encoding

    async def _print(self, text: str) -> None:
        async with self._printing:
            app = self._session.app
            if app is None or not app.is_running:
                self._raw.write(text)
                self._raw.flush()
                return
            # As run_in_terminal does, without leaving raw mode: let pending cursor position
            # answers arrive, erase the app, print, and have the app drawn afresh below.
            if app.output.responds_to_cpr:
                await app.renderer.wait_for_cpr_responses()
            app.renderer.erase()
            self._output.write(text.replace("\n", "\r\n"))
            self._output.flush()
            app.renderer.reset()
            app.renderer.request_absolute_cursor_position()
            app.invalidate()


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
    """Reads lines with prompt_toolkit and keeps the running jobs above the input line.

    One prompt runs for the whole session and hands each line over as it is entered
    (the buffer's accept handler), so the terminal stays in raw mode throughout: a key
    typed while a line is handled still reaches the prompt (a new prompt per line would
    leave cooked mode in between, where a Ctrl-D is swallowed as end of file)."""

    def __init__(self, out: AbovePrompt, output: Output, history: History,
                 stop: asyncio.Event) -> None:
        self.renderer = TerminalRenderer(cast(TextIO, out), invalidate=_invalidate)
        self._output = output
        self._stop = stop
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._prompt: asyncio.Task[None] | None = None
        self._session: PromptSession[str | None] = PromptSession(
            history=history,
            completer=CommandCompleter(),
            complete_while_typing=False,  # Tab completes; typing a prompt stays quiet
            key_bindings=_key_bindings(stop),
            refresh_interval=REFRESH_SECONDS,
            erase_when_done=True,  # no stale progress lines left behind at the end
            output=output,
        )
        self._session.default_buffer.accept_handler = self._accept

    def _accept(self, buffer: Buffer) -> bool:
        # The line is printed back as a record above the prompt, kept in the history, and
        # the input line is cleared with the history ready at once (returning True: the
        # buffer's own reset would leave Up empty until the prompt is drawn again).
        self.renderer.line(PROMPT + buffer.text)
        self._lines.put_nowait(buffer.text)
        buffer.append_to_history()
        _clear_keeping_history(buffer)
        return True

    def _message(self) -> str:
        app = get_app_or_none()
        width = app.output.get_size().columns if app is not None else 80
        return "".join(line + "\n" for line in self.renderer.status_lines(width)) + PROMPT

    async def _run_prompt(self) -> None:
        try:
            # handle_sigint=False: the bot's own SIGINT handler stays installed.
            await self._session.prompt_async(self._message, handle_sigint=False)
        except EOFError:
            pass  # Ctrl-D on an empty line
        finally:
            self._lines.put_nowait(None)

    async def read(self) -> str | None:
        """The next line; None at Ctrl-D (end of input) or when Ctrl-C stopped the chat."""
        if self._prompt is None:
            self._prompt = asyncio.create_task(self._run_prompt())
        return await self._lines.get()

    async def end_input(self) -> None:
        """Takes no more lines: the prompt goes (after `quit`, or when the chat stops)."""
        if self._prompt is None or self._prompt.done():
            return
        app = self._session.app
        if app.future is not None and not app.future.done():
            app.exit()
        await asyncio.wait({self._prompt})

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
            output=self._output,
        )
        running = asyncio.create_task(app.run_async(handle_sigint=False))
        try:
            yield
        finally:
            if app.is_running:
                app.exit()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await running


def _clear_keeping_history(buffer: Buffer) -> None:
    """Empties the input line with Up/Down ready for the next key.

    prompt_toolkit's `Buffer.reset` drops the working lines and reloads the history in a
    task started by the next repaint; a key handled before that (Up pressed right after
    Enter, while an answer is printed) finds no history. The history is already loaded
    here, so the working lines are rebuilt from it at once. This reaches into the
    buffer's working lines (no public setter); tests/console/test_prompt_history.py
    fails if a prompt_toolkit release changes them."""
    loading = buffer._load_history_task
    buffer.reset()
    if loading is None or not loading.done():
        return  # not loaded yet: the next repaint loads it, as prompt_toolkit does
    lines = buffer.history.get_strings()  # oldest first
    buffer._working_lines = collections.deque([*lines, ""])
    buffer.working_index = len(lines)
    buffer._load_history_task = loading  # loaded: the next repaint must not add it again


def _invalidate() -> None:
    app = get_app_or_none()
    if app is not None and app.is_running:
        app.invalidate()


@contextlib.asynccontextmanager
async def prompt_screen(data_dir: Path, user_name: str, stop: asyncio.Event) -> AsyncIterator[PromptScreen]:
    """A PromptScreen with stdout and stderr printed above its prompt while it is open."""
    history = open_history(data_dir, user_name)
    raw = sys.stdout
    output = create_output(stdout=raw)
    above = AbovePrompt(raw, output)
    try:
        with contextlib.redirect_stdout(cast(TextIO, above)), \
                contextlib.redirect_stderr(cast(TextIO, above)):
            yield PromptScreen(above, output, history, stop)
    finally:
        await above.drain()
