"""Temporary files: one root, a locked directory per process, leftovers swept on restart.

Several bot processes may share the root: each holds an flock on its own directory
for its lifetime, so a sweep can tell a dead process's leftovers from live work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bot.config import MediaSettings
from bot.private_files import private_dir

ROOT_NAME = "ltx-bot"
_held_locks: dict[Path, int] = {}
_held_guard = threading.Lock()  # work_dir runs on the event loop and in worker threads


def temp_root(settings: MediaSettings) -> Path:
    base = Path(settings.tmp_dir) if settings.tmp_dir else Path(tempfile.gettempdir())
    return base / ROOT_NAME


def work_dir(settings: MediaSettings) -> Path:
    """This process's scratch directory. It holds an flock for the process's lifetime, so a
    restart (or another bot process sharing the root) can tell leftovers from live work."""
    root = temp_root(settings)
    with _held_guard:
        for path in _held_locks:
            if path.parent == root and path.is_dir():
                return path
        private_dir(root)
        path = root / f"p{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir(mode=0o700)  # inputs and videos of users' jobs: nobody else's
        fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held_locks[path] = fd
        return path


def release_work_dir(settings: MediaSettings) -> None:
    """At a clean shutdown: drop this process's lock and its scratch directory, so the next
    start has nothing stale to sweep. (After a crash, `cleanup_stale` does it instead.)"""
    root = temp_root(settings)
    with _held_guard:
        for path in [p for p in _held_locks if p.parent == root]:
            os.close(_held_locks.pop(path))
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(settings: MediaSettings) -> Iterator[Path]:
    """A fresh directory inside `work_dir` for one job, removed afterwards, success or not."""
    path = work_dir(settings) / uuid.uuid4().hex[:12]
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def discard(path: Path) -> None:
    """Remove a file that may not be there; a leftover is swept at the next start anyway."""
    with contextlib.suppress(OSError):
        path.unlink()


def cleanup_stale(settings: MediaSettings) -> int:
    """Remove what dead processes left under the temp root. Returns how many entries went.
    A directory whose lock can be taken has no live owner; loose files are stale once older
    than this process."""
    root = temp_root(settings)
    if not root.is_dir():
        return 0
    born = _process_start()
    return sum(1 for entry in list(root.iterdir())
               if entry not in _held_locks and _remove_if_stale(entry, born))


def _is_real_dir(entry: Path) -> bool:
    return entry.is_dir() and not entry.is_symlink()


def _remove_if_stale(entry: Path, born: float) -> bool:
    if _is_real_dir(entry) and (entry / ".lock").exists():
        return _remove_if_unlocked(entry)
    try:
        if entry.lstat().st_mtime >= born:
            return False
    except OSError:
        return False
    if _is_real_dir(entry):
        shutil.rmtree(entry, ignore_errors=True)
    else:
        discard(entry)
    return True


def _remove_if_unlocked(entry: Path) -> bool:
    try:
        fd = os.open(entry / ".lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live process owns it
    else:
        shutil.rmtree(entry, ignore_errors=True)
        return True
    finally:
        os.close(fd)


_IMPORTED_AT = time.time()


def _process_start() -> float:
    """When this process started (Linux /proc), else when this module was imported."""
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT
