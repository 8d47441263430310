"""What the bot keeps about a user outside the database: videos saved on this machine,
the terminal chat's input history, and lines of the log file."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

# Rotated logs: ltx-bot.log, ltx-bot.log.1 ... (bot.logfile keeps 3 old ones).
LOG_GLOB = "ltx-bot.log*"
# Shorter texts would match unrelated lines ("a", "ok"): a prompt is scrubbed from the
# log only from this length on (the database loses it whatever its length).
MIN_NEEDLE = 4


def history_path(data_dir: Path, user_name: str) -> Path:
    """data_dir/history/<user>.txt, as the terminal chat names it (its adapter has the same
    function; a test keeps the two in step)."""
    return data_dir / "history" / f"{safe_name(user_name)}.txt"


def safe_name(name: str) -> str:
    """A user's name or id as a file name: no separators, no leading dot."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "user"


def remove_files(paths: Iterable[Path]) -> int:
    """Delete the files that exist; returns how many were deleted."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc.strerror)
    return removed


def needles_for(user_key: str, platform_id: str, name: str, prompts: Iterable[str]) -> list[str]:
    """The texts whose lines go: the user's key and id, their name, their prompts."""
    found = {user_key, platform_id, name, *prompts}
    return sorted(n for n in found if len(n.strip()) >= MIN_NEEDLE)


def scrub_logs(log_dir: Path, needles: list[str]) -> int:
    """Rewrite every log file in `log_dir` without the lines that hold one of `needles`;
    returns how many lines went. Each file is replaced whole (a temporary file renamed
    over it), so a reader never sees half a file; a line another process appends to
    the old file during the rewrite is lost."""
    if not needles or not log_dir.is_dir():
        return 0
    dropped = 0
    for path in sorted(log_dir.glob(LOG_GLOB)):
        dropped += _scrub_file(path, needles)
    return dropped


def _scrub_file(path: Path, needles: list[str]) -> int:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except OSError as exc:
        log.warning("could not read %s to scrub it: %s", path, exc.strerror)
        return 0
    lowered = [n.lower() for n in needles]
    kept = [line for line in lines if not any(n in line.lower() for n in lowered)]
    if len(kept) == len(lines):
        return 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".scrub-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(kept)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(lines) - len(kept)
