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
from pathlib import Path
from typing import Any, Literal

from bot.private_files import create_private

from .base import SqlStore
from .dialect import SQLITE
from .protocol import Clock, T, utc_now
from .queries import SqlTx
from .schema import migrate
from .sqlite_file import open_checked

BUSY_TIMEOUT_MS = 30_000


@dataclass
class _Call:
    """One caller's transaction, waiting for its turn on the worker thread."""

    body: Callable[[SqlTx], Any]
    write: bool
    future: asyncio.Future[Any]


class SqliteStore(SqlStore):
    """The Store on one SQLite file. Open with `open_sqlite` (or `open_store`).

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

    async def run(self, body: Callable[[SqlTx], T], *, write: bool = True) -> T:
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

    def _run_batch(self, batch: list[tuple[Callable[[SqlTx], Any], bool]]) -> list[tuple[bool, Any]]:
        # Group commit: the batch shares one transaction and each body gets a savepoint,
        # so a failing body undoes only its own writes. Nobody hears "done" before the
        # COMMIT, so what a caller was told is exactly what is on disk.
        outcomes: list[tuple[bool, Any]] = []
        conn = self._conn
        tx = SqlTx(conn, self.clock, SQLITE, write=any(write for _, write in batch))
        tx.lease = self.lease
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE" if tx.write else "BEGIN")
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

    def describe(self) -> tuple[Literal["sqlite", "postgresql"], str]:
        return "sqlite", str(self.path)


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
    # The file is made 0600 before SQLite sees it: its -wal and -shm take the file's mode.
    create_private(path)
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
    # Refused with a message that says what to do: an empty (0-byte) or damaged file.
    return open_checked(file, connect, migrate)


async def open_sqlite(path: str | Path, *, clock: Clock = utc_now) -> SqliteStore:
    """Open (creating if needed) the SQLite file and bring its schema up to date; raises
    DatabaseFileRefused for an empty or damaged file."""
    file = Path(path)
    # Opening may wait on another process's migration (busy_timeout): keep it off the loop.
    conn = await asyncio.to_thread(_open, file)
    return SqliteStore(conn, file, clock)
