"""The Store on one SQLite file: one worker thread that owns the connection and
commits transactions in groups, and the opening of the file.

Concurrency: the worker runs each transaction whole (see `SqliteStore.run`), so
transactions of different tasks never interleave; every write transaction starts
with BEGIN IMMEDIATE, which also excludes other connections (other processes) on
the same file, and `busy_timeout` makes them wait instead of failing.

Why not aiosqlite (the design card named it): it crosses threads once per
statement (about 170 µs each on the reference machine, 16 crossings for one job's
admit + settle) and has no public way to run a transaction in one crossing; this
store crosses once per batch of transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from bot.model import JobRecord
from bot.ports import User

from .audit import audit
from .protocol import Clock, T, UsageRow, UserRow, utc_now
from .schema import migrate
from .sqlite_tx import SqliteTx

BUSY_TIMEOUT_MS = 30_000


@dataclass
class _Call:
    """One caller's transaction, waiting for its turn on the worker thread."""

    body: Callable[[SqliteTx], Any]
    write: bool
    future: asyncio.Future[Any]


class SqliteStore:
    """The Store on one SQLite file. Open with `open_store`.

    All database work happens on one worker thread that owns the connection.
    Each `run(body)` is one whole transaction executed as a single call there,
    and calls that pile up while the thread is busy go over together in one
    hand-off and one commit: on a busy bot the cost of crossing threads and of
    committing, not SQL, is what limits throughput (about 170 µs a crossing
    here, against tens of µs of SQL per statement). Each body runs in its own
    savepoint, so one failing body never rolls back another.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Clock = utc_now) -> None:
        self._conn = conn
        self.path = path
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltx-store")
        self._pending: list[_Call] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False

    # -- plumbing

    async def run(self, body: Callable[[SqliteTx], T], *, write: bool = True) -> T:
        """Run `body` in one transaction (BEGIN IMMEDIATE when `write`) on the database
        thread and return its result; an exception in `body` rolls back and is raised here.
        IMMEDIATE takes the file's write lock at once, so other processes on the same
        file are excluded too (busy_timeout makes them wait, not fail)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        call = _Call(body, write, loop.create_future())
        self._pending.append(call)
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        result: T = await call.future
        return result

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                # A caller cancelled before its turn never runs; once handed over it completes.
                batch = [c for c in self._pending if not c.future.done()]
                self._pending = []
                if not batch:
                    continue
                try:
                    outcomes = await loop.run_in_executor(
                        self._executor, self._run_batch, [(c.body, c.write) for c in batch])
                except BaseException as exc:
                    # Never leave a caller waiting forever on a future nobody will set.
                    for call in batch:
                        if not call.future.done():
                            call.future.set_exception(RuntimeError(f"store worker failed: {exc!r}"))
                    raise
                for call, (ok, value) in zip(batch, outcomes, strict=True):
                    if call.future.done():
                        continue
                    if ok:
                        call.future.set_result(value)
                    else:
                        call.future.set_exception(value)
        finally:
            self._drainer = None

    def _run_batch(self, batch: list[tuple[Callable[[SqliteTx], Any], bool]]) -> list[tuple[bool, Any]]:
        # Group commit: the batch shares one transaction and each body gets a savepoint,
        # so a failing body undoes only its own writes. Nobody hears "done" before the
        # COMMIT, so what a caller was told is exactly what is on disk.
        outcomes: list[tuple[bool, Any]] = []
        tx = SqliteTx(self._conn, self.clock)
        conn = self._conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE" if any(write for _, write in batch) else "BEGIN")
            for body, _write in batch:
                conn.execute("SAVEPOINT body")
                try:
                    value = body(tx)
                except Exception as exc:
                    # Not swallowed: the error is its caller's, raised from `run` there (logging
                    # it here too would report it twice); the batch goes on without it.
                    conn.execute("ROLLBACK TO body")
                    conn.execute("RELEASE body")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE body")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except Exception as exc:
            # BEGIN or COMMIT failed (e.g. busy past busy_timeout): nothing of the batch is
            # on disk, so every caller gets this error raised from `run`, none is told "done".
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, exc)] * len(batch)
        return outcomes

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._drainer is not None:
            await asyncio.shield(self._drainer)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    async def _read(self, body: Callable[[SqliteTx], T]) -> T:
        return await self.run(body, write=False)

    async def schema_version(self) -> int:
        return await self._read(lambda tx: tx.schema_version())

    # -- users

    async def ensure_user(self, user: User) -> UserRow:
        now = self.clock()
        return await self.run(lambda tx: tx.upsert_user(user, now))

    async def get_user(self, user_key: str) -> UserRow | None:
        return await self._read(lambda tx: tx.get_user(user_key))

    async def set_tier(self, user_key: str, tier: str | None) -> None:
        await self._set_user(user_key, "tier", tier)

    async def set_blocked(self, user_key: str, blocked: bool) -> None:
        await self._set_user(user_key, "blocked", int(blocked))

    async def _set_user(self, user_key: str, column: Literal["tier", "blocked"], value: Any) -> None:
        now = self.clock()
        await self.run(lambda tx: tx.set_user_field(user_key, column, value, now))

    # -- jobs

    async def get_job(self, job_id: int) -> JobRecord | None:
        return await self._read(lambda tx: tx.get_job(job_id))

    async def update_job(self, job_id: int, **changes: Any) -> JobRecord:
        return await self.run(lambda tx: tx.update_job(job_id, **changes))

    async def list_jobs(self, owner_key: str, limit: int = 10) -> list[JobRecord]:
        return await self._read(lambda tx: tx.list_jobs(owner_key, limit))

    async def unfinished_jobs(self) -> list[JobRecord]:
        return await self._read(lambda tx: tx.unfinished_jobs())

    async def first_seen(self, event_id: str) -> bool:
        """True the first time a platform event id is offered, False for every repeat."""
        now = self.clock()
        return await self.run(lambda tx: tx.first_seen(event_id, now))

    async def claim_delivery(self, job_id: int) -> bool:
        now = self.clock()
        return await self.run(lambda tx: tx.claim_delivery(job_id, now))

    # -- ledger reports

    async def ledger_rows(self, job_id: int | None = None) -> list[dict[str, Any]]:
        """Raw ledger rows, oldest first (admin export, tests)."""
        return await self._read(lambda tx: tx.ledger_rows(job_id))

    async def usage_totals(self, by: Literal["user", "workspace"], since: datetime) -> list[UsageRow]:
        """Jobs, credits and USD per user or workspace for jobs started since `since`."""
        return await self._read(lambda tx: tx.usage_totals(by, since))

    async def audit(self) -> list[str]:
        """Differences between the ledger and what is kept beside it; [] when consistent."""
        return await self._read(audit)


# ---------------------------------------------------------------- opening the file


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes opening a fresh file at once can get SQLITE_BUSY here
    without SQLite ever calling its busy handler (measured: 14 of 300 simultaneous opens),
    so this one statement waits and retries itself within the same budget."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # on the opening thread, never the event loop
        delay = min(delay * 2, 0.2)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN ourselves (sqlite3's implicit BEGIN is DEFERRED).
    # check_same_thread=False: the connection is opened on the loop's thread and then used
    # only by the store's one worker thread.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _set_wal(conn)
    # WAL + NORMAL survives application crashes; only an OS crash/power loss may
    # lose the last commits, and never corrupts the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _open(file: Path) -> sqlite3.Connection:
    conn = connect(file)
    try:
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


async def open_store(path: str | Path, *, clock: Clock = utc_now) -> SqliteStore:
    """Open (creating if needed) the SQLite file and bring its schema up to date."""
    file = Path(path)
    # Opening may wait on another process's migration (busy_timeout): keep it off the loop.
    conn = await asyncio.to_thread(_open, file)
    return SqliteStore(conn, file, clock)
