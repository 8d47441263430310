"""Looking after the store from the command line: `health`, `backup` and `migrate-store`,
for SQLite and PostgreSQL alike.

An empty (0-byte) or damaged SQLite file raises `DatabaseFileRefused` (the command line
prints its text and exits 2). Plain `health` stays cheap (Docker runs it every 30 s);
`health --deep` also reads every page (SQLite's quick_check) or every table (PostgreSQL).
Both name every active pause of video generation (`bot.pause`), read in one query: a
process can be alive and healthy while fal refuses the operator's account.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path

from bot import heartbeat
from bot.config import Settings
from bot.private_files import create_private, private_dir
from bot.store import SqlTx, open_store
from bot.store.codec import Row, decode_time
from bot.store.sqlite_file import damaged, is_damage, quick_check, refuse_empty
from bot.store.transfer import CopyRefused, backup_postgres, copy_sqlite_to_postgres


def health(settings: Settings, *, max_age: float, require_heartbeat: bool,
           deep: bool = False) -> tuple[bool, str]:
    """(healthy, what): the store opens (and with `deep`, every page or table reads), and
    some `run` or `chat` process is alive."""
    if settings.database.url:
        ok, what = _postgres_health(settings, deep)
    else:
        ok, what = _sqlite_health(settings, deep)
    if not ok or not require_heartbeat:
        return ok, what
    # Any process will do: `run`, or `chat` (as in `docker run -it ... chat`), each its own file.
    alive, beat = heartbeat.check(settings.data_dir, max_age=max_age)
    return alive, f"ok: {what}, {beat}" if alive else beat


def _postgres_health(settings: Settings, deep: bool) -> tuple[bool, str]:
    async def probe() -> str:
        store = await open_store(settings.database)
        try:
            h = await store.health()
            read = await store.run(_count_tables, write=False) if deep else None
            paused = await store.run(lambda tx: tx.fetch(PAUSES_SQL, ()), write=False)
        finally:
            await store.close()
        tables = f", every table reads ({read})" if read is not None else ""
        return f"{h.backend} {h.where} opens (schema v{h.schema_version}){tables}{_pauses(paused)}"

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
    refuse_empty(Path(path))
    try:
        report = copy_sqlite_to_postgres(path, target)
    except CopyRefused as exc:
        return False, str(exc)
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items()))
    audit = "ledger audit clean" if not report.audit else f"ledger audit (same on both): {report.audit}"
    return True, (f"copied {path} into {report.target} at schema v{report.schema_version}: "
                  f"{rows}; {audit}")


# One cheap query: the pauses table holds a row or two at most.
PAUSES_SQL = "SELECT scope, kind, reason, since FROM pauses ORDER BY since, scope, kind"


def _pauses(rows: Iterable[Row]) -> str:
    """"; paused: ..." naming each active pause (scope, kind, reason, since), or ""."""
    parts = []
    for row in rows:
        since = decode_time(row["since"])
        when = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if since else "?"
        where = "everywhere" if row["scope"] == "*" else row["scope"]
        parts.append(f"{where} ({row['kind']}) since {when}: {row['reason'] or 'no reason given'}")
    return f"; video generation paused: {'; '.join(parts)}" if parts else ""


def _sqlite_pauses(conn: sqlite3.Connection) -> str:
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(PAUSES_SQL).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return ""  # a store from before pauses existed (the next start migrates it)
        raise
    return _pauses(rows)


def _count_tables(tx: SqlTx) -> str:
    """Reads every row of every table of the store's schema: a damaged page or a missing
    relation file fails here. A bot's tables are small, so this takes well under a second."""
    names = [r["table_name"] for r in tx.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE' ORDER BY table_name", ())]
    counts = [f"{name} {tx.fetch(f'SELECT count(*) AS n FROM {name}', ())[0]['n']}"
              for name in names]
    return ", ".join(counts)


def _sqlite_health(settings: Settings, deep: bool) -> tuple[bool, str]:
    db = Path(settings.database.path)
    if not db.is_file():
        return False, f"no database at {db} (has `ltx-bot run` started?)"
    refuse_empty(db)
    try:
        # Read-only: a health probe must never create, migrate or lock the bot's database.
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if deep:
                quick_check(conn, db)
            paused = _sqlite_pauses(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise damaged(db, str(exc)) from None
        return False, f"database {db} does not open: {exc}"
    return True, f"database {db} opens{', quick_check ok' if deep else ''}{paused}"


def _sqlite_backup(settings: Settings, dest: Path) -> tuple[bool, str]:
    """SQLite's online backup: a consistent copy even while `run` writes (WAL included)."""
    db = Path(settings.database.path)
    if not db.is_file():
        return False, f"no database at {db}"
    refuse_empty(db)
    if dest.exists():
        return False, f"{dest} exists; choose a new file name"
    private_dir(dest.parent)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)  # 0600 before SQLite writes to it: a backup holds every balance
    try:
        check = _copy_checked(db, partial)
        if check != "ok":
            partial.unlink(missing_ok=True)
            return False, f"the copy failed its integrity check: {check}"
        # Renamed only when complete, so DEST is never a half-written database.
        partial.rename(dest)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
            raise damaged(db, str(exc)) from None
        return False, f"backup of {db} failed: {exc}"
    except BaseException:
        partial.unlink(missing_ok=True)  # a damaged source (refused) or an interrupt
        raise
    return True, f"backed up {db} to {dest} ({dest.stat().st_size} bytes)"




def _copy_checked(db: Path, partial: Path) -> str:
    """Copy `db` into `partial` with SQLite's online backup; the copy's integrity_check."""
    source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        quick_check(source, db)  # a copy of a damaged store would only hide the damage
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            (check,) = target.execute("PRAGMA integrity_check").fetchone()
        finally:
            target.close()
    finally:
        source.close()
    return str(check)
