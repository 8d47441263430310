"""Moving a store's data out: a SQLite store copied into an empty PostgreSQL database
(`ltx-bot migrate-store`), and a PostgreSQL backup with pg_dump (`ltx-bot backup`).

Both are synchronous, for the CLI to run in a thread, and both say what they did
or why they would not in plain words (`CopyRefused`, the backup's message).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from bot.private_files import create_private, private_dir

from .audit import audit
from .dialect import POSTGRES, SQLITE
from .postgres import PgConnection, connect, describe_url, migrate
from .protocol import utc_now
from .queries import SqlTx
from .schema import SCHEMA_VERSION

# Every table, parents before children (jobs.owner_key -> users, ledger -> jobs).
TABLES = ("users", "jobs", "ledger", "usage_totals", "seen_events",
          "workspace_settings", "admin_audit", "safety_events", "installations", "reports",
          "alerts_sent", "modlog_posts", "forget_requests", "block_marks")
IDENTITIES = ("jobs", "ledger", "admin_audit", "safety_events")  # tables whose id PostgreSQL numbers from a sequence
# What must be equal before and after: the ledger's sums (USD rounded: a float sum
# depends on the order it is added in) beside the audit.
_FINGERPRINT = """SELECT COUNT(*) AS rows, COALESCE(SUM(credits), 0) AS credits,
                         COALESCE(SUM(bonus), 0) AS bonus, COALESCE(SUM(usd), 0) AS usd
                  FROM ledger"""


class CopyRefused(Exception):
    """The copy would not be faithful (or has nowhere to go); nothing was copied."""


@dataclass(frozen=True)
class CopyReport:
    """What `copy_sqlite_to_postgres` copied, and the audit both stores agree on."""

    schema_version: int
    rows: dict[str, int]  # table -> rows copied
    audit: list[str]  # the ledger audit, the same before and after ([] when consistent)
    target: str  # host:port/database


def copy_sqlite_to_postgres(sqlite_path: str | Path, url: str) -> CopyReport:
    """Copy every table of the SQLite store at `sqlite_path` into the empty PostgreSQL
    database at `url`, in one transaction: refused unless both are at this code's schema
    version (an empty database is migrated to it first) and the target has no rows, and
    rolled back unless the ledger audits and sums match."""
    source = _open_source(Path(sqlite_path))
    try:
        source.execute("BEGIN")  # one snapshot of the source for the whole copy
        version = int(source.execute("PRAGMA user_version").fetchone()[0])
        if version != SCHEMA_VERSION:
            # The audit that proves the copy needs the current tables on both sides.
            raise CopyRefused(f"the SQLite store is at schema version {version}, this ltx-bot "
                              f"at {SCHEMA_VERSION}: start this ltx-bot once on the SQLite store "
                              "(it migrates at start), stop it, and copy again")
        before = _ledger_facts(SqlTx(source, utc_now, SQLITE, write=False))
        with connect(url) as target:
            _prepare_target(target, version)
            with target.transaction():
                rows = _copy_tables(source, target)
                after = _ledger_facts(SqlTx(target, utc_now, POSTGRES, write=False))
                if after != before:
                    raise CopyRefused(f"the copy does not match its source (before: {before}; "
                                      f"after: {after}); nothing was copied")
    finally:
        source.close()
    return CopyReport(version, rows, list(before[0]), describe_url(url))


def _open_source(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise CopyRefused(f"no SQLite store at {path}")
    # Read-only: the source is never changed, not even migrated.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                           timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _prepare_target(target: PgConnection, version: int) -> None:
    """Bring an empty database to the source's schema version; refuse any other."""
    exists = target.execute("SELECT to_regclass('schema_version') AS t").fetchone()
    row = target.execute("SELECT version FROM schema_version").fetchone() if exists and exists["t"] else None
    have = int(row["version"]) if row else 0
    if have not in (0, version):
        raise CopyRefused(f"schema versions differ: the SQLite store is at {version}, "
                          f"the PostgreSQL database at {have}")
    migrate(target, target=version)


def _copy_tables(source: sqlite3.Connection, target: PgConnection) -> dict[str, int]:
    # No other process may write while the copy checks and fills the tables.
    target.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
    for table in TABLES:
        if target.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            raise CopyRefused(f"the PostgreSQL database is not empty ({table} has rows); "
                              "copy into an empty database")
    counts = {table: _copy_table(source, target, table) for table in TABLES}
    for table in IDENTITIES:
        # The next id continues after the copied ones.
        target.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                       f"COALESCE(MAX(id), 0) + 1, false) FROM {table}")
    return counts


def _copy_table(source: sqlite3.Connection, target: PgConnection, table: str) -> int:
    cursor = source.execute(f"SELECT * FROM {table} ORDER BY 1")
    columns = ", ".join(d[0] for d in cursor.description)
    count = 0
    with target.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in cursor:
            copy.write_row(tuple(row))
            count += 1
    return count


def _ledger_facts(tx: SqlTx) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """(the audit's findings, the ledger's row count and sums)."""
    row = tx.fetch(_FINGERPRINT)[0]
    return tuple(audit(tx)), (row["rows"], row["credits"], row["bonus"], round(row["usd"], 6))


# ---------------------------------------------------------------- backup


def backup_postgres(url: str, dest: Path) -> tuple[bool, str]:
    """A consistent copy of the database at `url` with pg_dump (custom format, for
    pg_restore) in `dest`, safe while bots run. (ok, what happened)."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return False, ("pg_dump was not found: install PostgreSQL's client tools "
                       "(Debian: apt-get install postgresql-client) or back up on the server")
    if dest.exists():
        return False, f"{dest} exists; choose a new file name"
    private_dir(dest.parent)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private(partial)  # 0600 before pg_dump writes into it (it keeps the file's mode)
    # The password goes through the environment, never the command line (ps shows it).
    parts = urlsplit(url)
    env = {**os.environ, **({"PGPASSWORD": unquote(parts.password)} if parts.password else {})}
    user = f"{parts.username}@" if parts.username else ""
    bare = urlunsplit(parts._replace(netloc=user + parts.netloc.rpartition("@")[2]))
    done = subprocess.run([pg_dump, "--format=custom", f"--file={partial}", "--dbname", bare],
                          env=env, capture_output=True, text=True, check=False)
    where = describe_url(url)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        return False, f"pg_dump of {where} failed: {done.stderr.strip()[-500:]}"
    partial.rename(dest)
    return True, f"backed up {where} to {dest} ({dest.stat().st_size} bytes, pg_dump custom format)"
