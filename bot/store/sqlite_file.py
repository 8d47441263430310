"""The SQLite file itself: made private and whole, refused when empty or damaged.

A new store is built under a temporary name and linked into place only when its schema
is complete, so the configured path never holds a file the bot left half-made: an
existing 0-byte file there is someone else's (a failed copy, a full disk, `touch`), and
opening it as a new, empty store would silently lose every balance. It is refused, as is
a file that fails SQLite's `PRAGMA quick_check`, with one message that says what to do.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from bot.private_files import create_private, private_dir, tighten

BACKUP_HINT = "`ltx-bot backup DEST` makes a backup while the bot runs"


class DatabaseFileRefused(Exception):
    """The file at the configured path is not a usable store; the text says what to do."""


def refuse_empty(path: Path) -> None:
    """Raise DatabaseFileRefused when `path` exists and holds no bytes."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        raise DatabaseFileRefused(
            f"the database file {path} is empty (0 bytes): it is not a store the bot made "
            "(a failed copy, a full disk?), and using it would start over with no balances "
            f"or jobs. Restore your latest backup to {path} ({BACKUP_HINT}), or delete "
            "the empty file to start with a new, empty store.")


def damaged(path: Path, why: str) -> DatabaseFileRefused:
    return DatabaseFileRefused(
        f"the database file {path} is damaged ({why}). Stop every ltx-bot process on it, "
        f"then restore your latest backup to {path} ({BACKUP_HINT}; on a damaged file it "
        f"fails), or move the file away to start with a new, empty store.")


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """SQLite's quick_check (pages, records and free lists; no index contents): linear in
    the file's size, a few ms for a bot's store. Raises DatabaseFileRefused on damage."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc)) from None
    found = [str(row[0]) for row in rows]
    if found != ["ok"]:
        raise damaged(path, "; ".join(found[:3]) + (" ..." if len(found) > 3 else ""))


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite's error means the file is not (or no longer) a database."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def open_checked(path: Path, connect: Callable[[Path], sqlite3.Connection],
                 prepare: Callable[[sqlite3.Connection], object]) -> sqlite3.Connection:
    """`connect` to the store at `path` and `prepare` it (migrate), building a new one in
    place when there is none; refused when the file is empty or damaged."""
    refuse_empty(path)
    if not path.exists():
        _build(path, connect, prepare)
    tighten(path)  # made by an older version (or by hand) with the umask's mode
    conn = connect(path)
    try:
        quick_check(conn, path)
        prepare(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_damage(exc):
            raise damaged(path, str(exc)) from None
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _build(path: Path, connect: Callable[[Path], sqlite3.Connection],
           prepare: Callable[[sqlite3.Connection], object]) -> None:
    """A new store under a temporary name, linked to `path` once complete. Of several
    processes starting at once, one link wins and the others open its file."""
    private_dir(path.parent)
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.new")
    create_private(fresh)  # 0600 before SQLite opens it: the -wal/-shm take its mode
    try:
        conn = connect(fresh)
        try:
            prepare(conn)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()  # the last connection: SQLite folds the WAL in and removes it
        _publish(fresh, path)
    finally:
        for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
            leftover.unlink(missing_ok=True)


def _publish(fresh: Path, path: Path) -> None:
    try:
        os.link(fresh, path)  # never replaces: a store another process linked first wins
    except FileExistsError:
        pass
    except OSError:
        # A filesystem without hard links: a rename, checked first (a narrow race only
        # between processes creating the store at the same moment on such a filesystem).
        if not path.exists():
            os.replace(fresh, path)
