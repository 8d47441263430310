"""Taking a fal slot reads the jobs in flight, not the store's whole history: it runs in
the write transaction every process on the store waits for, once per job."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.store import open_sqlite

from .scenarios import ManualClock
from .test_leases import admit


async def test_counting_the_jobs_at_fal_uses_the_index_of_unfinished_jobs(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = tmp_path / "bot.sqlite3"
    store = await open_sqlite(db, clock=clock)
    try:
        job_id = await admit(store, clock, db)
        seen: list[str] = []
        conn: sqlite3.Connection = store._conn
        conn.set_trace_callback(seen.append)
        try:
            assert await store.take_fal_slot(job_id, 5)
        finally:
            conn.set_trace_callback(None)
        [update] = [sql for sql in seen if "COUNT(*)" in sql]
        plan = " ".join(str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + update))
        # A plain scan of `jobs` would read every job ever made.
        assert "USING INDEX jobs_unfinished" in plan, plan
    finally:
        await store.close()
