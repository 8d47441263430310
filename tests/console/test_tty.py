"""`ltx-bot chat` in a real pseudo-terminal: the live progress bar path, Ctrl-D to leave."""

from __future__ import annotations

import os
import pty
import re
import select
import time
from pathlib import Path

import pytest

from tests.console.helpers import BIN, clean_env, decoded_frames, saved_videos, write_config

BOUND = 60.0  # an upper bound for each step, never an expectation of speed


class Terminal:
    def __init__(self, args: list[str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become ltx-bot with the pty as its terminal
            os.chdir(cwd)
            os.execve(str(BIN), [str(BIN), *args], clean_env(COLUMNS="100", TERM="xterm"))
        self.output = b""

    def read_until(self, token: bytes) -> None:
        deadline = time.monotonic() + BOUND
        while token not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {token!r} in:\n{self.output.decode(errors='replace')}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ended without {token!r}:\n{self.output.decode(errors='replace')}")
                self.output += chunk

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self) -> int:
        # Drain what is left so the child never blocks on a full terminal buffer.
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], BOUND)
                if not ready or not (chunk := os.read(self.fd, 65536)):
                    break
                self.output += chunk
            except OSError:
                break
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


@pytest.mark.timeout(90)
def test_terminal_chat_shows_a_live_bar_and_saves(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    term = Terminal(["chat", "--config", str(config), "--user", "ann"], tmp_path)
    try:
        term.read_until(b"Type a prompt")
        term.write(b"a paper boat --seconds 2\n")
        term.read_until(b"Delete: /delete 1")
        term.write(b"\x04")  # Ctrl-D: end of input
        assert term.wait() == 0
    except BaseException:
        os.kill(term.pid, 9)
        raise
    text = term.output.decode(errors="replace")
    assert "ltx-bot console as ann" in text
    # rich redraws the bar in place: carriage returns / erase-line codes, not one line per change.
    assert "\x1b[2K" in text
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r\n", "\n").replace("\r", "\n")
    [path] = saved_videos(plain, tmp_path).values()
    assert decoded_frames(path) > 0


@pytest.mark.timeout(90)
def test_ctrl_c_mid_job_stops_and_keeps_the_job(tmp_path: Path) -> None:
    config = write_config(tmp_path, backend={"sim_run_seconds": 60.0})
    term = Terminal(["chat", "--config", str(config), "--user", "ann"], tmp_path)
    try:
        term.read_until(b"Type a prompt")
        term.write(b"a paper boat --seconds 2\n")
        term.read_until(b"Generating")
        term.write(b"\x03")  # Ctrl-C: the terminal sends SIGINT
        term.read_until(b"resume on the next start")
        assert term.wait() == 0
    except BaseException:
        os.kill(term.pid, 9)
        raise
    text = term.output.decode(errors="replace")
    assert "stopped: unfinished job(s) #1 are kept" in text
    assert "saved: " not in text and "Traceback" not in text
