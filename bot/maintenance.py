"""Looking after the store from the command line: `health`, `backup` and `migrate-store`,
for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot import heartbeat
from bot.config import Settings
from bot.store import open_store
from bot.store.transfer import CopyRefused, backup_postgres, copy_sqlite_to_postgres


def health(settings: Settings, *, max_age: float, require_heartbeat: bool) -> tuple[bool, str]:
    """(healthy, what): the store opens, and some `run` or `chat` process is alive."""
    ok, what = _postgres_health(settings) if settings.database.url else _sqlite_health(settings)
    if not ok or not require_heartbeat:
        return ok, what
    # Any process will do: `run`, or `chat` (as in `docker run -it ... chat`), each its own file.
    alive, beat = heartbeat.check(settings.data_dir, max_age=max_age)
    return alive, f"ok: {what}, {beat}" if alive else beat


def _postgres_health(settings: Settings) -> tuple[bool, str]:
    async def probe() -> str:
        store = await open_store(settings.database)
        try:
            h = await store.health()
        finally:
            await store.close()
        return f"{h.backend} {h.where} opens (schema v{h.schema_version})"

    try:
        return True, asyncio.run(probe())
    except Exception as exc:  # any failure to reach the server is the answer, not a crash
        return False, f"the PostgreSQL database does not open: {type(exc).__name__}: {exc}"


def backup(settings: Settings, dest: Path) -> tuple[bool, str]:
    """A consistent copy of the store, safe while bots run (pg_dump for PostgreSQL)."""
    if settings.database.url:
        return backup_postgres(settings.database.url.get_secret_value(), dest)
    return _sqlite_backup(settings, dest)


def migrate_store(source: str, target: str) -> tuple[bool, str]:
    """Copy a SQLite store (`sqlite:PATH` or a path) into an empty PostgreSQL database."""
    path = source.removeprefix("sqlite:")
    try:
        report = copy_sqlite_to_postgres(path, target)
    except CopyRefused as exc:
        return False, str(exc)
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items()))
    audit = "ledger audit clean" if not report.audit else f"ledger audit (same on both): {report.audit}"
    return True, (f"copied {path} into {report.target} at schema v{report.schema_version}: "
                  f"{rows}; {audit}")


def _sqlite_health(settings: Settings) -> tuple[bool, str]:
    db = Path(settings.database.path)
    if not db.is_file():
        return False, f"no database at {db} (has `ltx-bot run` started?)"
    try:
        # Read-only: a health probe must never create, migrate or lock the bot's database.
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"database {db} does not open: {exc}"
    return True, f"database {db} opens"


def _sqlite_backup(settings: Settings, dest: Path) -> tuple[bool, str]:
    """SQLite's online backup: a consistent copy even while `run` writes (WAL included)."""
    db = Path(settings.database.path)
    if not db.is_file():
        return False, f"no database at {db}"
    if dest.exists():
        return False, f"{dest} exists; choose a new file name"
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
                (check,) = target.execute("PRAGMA integrity_check").fetchone()
            finally:
                target.close()
        finally:
            source.close()
        if check != "ok":
            partial.unlink(missing_ok=True)
            return False, f"the copy failed its integrity check: {check}"
        # Renamed only when complete, so DEST is never a half-written database.
        partial.rename(dest)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        return False, f"backup of {db} failed: {exc}"
    return True, f"backed up {db} to {dest} ({dest.stat().st_size} bytes)"


