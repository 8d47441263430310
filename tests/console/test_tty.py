"""`ltx-bot chat` in a real pseudo-terminal: line editing, history, completion, progress
above the input line, Ctrl-C and Ctrl-D.

The terminal here answers cursor position requests as a real one does, and keeps a
screen model (tests/console/screen.py), so tests check what a person would see.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import stat
import struct
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.console.helpers import BIN, clean_env, decoded_frames, write_config
from tests.console.screen import Screen

BOUND = 60.0  # an upper bound for each step, never an expectation of speed
ROWS, COLUMNS = 30, 100
CPR_REQUEST = b"\x1b[6n"


class Terminal:
    def __init__(self, args: list[str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become ltx-bot with the pty as its terminal
            os.chdir(cwd)
            os.execve(str(BIN), [str(BIN), *args], clean_env(COLUMNS=str(COLUMNS), TERM="xterm"))
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.output = b""
        self.screen = Screen(ROWS, COLUMNS)
        self._answered = 0
        self._fed = 0

    def _take(self, chunk: bytes) -> None:
        self.output += chunk
        # Feed whole UTF-8 characters only: a chunk may end inside one.
        text = self.output[self._fed :].decode(errors="ignore")
        complete = len(text.encode())
        self.screen.feed(text)
        self._fed += complete
        # A real terminal answers "where is the cursor?" (prompt_toolkit asks before drawing).
        while self.output.count(CPR_REQUEST) > self._answered:
            self._answered += 1
            os.write(self.fd, f"\x1b[{self.screen.row + 1};{self.screen.column + 1}R".encode())

    def read_while(self, pending: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + BOUND
        while pending():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} in:\n{self.plain}\nscreen:\n" + "\n".join(self.screen.display))
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ended without {what}:\n{self.plain}")
                self._take(chunk)

    def read_until(self, token: bytes, count: int = 1) -> None:
        self.read_while(lambda: self.output.count(token) < count, repr(token))

    def shows(self, text: str) -> None:
        """Until the screen shows `text`: a live line above the prompt is redrawn only where
        it changed, so its words need not appear whole in the bytes."""
        self.read_while(lambda: not any(text in row for row in self.screen.display), repr(text))

    def typed(self, line: str) -> Callable[[], bool]:
        """While the input line does not read `> line` (a condition for `read_while`)."""
        return lambda: not self.screen.cursor_line.startswith(f"> {line}")

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    @property
    def plain(self) -> str:
        """What was written, without escape sequences and with line ends made plain."""
        text = self.output.decode(errors="replace")
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def wait(self) -> int:
        # Drain what is left so the child never blocks on a full terminal buffer.
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], BOUND)
                if not ready or not (chunk := os.read(self.fd, 65536)):
                    break
                self._take(chunk)
            except OSError:
                break
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        os.kill(self.pid, 9)


def chat(tmp_path: Path, user: str = "ann", **sections: dict[str, object]) -> Terminal:
    config = write_config(tmp_path, **sections)
    term = Terminal(["chat", "--config", str(config), "--user", user], tmp_path)
    return term


@pytest.mark.timeout(120)
def test_progress_stays_above_the_line_being_typed(tmp_path: Path) -> None:
    term = chat(tmp_path, backend={"sim_run_seconds": 3.0})
    try:
        term.read_until(b"Type a prompt")
        term.write(b"a paper boat --seconds 2\r")
        term.shows("#1 Generating")
        term.write(b"a fox")
        # The job's live line above, what is typed below it, intact.
        term.read_while(lambda: not (term.screen.cursor_line == "> a fox"
                                     and "#1 Generating" in term.screen.text(term.screen.row - 1)),
                        "progress above '> a fox'")
        term.write(b"\x15")  # Ctrl-U: forget the line
        term.read_until(b"Delete: /delete 1")
        term.write(b"\x04")  # Ctrl-D: end of input
        assert term.wait() == 0
    except BaseException:
        term.kill()
        raise
    text = term.plain
    assert "ltx-bot console as ann" in text
    # Printed above the prompt: the line may follow the prompt's own bytes, so search it.
    [shown] = re.findall(r"saved: (\S+\.mp4)", text)
    assert decoded_frames(tmp_path / shown) > 0
    # The ending once: the summary with the video, not the final status card after it.
    assert text.count("“a paper boat”") == 1, text
    # Logs go to the file: no INFO line in the chat.
    assert " INFO " not in text and "the log is in" in text


@pytest.mark.timeout(150)
def test_editing_history_completion_and_clear(tmp_path: Path) -> None:
    term = chat(tmp_path)
    try:
        term.read_until(b"Type a prompt")
        term.write(b"quota\r")  # a command word without a slash
        term.read_until(b"Today:")
        term.write(b"\x1b[A\r")  # Up recalls it
        term.read_until(b"Today:", 2)
        term.write(b"/quoa\x1b[Dt\r")  # Left, then a letter inserted: /quota
        term.read_until(b"Today:", 3)
        term.write(b"/jo\t")  # Tab completes the command word
        term.read_while(term.typed("/jobs"), "'/jobs' completed")
        term.write(b"\r")
        term.read_until(b"You have no jobs yet")
        term.write(b"quote a cat --seco\t")  # and a flag
        term.read_while(term.typed("quote a cat --seconds"), "'--seconds' completed")
        term.write(b" 2\r")
        term.read_until(b"credits ($")
        term.write(b"oops\x03")  # Ctrl-C with text clears the line, and the chat goes on
        term.write(b"help\r")
        term.read_until(b"Here you can also type")
        term.write(b"\x0c")  # Ctrl-L clears the screen
        term.read_while(lambda: term.screen.cleared == 0, "a cleared screen")
        term.write(b"quit\r")
        assert term.wait() == 0
    except BaseException:
        term.kill()
        raise
    text = term.plain
    assert "Job #" not in text and "> oops" not in text
    history = tmp_path / "history" / "ann.txt"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    kept = history.read_text()
    for line in ("quota", "/quota", "/jobs", "quote a cat --seconds 2", "help", "quit"):
        assert f"\n+{line}\n" in kept, kept
    assert "oops" not in kept

    # The next session of the same user starts with that history.
    term = chat(tmp_path)
    try:
        term.read_until(b"Type a prompt")
        term.write(b"\x1b[A\x1b[A\x1b[A\r")  # quit, help, then the quote
        term.read_until(b"credits ($")
        term.write(b"\x04")
        assert term.wait() == 0
    except BaseException:
        term.kill()
        raise


@pytest.mark.timeout(120)
def test_cancel_is_said_once(tmp_path: Path) -> None:
    term = chat(tmp_path, backend={"sim_queue_seconds": 60.0})
    try:
        term.read_until(b"Type a prompt")
        term.write(b"a paper boat --seconds 2\r")
        term.shows("#1 In fal's queue")
        term.write(b"/cancel 1\r")
        term.read_until(b"refunded")
        term.write(b"/jobs\r")
        term.read_until(b"#1 cancelled")
        term.write(b"\x04")
        assert term.wait() == 0
    except BaseException:
        term.kill()
        raise
    assert term.plain.count("refunded") == 2, term.plain  # the card, and /jobs
    assert "Cancelled by ann" in term.plain


@pytest.mark.timeout(90)
def test_ctrl_c_mid_job_stops_and_keeps_the_job(tmp_path: Path) -> None:
    term = chat(tmp_path, backend={"sim_run_seconds": 60.0})
    try:
        term.read_until(b"Type a prompt")
        term.write(b"a paper boat --seconds 2\r")
        term.shows("#1 Generating")
        term.write(b"\x03")  # Ctrl-C on an empty line: stop
        term.read_until(b"resume on the next start")
        assert term.wait() == 0
    except BaseException:
        term.kill()
        raise
    text = term.plain
    assert "stopped: unfinished job(s) #1 are kept" in text
    assert "saved: " not in text and "Traceback" not in text


@pytest.mark.timeout(90)
def test_ctrl_d_waits_for_the_jobs_and_ctrl_c_stops_waiting(tmp_path: Path) -> None:
    term = chat(tmp_path, backend={"sim_run_seconds": 60.0})
    try:
        term.read_until(b"Type a prompt")
        term.write(b"a paper boat --seconds 2\r")
        term.shows("#1 Generating")
        term.write(b"\x04")  # Ctrl-D: leave once the job is done
        term.read_while(lambda: not any("Waiting for your jobs" in row for row in term.screen.display)
                        or not any(row.startswith("#1 Generating") for row in term.screen.display),
                        "the job's progress while waiting")
        term.write(b"\x03")  # Ctrl-C: do not wait after all
        term.read_until(b"resume on the next start")
        assert term.wait() == 0
    except BaseException:
        term.kill()
        raise
    assert "stopped: unfinished job(s) #1 are kept" in term.plain
