"""After a scrub: the old text must not stay in the database's files.

SQLite keeps an updated row's old bytes in free space of its pages and in the WAL
until they are reused, so the scrub runs with `secure_delete` on (freed space is
zeroed), then the file is rebuilt (`VACUUM`, which also drops copies left by earlier
updates made without `secure_delete`) and the WAL is checkpointed and truncated.
PostgreSQL keeps old row versions in the table until a vacuum: `VACUUM FULL` of the
touched tables rewrites them into new files (it locks each table for the rewrite,
about a second per 100,000 jobs). Neither can reach copies outside the database: a
backup, PostgreSQL's write-ahead log until it is recycled, the disk's free blocks.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

from bot.store import SqlStore
from bot.store.privacy import TOUCHED_TABLES

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_TRIES = 50


async def compact(store: SqlStore, pg_url: str | None) -> str:
    """Rebuild what the store's files hold; returns what was done, in words."""
    backend, _ = store.describe()
    if backend == "sqlite":
        path = Path(getattr(store, "path"))  # noqa: B009 (SqliteStore.path, not in SqlStore)
        return await asyncio.to_thread(compact_sqlite, path)
    if pg_url is None:
        return "not vacuumed: no database URL"
    return await asyncio.to_thread(vacuum_postgres, pg_url)


def compact_sqlite(path: Path) -> str:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("VACUUM")
        for _ in range(CHECKPOINT_TRIES):
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return "sqlite: vacuumed, WAL truncated"
            time.sleep(0.1)  # a reader holds an old snapshot; it ends within its transaction
        log.warning("the WAL of %s could not be truncated now (busy readers)", path)
        return "sqlite: vacuumed, WAL not truncated (busy)"
    finally:
        conn.close()


def vacuum_postgres(url: str) -> str:
    from bot.store.postgres import connect

    with connect(url) as conn:  # autocommit: VACUUM cannot run inside a transaction
        for table in TOUCHED_TABLES:
            conn.execute(f"VACUUM (FULL, ANALYZE) {table}")
    return f"postgresql: VACUUM FULL of {', '.join(TOUCHED_TABLES)}"
