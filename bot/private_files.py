"""Files and directories only their owner can read: every file the bot makes is 0600 and
every directory 0700, whatever the umask.

The database holds users' ids, prompts and balances; logs, the terminal chat's
history, heartbeats, backups and saved videos say who asked for what. So every place
that creates one goes through here, and every `ltx-bot` command also narrows its umask
(`restrict_umask`) so that files made by libraries (SQLite's -wal and -shm, video
encoders, temporary files) are private too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
PRIVATE_UMASK = 0o077


def restrict_umask() -> int:
    """Make every later file of this process 0600 at most and every directory 0700 at most
    (a umask of 077); returns the umask it replaces."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> Path:
    """Create `path` (and its missing parents) with mode 0700. `Path.mkdir(parents=True)`
    would make the parents with the umask's mode, so each missing level is made here.
    A directory that already exists is left as it is: it may be the operator's own
    (a shared volume, /tmp)."""
    missing: list[Path] = []
    at = path
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            level.mkdir(mode=DIR_MODE)
            os.chmod(level, DIR_MODE)  # mkdir's mode passes through the umask
    return path


def tighten(path: Path) -> None:
    """Narrow a file the bot made earlier (perhaps by an older version, or by hand) to 0600."""
    # Best effort: a file another user owns (a volume made by hand) cannot be narrowed by
    # us, and that must not stop the bot; it is the operator's to fix.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)


def create_private(path: Path) -> bool:
    """Create `path` empty with mode 0600 unless it exists; True when this call made it."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private(path: Path, flags: int) -> int:
    """os.open with O_CREAT and mode 0600 (also for a file that existed with a wider mode)."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        with contextlib.suppress(PermissionError):  # another user's file: as in `tighten`
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (a reader sees the old file or the new one),
    the new file 0600 from its first byte."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def copy_private(src: Path, dest: Path) -> None:
    """Copy `src`'s bytes to a new file `dest` made 0600 (shutil.copyfile would use the umask)."""
    private_dir(dest.parent)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
        shutil.copyfileobj(inp, out, 1024 * 1024)
