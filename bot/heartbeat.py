"""Heartbeats: each long-running `ltx-bot` process (`run`, `chat`) says it is alive.

One file per process, `<data_dir>/heartbeats/<host>-<pid>.json` (`{"host", "pid",
"command", "time"}`, mode 0600), rewritten every `BEAT_SECONDS` by the process's own
event loop, so a hung loop stops beating. `ltx-bot health` passes when any of them
is fresh. A process removes only its own file when it stops; the files of processes
that died without removing theirs are ignored once stale, and removed by the next
start on the same host once their pid is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.private_files import write_private
from bot.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BEAT_SECONDS = 15.0
MAX_AGE = 90.0
FOLDER = "heartbeats"


@dataclass(frozen=True)
class Beat:
    """One process's last heartbeat."""

    path: Path
    host: str
    pid: int
    command: str
    time: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.time)

    def who(self) -> str:
        return f"`{self.command}` (pid {self.pid} on {self.host})"


def folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


def read(path: Path) -> Beat | None:
    """The beat in `path`, or None when it is not one (a stray file, an old format)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Beat(path, str(data["host"]), int(data["pid"]), str(data["command"]),
                    float(data["time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def beats(data_dir: Path) -> list[Beat]:
    """Every readable heartbeat, freshest first."""
    found = [beat for path in sorted(folder(data_dir).glob("*.json"))
             if (beat := read(path)) is not None]
    return sorted(found, key=lambda b: b.time, reverse=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def clean_dead(data_dir: Path, host: str) -> list[Path]:
    """Remove this host's heartbeats whose process is gone (other hosts' pids mean nothing here)."""
    removed: list[Path] = []
    for beat in beats(data_dir):
        if beat.host == host and not pid_alive(beat.pid):
            with contextlib.suppress(FileNotFoundError):
                beat.path.unlink()
                removed.append(beat.path)
    return removed


class Heartbeat:
    """This process's heartbeat file: `write()` it now, `remove()` it (only it) at the end."""

    def __init__(self, data_dir: Path, command: str, *, host: str | None = None,
                 pid: int | None = None) -> None:
        self.data_dir = data_dir
        self.command = command
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.path = folder(data_dir) / f"{self.host}-{self.pid}.json"

    def write(self) -> None:
        """Replace the file in one rename, so `health` never reads half of it."""
        body = json.dumps({"host": self.host, "pid": self.pid, "command": self.command,
                           "time": time.time()})
        # 0600 from the start (and its folder 0700): it names this host and process.
        write_private(self.path, body.encode())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    async def beat_once(self) -> None:
        try:
            await asyncio.to_thread(self.write)
        except OSError as exc:
            log.warning("cannot write heartbeat %s: %s", self.path, exc.strerror)

    async def beat(self) -> None:
        """Rewrite the file every BEAT_SECONDS until cancelled."""
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            await self.beat_once()


@contextlib.asynccontextmanager
async def beating(data_dir: Path, command: str) -> AsyncIterator[Heartbeat]:
    """Beat while the block runs; clean up dead processes' beats first and our own after."""
    heartbeat = Heartbeat(data_dir, command)
    with contextlib.suppress(OSError):
        for path in clean_dead(data_dir, heartbeat.host):
            log.info("removed the heartbeat of a process that is gone: %s", path.name)
    await heartbeat.beat_once()  # before the block: `health` passes as soon as anything runs
    task = asyncio.create_task(heartbeat.beat(), name="heartbeat")
    try:
        yield heartbeat
    finally:
        await cancel_and_wait(task)
        with contextlib.suppress(OSError):
            heartbeat.remove()


def check(data_dir: Path, *, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """(ok, what): ok when any process's heartbeat is at most `max_age` seconds old."""
    now = time.time() if now is None else now
    found = beats(data_dir)
    if not found:
        return False, (f"no heartbeat in {folder(data_dir)}: no `ltx-bot run` or `ltx-bot chat` "
                       "is running")
    fresh = [b for b in found if b.age(now) <= max_age]
    if not fresh:
        newest = found[0]
        return False, (f"the newest heartbeat, of {newest.who()}, is {newest.age(now):.0f} s old "
                       f"(limit {max_age:g} s): the bot is stuck or stopped")
    alive = ", ".join(f"{b.who()} {b.age(now):.0f} s ago" for b in fresh)
    return True, f"heartbeat of {alive}"
