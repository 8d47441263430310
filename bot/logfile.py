"""Log handlers for a chat in this terminal: the log into a private file under the data
directory, and only warnings onto the screen, so INFO lines never land inside the chat.

`ltx-bot chat` (and `run` when it falls back to the terminal) hands `chat_handlers`
to `bot.cli.setup_logging`.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.private_files import open_private, private_dir

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024  # per file; with BACKUPS older ones, at most 20 MiB in all
BACKUPS = 3


def log_file_path(settings: Settings) -> Path:
    """data_dir/logs/ltx-bot.log."""
    return settings.data_dir / "logs" / "ltx-bot.log"


class PrivateFileHandler(RotatingFileHandler):
    """A rotating log file readable by its owner only (0600): logs name users and prompts.
    Several processes may append to one file; each record is one write."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        super().__init__(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")

    def _open(self) -> Any:
        # Made 0600 from the start, also the fresh file after each rotation (rotated files
        # are renamed, so they keep it); a file made before with a wider mode is narrowed.
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


class ScreenHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record: a terminal UI that
    draws stderr above its input line (prompt_toolkit's proxy) receives the warnings."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def chat_handlers(settings: Settings) -> list[logging.Handler]:
    """The file (at the configured level) and the screen (warnings only), with the file's
    path said once on stderr; [] when the file cannot be written (said as a warning)."""
    path = log_file_path(settings)
    try:
        file = PrivateFileHandler(path)
    except OSError as exc:
        log.warning("cannot write the log file %s (%s): logging here instead", path, exc.strerror)
        return []
    file.setLevel(settings.logging.level)
    screen = ScreenHandler()
    screen.setLevel(max(logging.WARNING, logging.getLevelName(settings.logging.level)))
    sys.stderr.write(f"ltx-bot: the log is in {path.resolve()} (only warnings show here)\n")
    sys.stderr.flush()
    return [screen, file]
